package responder

// The OCSPResponses this package sends when it has no signed response to
// give: an OCSPResponse SEQUENCE holding only a responseStatus ENUMERATED
// (RFC 6960 §4.2.1). They are string constants, compiled into the binary
// and immutable: nothing can overwrite them, and they are never read from
// disk (the DigiCert incident of 2019 served a 1-byte body from an
// overwritten default file).
const (
	// MalformedRequestDER is malformedRequest (1): the request could not
	// be decoded or parsed.
	MalformedRequestDER = "\x30\x03\x0a\x01\x01"
	// InternalErrorDER is internalError (2): a stored response exists but
	// is not fit to serve (it fails validation or is past its nextUpdate).
	InternalErrorDER = "\x30\x03\x0a\x01\x02"
	// TryLaterDER is tryLater (3): the [Source] failed (a database outage);
	// the client should retry.
	TryLaterDER = "\x30\x03\x0a\x01\x03"
	// UnauthorizedDER is unauthorized (6): the responder has no response
	// for the request, which is what RFC 5019 §2.2.3 prescribes (and what
	// the Baseline Requirements §4.9.9 leave for a serial never used,
	// since good is forbidden): an unknown serial, or an issuer this
	// responder does not serve.
	UnauthorizedDER = "\x30\x03\x0a\x01\x06"
)

// noCache is the Cache-Control of every error response: caches may store
// it but must revalidate before each use, so a CDN never answers from a
// stale "unauthorized" once the real response exists.
const noCache = "max-age=0, no-cache"
