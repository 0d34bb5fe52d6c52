// Package responder serves OCSP responses that were signed in advance and
// stored by package ocspstate, and checks any OCSP responder from the
// outside.
//
// It exists because of a failure that cost CAs dearly: in 2019 a
// responder answered unknown serials with a 1-byte body read from an
// overwritten default file, and a CDN cached it (Mozilla bug 1577014). The
// [Handler] makes that impossible: it only ever sends a stored response
// that it has just validated, or one of four 5-byte error responses
// compiled into the binary. [Probe] makes checking for it a one-liner.
//
// # What to call first
//
// Open the store with the issuer certificates and its response cache (every
// response in memory, written through on commit: a lookup per request
// instead of a B+tree walk; see BENCHMARKS.md), then create the handler
// with [New] and serve it with timeouts, directly as the server's handler:
//
//	store, err := ocspstate.Open("/var/lib/ca/ocsp.db", ocspstate.Options{Issuers: issuers, CacheResponses: true})
//	...
//	h, err := responder.New(store, responder.Options{
//		Issuers:    issuers,
//		Logger:     slog.Default(),
//		Registerer: prometheus.DefaultRegisterer,
//	})
//	...
//	srv := &http.Server{
//		Addr:              ":80",
//		Handler:           h, // not under http.ServeMux: see Mounting
//		ReadHeaderTimeout: 5 * time.Second,
//		ReadTimeout:       10 * time.Second,
//		WriteTimeout:      10 * time.Second,
//		IdleTimeout:       2 * time.Minute,
//	}
//
// Any [Source] works in place of the store: one method, Response, which
// returns the stored bytes or an error wrapping [ocspstate.ErrNotFound].
//
// Before an origin enters rotation, and then continuously from outside
// (through the CDN, at the URL in the certificates' AIA extension), run
// [Probe] or [Prober.Probe] and alert on any failed check:
//
//	rep, err := responder.Probe(ctx, "http://ocsp.example.com/", issuers, recentCert, recentPrecert)
//	if err != nil || !rep.OK() { ... page someone: rep.String() says what failed ... }
//
// # What the handler sends
//
// For a serial with a stored response that validates, the response, with
// caching headers derived from it (max-age never past nextUpdate, capped
// by [Options.MaxAge]; an ETag; Last-Modified and Expires). For an unknown
// serial or issuer, [UnauthorizedDER] with Cache-Control "max-age=0,
// no-cache", so that no CDN keeps it once the real response exists. For a
// stored response that fails validation or is past its nextUpdate,
// [InternalErrorDER], logged and counted — never the stored bytes. For a
// store outage, [TryLaterDER]. For anything it cannot parse,
// [MalformedRequestDER]. [Handler.ServeHTTP] lists every header and status
// code and why.
//
// Validation uses [ocspstate.Validator]: structure, CertID, serial,
// signer (the issuer or a delegated responder it certified), signature,
// validity interval, freshness. Its result is kept, so that the hot path
// is a lookup: over a [MemoSource] (an [ocspstate.BoltStore] opened with
// CacheResponses, as `precert serve` opens it) beside the response itself,
// in the same lookup; over any other Source in a per-handler cache keyed
// by the SHA-256 of the bytes ([Options.ValidationCacheSize]). A replaced
// response is validated afresh. The clock is checked on every request, so
// a validated response still stops being served at its nextUpdate.
//
// # Mounting
//
// GET requests carry the base64 of the DER request in the path, and base64
// contains "//": [http.ServeMux] answers such paths with a redirect to a
// cleaned path, which breaks them. Serve the handler as the server's
// handler, or behind [http.StripPrefix], or behind a router that does not
// clean paths. Any mount prefix works without configuration. The handler
// reads the path in its escaped form (as r.URL.EscapedPath() returns it)
// and accepts what real clients send: percent-encoded base64, raw base64
// with '/' and '+', spaces where '+' was, no padding.
//
// Serve OCSP over plain HTTP: clients fetch it while validating a TLS
// certificate, and RFC 5019 §5 does not expect them to use TLS for it.
//
// # Standards
//
//   - RFC 6960: the OCSP request and response syntax, responseStatus
//     values, POST with application/ocsp-request, delegated responders
//     (id-kp-OCSPSigning, §4.2.2.2).
//   - RFC 5019, the lightweight profile for high-volume environments, and
//     RFC 9919, which obsoletes it and allows SHA-256 CertIDs: GET with
//     the URL-encoded base64 request, one CertID per request, pre-signed
//     responses without nonces, unauthorized when the responder has no
//     response, and the HTTP caching headers (§6.2 of RFC 5019).
//   - CA/Browser Forum Baseline Requirements §4.9.9, where ballot SC-076
//     gathered the OCSP requirements (formerly also §4.9.10): responses
//     signed by the CA or a responder it certified, a validity interval
//     of 8 hours to 10 days, refreshed well before nextUpdate, and an
//     unused serial never answered good.
//   - Mozilla Root Store Policy §5.4: a precertificate implies a
//     certificate, so its serial must answer good or revoked even if no
//     final certificate was issued. The handler serves whatever the store
//     holds for the serial; package ocspstate guarantees a response is
//     stored before the precertificate is published.
//
// # Metrics and logs
//
// With [Options.Registerer] set, precert_responder_responses_total counts
// every response by responseStatus and outcome (good, revoked,
// not-modified, unknown-serial, unknown-issuer, certid-hash-mismatch,
// malformed, method-not-allowed, too-large, content-type, source-error,
// canceled, and invalid-<problem> for each [ocspstate.Problem] a stored
// response failed with), and precert_responder_validation_cache_total
// counts validation cache hits and misses. Any invalid-* count is an
// incident: alert on it. Refused responses and source errors are logged
// to [Options.Logger] at Error level, at most once a minute per response
// (per problem) and once a minute for source errors, with the number of
// lines held back.
package responder
