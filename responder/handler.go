package responder

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/certpipe/precert/ocspstate"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is where a [Handler] finds the signed OCSP response for a serial.
// [*ocspstate.BoltStore] satisfies it, as does any [ocspstate.Store].
type Source interface {
	// Response returns the DER OCSPResponse stored for serial under
	// issuer, or an error wrapping [ocspstate.ErrNotFound] when there is
	// none (the serial was never used, or was reserved and abandoned
	// without a precertificate). It is called concurrently from every
	// request and must honour ctx. The handler does not modify or retain
	// the slice. Any other error is treated as an outage: the handler
	// answers tryLater, uncacheable, and logs it.
	Response(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) ([]byte, error)
}

// MemoSource is a [Source] that keeps a [ocspstate.Memo] beside each
// response, in the same lookup. The Handler keeps there the verdict of
// validating those bytes, so that serving a response costs one lookup
// rather than a lookup, a hash and a validation cache lookup.
// [*ocspstate.BoltStore] opened with [ocspstate.Options.CacheResponses]
// implements it.
//
// The Handler trusts a memo it finds as much as its own validation cache:
// nothing but a Handler may call SetMemo.
type MemoSource interface {
	Source
	// CachedResponse returns the response for (issuer, serial) without
	// copying it, and the memo attached to those bytes (zero if none),
	// or ok false, in which case the Handler calls Response. The bytes
	// must never change.
	CachedResponse(issuer ocspstate.IssuerID, serial *big.Int) (der []byte, memo ocspstate.Memo, ok bool)
	// SetMemo attaches memo to the response for (issuer, serial) if that
	// is still der, the very slice CachedResponse returned; a response
	// that replaces it must start with the zero memo.
	SetMemo(issuer ocspstate.IssuerID, serial *big.Int, der []byte, memo ocspstate.Memo) bool
}

var _ MemoSource = (*ocspstate.BoltStore)(nil)

// Defaults for the zero values of [Options].
const (
	// DefaultMaxAge caps Cache-Control max-age when [Options.MaxAge] is
	// zero. It bounds how long a CDN may keep serving a good response
	// after the certificate is revoked.
	DefaultMaxAge = time.Hour
	// DefaultSkew is the tolerance for a stored response's thisUpdate
	// being ahead of the handler's clock when [Options.Skew] is zero.
	DefaultSkew = 5 * time.Minute
)

// skewOrDefault applies the convention of [Options.Skew] and
// [Prober.Skew]: zero means DefaultSkew, negative means none.
func skewOrDefault(skew time.Duration) time.Duration {
	switch {
	case skew == 0:
		return DefaultSkew
	case skew < 0:
		return 0
	}
	return skew
}

// Options configure [New]. Only Issuers is required.
type Options struct {
	// Issuers are the CA certificates the handler answers for. Requests
	// are routed by the issuer name and key hashes of their CertID, under
	// SHA-1 or SHA-256; certificates with the same subject and key (a
	// re-issued or cross-signed CA) count as one issuer. Required.
	Issuers []*x509.Certificate
	// MaxAge caps the max-age the handler advertises; the advertised
	// value is also never past the response's nextUpdate. Zero means
	// DefaultMaxAge (one hour). Negative is an error.
	MaxAge time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives a line for every stored response refused and every
	// Source failure, rate limited per response and per minute. Nil
	// discards.
	Logger *slog.Logger
	// Registerer, if set, receives the counters
	// precert_responder_responses_total{status,outcome} and
	// precert_responder_validation_cache_total{result}. Several handlers
	// may share one registerer. Nil means no metrics.
	Registerer prometheus.Registerer
	// ValidationCacheSize is how many validated responses the handler
	// remembers, by the SHA-256 of their bytes, so that serving a
	// response costs a hash and a map lookup rather than a signature
	// verification. Zero means DefaultValidationCacheSize (about 170
	// bytes per entry); negative disables the cache (ocspstate's smaller
	// process-wide cache of verified signatures still applies). Size it
	// to the number of responses in service: a miss costs a signature
	// verification (about 75 µs for P-256 here). Over a [MemoSource] the
	// verdicts live beside the responses instead, and this cache stays
	// empty.
	ValidationCacheSize int
	// Skew is how far in the future a stored response's thisUpdate may
	// be. Zero means DefaultSkew (five minutes); negative means none.
	Skew time.Duration
}

// Handler is an OCSP responder: an [http.Handler] that serves the signed
// responses of a [Source], after validating them, and compiled-in error
// responses for everything else. Create one with [New]; it is safe for
// concurrent use.
type Handler struct {
	src       Source
	memo      MemoSource // src, if it is one
	validator *ocspstate.Validator
	issuers   []ocspstate.IssuerID // indexed by the values of byHashes
	byHashes  map[hashesKey]uint16
	maxAge    time.Duration
	skew      time.Duration
	now       func() time.Time
	log       *slog.Logger
	limiter   *logLimiter
	metrics   *metrics
	cache     *validationCache
	headers   *headerCache
}

// hashesKey is a CertID's issuer part: hash algorithm, name hash, key hash
// (SHA-1 hashes left-aligned and zero-padded).
type hashesKey struct {
	hash crypto.Hash
	name [32]byte
	key  [32]byte
}

// makeHashesKey returns the key for a CertID's issuer hashes under h, or
// the zero key, which names no issuer, when h is not supported or a hash
// does not have its size.
func makeHashesKey(h crypto.Hash, nameHash, keyHash []byte) hashesKey {
	if h == 0 || len(nameHash) != h.Size() || len(keyHash) != h.Size() {
		return hashesKey{}
	}
	k := hashesKey{hash: h}
	copy(k.name[:], nameHash)
	copy(k.key[:], keyHash)
	return k
}

// New returns a Handler serving src's responses for opts.Issuers.
func New(src Source, opts Options) (*Handler, error) {
	if src == nil {
		return nil, errors.New("responder: a Source is required")
	}
	if len(opts.Issuers) == 0 {
		return nil, errors.New("responder: Options.Issuers is required")
	}
	if opts.MaxAge < 0 {
		return nil, fmt.Errorf("responder: Options.MaxAge %s is negative", opts.MaxAge)
	}
	h := &Handler{
		src:      src,
		byHashes: make(map[hashesKey]uint16),
		maxAge:   opts.MaxAge,
		skew:     skewOrDefault(opts.Skew),
		now:      opts.Now,
		log:      opts.Logger,
		limiter:  newLogLimiter(time.Minute),
	}
	if h.maxAge == 0 {
		h.maxAge = DefaultMaxAge
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.memo, _ = src.(MemoSource)
	h.headers = newHeaderCache(h.maxAge)
	if h.log == nil {
		h.log = discardLogger()
	}
	seen := make(map[ocspstate.IssuerID]bool)
	var certs []*x509.Certificate
	for i, c := range opts.Issuers {
		if c == nil {
			return nil, fmt.Errorf("responder: Options.Issuers[%d] is nil", i)
		}
		id := ocspstate.IssuerIDOf(c)
		if seen[id] {
			continue
		}
		seen[id] = true
		if len(h.issuers) == 1<<16-1 {
			return nil, errors.New("responder: too many issuers")
		}
		idx := uint16(len(h.issuers))
		h.issuers = append(h.issuers, id)
		certs = append(certs, c)
		for _, alg := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			name, key, err := ocspstate.IssuerHashes(c, alg)
			if err != nil {
				return nil, fmt.Errorf("responder: issuer %q: %w", c.Subject.String(), err)
			}
			h.byHashes[makeHashesKey(alg, name, key)] = idx
		}
	}
	var err error
	if h.validator, err = ocspstate.NewValidator(certs...); err != nil {
		return nil, fmt.Errorf("responder: %w", err)
	}
	if h.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("responder: registering metrics: %w", err)
	}
	size := opts.ValidationCacheSize
	if size == 0 {
		size = DefaultValidationCacheSize
	}
	h.cache = newValidationCache(size)
	return h, nil
}

// ServeHTTP answers one OCSP request. It never sends anything but a
// well-formed OCSPResponse: a stored response that passed validation, or
// one of the compiled-in 5-byte error responses ([UnauthorizedDER],
// [MalformedRequestDER], [InternalErrorDER], [TryLaterDER]).
//
// # Requests
//
// POST (RFC 6960 Appendix A.1): the body is the DER request, at most
// [MaxRequestBytes] (10 KB; 413 beyond). A Content-Type other than
// application/ocsp-request is refused with 415; a missing one is
// tolerated.
//
// GET and HEAD (RFC 5019 §5 and RFC 9919): the URL-encoded base64 of the
// DER request follows a mount prefix of any depth ("/", "/ocsp/", …). The
// path is read in its escaped form, as r.URL.EscapedPath() returns it
// (computed without its allocation), so percent-encoded '/', '+' and '='
// (%2F, %2B, %3D) work, and so do the quirks of real clients: raw,
// unescaped base64 containing '/' and '+', spaces (%20) where '+' was,
// missing padding, and the URL-safe alphabet.
//
// Do not mount this handler under [http.ServeMux] or any router that
// cleans paths: base64 contains "//" often enough (a few percent of
// requests), and ServeMux answers such paths with a redirect to the cleaned
// path before the handler sees them, which OCSP clients do not follow and
// which would corrupt the request anyway. Use it as the server's handler, or behind
// [http.StripPrefix], which does not clean.
//
// A request must hold exactly one CertID (RFC 5019 §2.1.1, kept by RFC
// 9919, requires clients to send one, and a pre-signed response covers
// one serial); more is malformedRequest. Request signatures, the requestor
// name and extensions are ignored, the nonce included: responses are
// signed in advance, so none carries a nonce, and RFC 5019 §4 tells
// clients to fall back to time-based freshness rather than reject them.
// Other methods get 405 with "Allow: GET, HEAD, POST" and a
// malformedRequest body.
//
// # Issuer and hash algorithm
//
// The issuer is chosen by the CertID's issuerNameHash and issuerKeyHash,
// under SHA-1 or SHA-256, among [Options.Issuers]. Each stored response
// has one CertID, hashed with whatever algorithm its signer was configured
// with (SHA-1 by default). It is served only when that algorithm equals
// the request's: OpenSSL (OCSP_resp_find) looks for a SingleResponse
// whose CertID matches the request's including the hash algorithm, so a
// response with another hash is useless to it ("No Status found").
// Such requests get unauthorized, counted under the outcome label
// "certid-hash-mismatch". Clients send SHA-1 unless told otherwise.
//
// # Responses and headers
//
// A stored response is served only if it validates with
// [ocspstate.Validator]: well-formed, one SingleResponse with a status of
// good or revoked, a CertID naming the issuer chosen, the request's serial,
// signed by the issuer or a delegated responder it certified, a validity
// interval within BR §4.9.9's bounds, thisUpdate no later than now plus
// [Options.Skew], nextUpdate still ahead. Validation results are kept
// beside the response by a [MemoSource], or else cached by the SHA-256 of
// the bytes ([Options.ValidationCacheSize]); the clock is checked on every
// request. Then the handler sets:
//
//   - Content-Type: application/ocsp-response (RFC 6960 Appendix A.2).
//   - Content-Length: the body's size, so caches and clients can detect a
//     truncated body.
//   - Cache-Control: max-age=N, public, no-transform, must-revalidate
//     (RFC 5019 §6.2), N being the seconds until nextUpdate, capped by
//     [Options.MaxAge]: nothing may cache a response past its nextUpdate,
//     and the cap bounds how long a CDN keeps a good response after a
//     revocation. public lets shared caches keep it, no-transform forbids
//     re-encoding the signed bytes, must-revalidate forbids serving it
//     stale.
//   - Last-Modified: thisUpdate, and Expires: nextUpdate (RFC 5019 §6.2).
//   - ETag: the quoted hex SHA-256 of the body. A GET or HEAD whose
//     If-None-Match names it gets 304 Not Modified with the same caching
//     headers and no body. If-Modified-Since is not honoured: a response
//     re-signed within the same second (a revocation right after
//     issuance) has the same Last-Modified, and a cache must not keep the
//     old one.
//
// Error responses carry Content-Type: application/ocsp-response,
// Content-Length: 5 and Cache-Control: max-age=0, no-cache, so that no
// CDN serves them without asking again:
//
//   - unknown serial ([Source] returns [ocspstate.ErrNotFound]), an
//     issuer not configured, a non-positive or oversized serial, a CertID
//     hash mismatch, or an unsupported CertID hash: 200 with unauthorized
//     (200 because clients such as openssl read the OCSP body only on 200;
//     RFC 5019 §2.2.3 prescribes unauthorized when the responder has no
//     response to give, and BR §4.9.9 forbids answering good for a
//     serial never used);
//   - an undecodable request: 400 (413, 415, 405 as above) with
//     malformedRequest;
//   - a stored response that fails validation or is past its nextUpdate:
//     500 with internalError, never the stored bytes; logged (rate
//     limited) and counted under outcome "invalid-<problem>";
//   - any other [Source] error (an outage): 503 with tryLater, logged and
//     counted under "source-error". tryLater rather than internalError
//     because the condition is transient and the client should retry; the
//     no-cache header keeps the outage out of CDNs.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req request
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if err = decodeGET(escapedPath(r.URL), &req); err != nil {
			h.fail(w, http.StatusBadRequest, MalformedRequestDER, outMalformed, 0)
			return
		}
	case http.MethodPost:
		body, code, err := readPOST(r)
		if err != nil {
			o := outMalformed
			switch code {
			case http.StatusRequestEntityTooLarge:
				o = outTooLarge
			case http.StatusUnsupportedMediaType:
				o = outContentType
			}
			h.fail(w, code, MalformedRequestDER, o, 0)
			return
		}
		if err = parseRequest(body, &req); err != nil {
			h.fail(w, http.StatusBadRequest, MalformedRequestDER, outMalformed, 0)
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.fail(w, http.StatusMethodNotAllowed, MalformedRequestDER, outMethod, 0)
		return
	}

	idx, known := h.byHashes[req.issuer]
	if !known {
		h.fail(w, http.StatusOK, UnauthorizedDER, outUnknownIssuer, 0)
		return
	}
	sk, ok := makeSerialKey(&req.serial)
	if !ok {
		h.fail(w, http.StatusOK, UnauthorizedDER, outUnknownSerial, 0)
		return
	}
	id := h.issuers[idx]

	var der []byte
	var memo ocspstate.Memo
	cached := false
	if h.memo != nil {
		der, memo, cached = h.memo.CachedResponse(id, &req.serial)
	}
	if !cached {
		der, err = h.src.Response(r.Context(), id, &req.serial)
	}
	if err != nil {
		switch {
		case errors.Is(err, ocspstate.ErrNotFound):
			h.fail(w, http.StatusOK, UnauthorizedDER, outUnknownSerial, 0)
		case r.Context().Err() != nil:
			h.fail(w, http.StatusServiceUnavailable, TryLaterDER, outCanceled, 0)
		default:
			if ok, n := h.limiter.allow("source", h.now()); ok {
				h.log.Error("responder: source failed; answering tryLater",
					"issuer", id.String(), "serial", ocspstate.SerialHex(&req.serial), "err", err, "suppressed", n)
			}
			h.fail(w, http.StatusServiceUnavailable, TryLaterDER, outSourceError, 0)
		}
		return
	}

	now := h.now()
	var sum [32]byte
	v, ok := readMemo(&memo, &sum)
	var problem ocspstate.Problem
	var detail string
	if ok {
		h.metrics.cache(true)
	} else {
		sum = sha256.Sum256(der)
		// A MemoSource keeps the verdict itself: the validation cache
		// would only hold a second copy.
		v, problem, detail = h.verdictFor(der, &sum, idx, &req.serial, sk, !cached)
		if problem == 0 && cached {
			h.memo.SetMemo(id, &req.serial, der, v.memo(&sum))
		}
	}
	if problem == 0 {
		problem, detail = v.fresh(now, h.skew)
	}
	if problem != 0 {
		if ok, n := h.limiter.allow(string(sum[:])+problem.String(), now); ok {
			h.log.Error("responder: refusing to serve a stored OCSP response that fails validation; answering internalError",
				"issuer", id.String(), "serial", ocspstate.SerialHex(&req.serial), "problem", problem.String(),
				"detail", detail, "sha256", hex.EncodeToString(sum[:]), "suppressed", n)
		}
		h.fail(w, http.StatusInternalServerError, InternalErrorDER, outInvalid, problem)
		return
	}
	if v.certIDHash() != req.hash {
		h.fail(w, http.StatusOK, UnauthorizedDER, outHashMismatch, 0)
		return
	}

	tag := etag(&sum)
	if r.Method != http.MethodPost && etagMatches(r.Header.Values("If-None-Match"), tag) {
		h.headers.set(w.Header(), tag, &v, now, -1)
		w.WriteHeader(http.StatusNotModified)
		h.metrics.count(outNotModified, 0)
		return
	}
	h.headers.set(w.Header(), tag, &v, now, len(der))
	w.WriteHeader(http.StatusOK)
	w.Write(der)
	if v.status == ocspstate.Revoked {
		h.metrics.count(outRevoked, 0)
	} else {
		h.metrics.count(outGood, 0)
	}
}

// verdictFor returns the verdict on der, whose SHA-256 is sum, for the
// issuer at idx and serial, or the problem that forbids serving it
// whatever the time. With useCache it looks in the validation cache first
// and remembers what it validates; without (a MemoSource keeps the
// verdicts), it validates in full.
func (h *Handler) verdictFor(der []byte, sum *[32]byte, idx uint16, serial *big.Int, sk serialKey, useCache bool) (verdict, ocspstate.Problem, string) {
	if useCache {
		if v, hit := h.cache.get(sum); hit && v.issuer == idx && v.serial == sk {
			h.metrics.cache(true)
			return v, 0, ""
		}
	}
	// A miss, or bytes cached for another issuer or serial: validate in
	// full, which names the problem precisely.
	h.metrics.cache(false)
	info, err := h.validator.Validate(der, h.issuers[idx], ocspstate.Expect{Serial: serial})
	if err != nil {
		p := ocspstate.ProblemOf(err)
		if p == 0 {
			p = ocspstate.ProblemMalformed
		}
		return verdict{}, p, err.Error()
	}
	// Validate checked that the response is about serial, whose key is sk.
	v := newVerdict(info, idx, sk)
	if useCache {
		h.cache.put(sum, v)
	}
	return v, 0, ""
}

// fail writes one of the compiled-in error responses.
func (h *Handler) fail(w http.ResponseWriter, code int, body string, o outcome, p ocspstate.Problem) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/ocsp-response")
	hdr.Set("Content-Length", "5")
	hdr.Set("Cache-Control", noCache)
	w.WriteHeader(code)
	io.WriteString(w, body)
	h.metrics.count(o, p)
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2)
// of each listed entity tag, or "*", against etag.
func etagMatches(headers []string, etag string) bool {
	for _, hv := range headers {
		for _, t := range strings.Split(hv, ",") {
			t = strings.TrimSpace(t)
			t = strings.TrimPrefix(t, "W/")
			if t == "*" || t == etag {
				return true
			}
		}
	}
	return false
}
