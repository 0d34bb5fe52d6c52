package responder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/testio"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// Both the bbolt store and any Store are Sources.
var (
	_ Source = (*ocspstate.BoltStore)(nil)
	_ Source = ocspstate.Store(nil)
)

// fakeSource is an in-memory Source with error injection.
type fakeSource struct {
	mu       sync.Mutex
	m        map[ocspstate.Key][]byte
	err      error
	memos    map[ocspstate.Key]ocspstate.Memo // for memoFake
	setMemos int
}

func (s *fakeSource) Response(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	der, ok := s.m[ocspstate.NewKey(issuer, serial)]
	if !ok {
		return nil, fmt.Errorf("%w: serial %s", ocspstate.ErrNotFound, ocspstate.SerialHex(serial))
	}
	return der, nil
}

func (s *fakeSource) put(issuer *x509.Certificate, serial *big.Int, der []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ocspstate.NewKey(ocspstate.IssuerIDOf(issuer), serial)
	s.m[k] = der
	delete(s.memos, k) // new bytes start without a memo
}

// memoFake is a fakeSource that is also a MemoSource, keeping memos the
// way ocspstate's response cache does: bound to the very bytes.
type memoFake struct{ *fakeSource }

func (s memoFake) CachedResponse(issuer ocspstate.IssuerID, serial *big.Int) ([]byte, ocspstate.Memo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ocspstate.NewKey(issuer, serial)
	der, ok := s.m[k]
	if s.err != nil || !ok || len(der) == 0 {
		return nil, ocspstate.Memo{}, false // Response says why
	}
	return der, s.memos[k], true
}

func (s memoFake) SetMemo(issuer ocspstate.IssuerID, serial *big.Int, der []byte, memo ocspstate.Memo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ocspstate.NewKey(issuer, serial)
	if cur := s.m[k]; len(cur) == 0 || len(der) == 0 || &cur[0] != &der[0] {
		return false
	}
	if s.memos == nil {
		s.memos = map[ocspstate.Key]ocspstate.Memo{}
	}
	s.memos[k] = memo
	s.setMemos++
	return true
}

// memosSet counts SetMemo calls that took.
func (s *fakeSource) memosSet() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setMemos
}

// unitEnv is a Handler over a fakeSource, with a settable clock, a
// Prometheus registry and captured logs.
type unitEnv struct {
	ca     *testpki.CA
	signer *ocspstate.ResponseSigner
	src    *fakeSource
	reg    *prometheus.Registry
	logs   *testio.Buffer
	h      *Handler

	mu  sync.Mutex
	now time.Time
}

func newUnitEnv(t testing.TB, opts Options) *unitEnv {
	t.Helper()
	return newUnitEnvMemo(t, opts, false)
}

// newUnitEnvMemo is newUnitEnv, over a MemoSource if memo.
func newUnitEnvMemo(t testing.TB, opts Options, memo bool) *unitEnv {
	t.Helper()
	e := &unitEnv{ca: testpki.Shared(t, testpki.ECDSAP256), src: &fakeSource{m: map[ocspstate.Key][]byte{}},
		reg: prometheus.NewRegistry(), logs: &testio.Buffer{}, now: time.Now()}
	var err error
	e.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey})
	require.NoError(t, err)
	if opts.Issuers == nil {
		opts.Issuers = []*x509.Certificate{e.ca.Intermediate}
	}
	opts.Now = e.clock
	opts.Registerer = e.reg
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	var src Source = e.src
	if memo {
		src = memoFake{e.src}
	}
	e.h, err = New(src, opts)
	require.NoError(t, err)
	return e
}

func (e *unitEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *unitEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// add signs a response for serial with the env's signer and stores it.
func (e *unitEnv) add(t testing.TB, serial *big.Int, status ocspstate.Status) []byte {
	t.Helper()
	var at time.Time
	if status == ocspstate.Revoked {
		at = time.Now().Add(-time.Hour)
	}
	resp, err := e.signer.Sign(serial, status, at, 0)
	require.NoError(t, err)
	e.src.put(e.ca.Intermediate, serial, resp.DER)
	return resp.DER
}

func (e *unitEnv) request(t testing.TB, serial *big.Int, h crypto.Hash) []byte {
	t.Helper()
	return ocspRequest(t, serialCert(serial), e.ca.Intermediate, h)
}

// do serves r and returns the recorded response.
func (e *unitEnv) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// getPath builds a GET request whose escaped path is exactly path, the
// way the server hands it to the handler.
func getPath(t testing.TB, path string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	u, err := url.ParseRequestURI(path)
	require.NoError(t, err)
	r.URL = u
	r.RequestURI = path
	return r
}

func post(body []byte, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func b64Escaped(der []byte) string { return url.QueryEscape(base64.StdEncoding.EncodeToString(der)) }

// count returns the value of precert_responder_responses_total{status,outcome}.
func (e *unitEnv) count(t testing.TB, status, outcome string) float64 {
	t.Helper()
	return counterValue(t, e.reg, "precert_responder_responses_total", map[string]string{"status": status, "outcome": outcome})
}

func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// requireError checks one of the compiled-in error responses and its
// headers.
func requireError(t testing.TB, w *httptest.ResponseRecorder, code int, body string) {
	t.Helper()
	require.Equal(t, code, w.Code)
	require.Equal(t, []byte(body), w.Body.Bytes())
	require.Equal(t, "application/ocsp-response", w.Header().Get("Content-Type"))
	require.Equal(t, "5", w.Header().Get("Content-Length"))
	require.Equal(t, "max-age=0, no-cache", w.Header().Get("Cache-Control"))
	require.Empty(t, w.Header().Get("ETag"))
}

func TestNewRefusesBadOptions(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	src := &fakeSource{m: map[ocspstate.Key][]byte{}}
	for _, tc := range []struct {
		name string
		src  Source
		opts Options
		want string
	}{
		{"no source", nil, Options{Issuers: []*x509.Certificate{ca.Intermediate}}, "Source is required"},
		{"no issuers", src, Options{}, "Issuers is required"},
		{"nil issuer", src, Options{Issuers: []*x509.Certificate{nil}}, "Issuers[0] is nil"},
		{"negative max age", src, Options{Issuers: []*x509.Certificate{ca.Intermediate}, MaxAge: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.src, tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestServeGood(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	der := e.add(t, serial, ocspstate.Good)
	info, err := ocspstate.Validate(der, e.ca.Intermediate, ocspstate.Expect{Serial: serial})
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`

	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"GET", getPath(t, "/"+b64Escaped(e.request(t, serial, crypto.SHA1)))},
		{"POST", post(e.request(t, serial, crypto.SHA1), "application/ocsp-request")},
		{"POST without Content-Type", post(e.request(t, serial, crypto.SHA1), "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.req)
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, der, w.Body.Bytes())
			hdr := w.Header()
			require.Equal(t, "application/ocsp-response", hdr.Get("Content-Type"))
			require.Equal(t, fmt.Sprint(len(der)), hdr.Get("Content-Length"))
			require.Equal(t, "max-age=3600, public, no-transform, must-revalidate", hdr.Get("Cache-Control"))
			require.Equal(t, info.ThisUpdate.UTC().Format(http.TimeFormat), hdr.Get("Last-Modified"))
			require.Equal(t, info.NextUpdate.UTC().Format(http.TimeFormat), hdr.Get("Expires"))
			require.Equal(t, etag, hdr.Get("ETag"))
		})
	}
	require.Equal(t, 3.0, e.count(t, "successful", "good"))
}

func TestServeRevoked(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	e.add(t, serial, ocspstate.Revoked)
	w := e.do(post(e.request(t, serial, crypto.SHA1), "application/ocsp-request"))
	require.Equal(t, http.StatusOK, w.Code)
	resp, err := ocsp.ParseResponse(w.Body.Bytes(), e.ca.Intermediate)
	require.NoError(t, err)
	require.Equal(t, ocsp.Revoked, resp.Status)
	require.Equal(t, 1.0, e.count(t, "successful", "revoked"))
}

func TestMaxAgeBoundedByNextUpdate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		advance time.Duration
		want    func(untilNext time.Duration) string
	}{
		{"default cap", 0, 0, func(time.Duration) string { return "max-age=3600" }},
		{"configured cap", 10 * time.Minute, 0, func(time.Duration) string { return "max-age=600" }},
		{"nextUpdate sooner than cap", 240 * time.Hour, 0, func(d time.Duration) string { return fmt.Sprintf("max-age=%d", int64(d/time.Second)) }},
		{"close to nextUpdate", 0, 96*time.Hour - 90*time.Second, func(d time.Duration) string { return fmt.Sprintf("max-age=%d", int64(d/time.Second)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnitEnv(t, Options{MaxAge: tc.maxAge})
			serial := testpki.RandomSerial()
			der := e.add(t, serial, ocspstate.Good)
			info, err := ocspstate.Validate(der, e.ca.Intermediate, ocspstate.Expect{Serial: serial})
			require.NoError(t, err)
			e.advance(tc.advance)
			w := e.do(getPath(t, "/"+b64Escaped(e.request(t, serial, crypto.SHA1))))
			require.Equal(t, http.StatusOK, w.Code)
			want := tc.want(info.NextUpdate.Sub(e.clock())) + ", public, no-transform, must-revalidate"
			require.Equal(t, want, w.Header().Get("Cache-Control"))
		})
	}
}

func TestIfNoneMatch(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	der := e.add(t, serial, ocspstate.Good)
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	reqDER := e.request(t, serial, crypto.SHA1)
	for _, tc := range []struct {
		name   string
		method string
		inm    string
		want   int
	}{
		{"matching", http.MethodGet, etag, http.StatusNotModified},
		{"weak", http.MethodGet, "W/" + etag, http.StatusNotModified},
		{"in a list", http.MethodGet, `"abc", ` + etag, http.StatusNotModified},
		{"star", http.MethodGet, "*", http.StatusNotModified},
		{"HEAD", http.MethodHead, etag, http.StatusNotModified},
		{"other", http.MethodGet, `"abc"`, http.StatusOK},
		{"POST ignores it", http.MethodPost, etag, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.method == http.MethodPost {
				r = post(reqDER, "application/ocsp-request")
			} else {
				r = getPath(t, "/"+b64Escaped(reqDER))
				r.Method = tc.method
			}
			r.Header.Set("If-None-Match", tc.inm)
			w := e.do(r)
			require.Equal(t, tc.want, w.Code)
			require.Equal(t, etag, w.Header().Get("ETag"))
			require.Contains(t, w.Header().Get("Cache-Control"), "max-age=")
			if tc.want == http.StatusNotModified {
				require.Empty(t, w.Body.Bytes())
				require.NotEmpty(t, w.Header().Get("Expires"))
			} else {
				require.Equal(t, der, w.Body.Bytes())
			}
		})
	}
	require.Equal(t, 5.0, e.count(t, "successful", "not-modified"))
}

// findSerial returns a serial whose SHA-1 request, in base64, satisfies
// ok, with a response stored for it.
func (e *unitEnv) findSerial(t testing.TB, ok func(b64 string) bool) (*big.Int, string) {
	t.Helper()
	for range 100000 {
		serial := testpki.RandomSerial()
		b64 := base64.StdEncoding.EncodeToString(e.request(t, serial, crypto.SHA1))
		if ok(b64) {
			e.add(t, serial, ocspstate.Good)
			return serial, b64
		}
	}
	t.Fatal("no serial found")
	return nil, ""
}

// TestGETEncodings covers the encodings real clients and proxies produce,
// with a request whose base64 holds "//", '+' and '=' padding. Each path
// also decodes as it would from r.URL.EscapedPath().
func TestGETEncodings(t *testing.T) {
	e := newUnitEnv(t, Options{})
	_, b64 := e.findSerial(t, func(s string) bool {
		return strings.Contains(s, "//") && strings.Contains(s, "+") && strings.HasSuffix(s, "=")
	})
	pct := url.QueryEscape(b64)
	for _, tc := range []struct{ name, path string }{
		{"percent-encoded", "/" + pct},
		{"raw base64", "/" + b64},
		{"raw under a mount prefix", "/ocsp/" + b64},
		{"percent-encoded under a deep prefix", "/a/b/ocsp/" + pct},
		{"prefix segment starting with M", "/Mount/" + b64},
		{"spaces where + was", "/" + strings.ReplaceAll(b64, "+", "%20")},
		{"only + encoded", "/" + strings.ReplaceAll(b64, "+", "%2B")},
		{"lowercase escapes", "/" + strings.NewReplacer("%2F", "%2f", "%2B", "%2b", "%3D", "%3d").Replace(pct)},
		{"no padding", "/" + strings.TrimRight(b64, "=")},
		{"URL-safe alphabet", "/" + strings.NewReplacer("+", "-", "/", "_").Replace(b64)},
		{"line breaks", "/" + b64[:20] + "%0A" + b64[20:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := getPath(t, tc.path)
			requireSameDecoding(t, r.URL)
			w := e.do(r)
			require.Equal(t, http.StatusOK, w.Code, "path %s", tc.path)
			_, err := ocsp.ParseResponse(w.Body.Bytes(), e.ca.Intermediate)
			require.NoError(t, err)
		})
	}
}

// TestGETOverLoopback sends the raw base64 with "//" through a real
// net/http server, to show that nothing between the wire and the handler
// cleans the path, and that a ServeMux would.
func TestGETOverLoopback(t *testing.T) {
	e := newUnitEnv(t, Options{})
	_, b64 := e.findSerial(t, func(s string) bool { return strings.Contains(s, "//") })
	get := func(t *testing.T, h http.Handler, path string) *http.Response {
		t.Helper()
		base := serve(t, h)
		client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.Opaque = "//" + u.Host + path // send the path exactly as given
		resp, err := client.Do(&http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}})
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	t.Run("handler as the server's handler", func(t *testing.T) {
		require.Equal(t, http.StatusOK, get(t, e.h, "/ocsp/"+b64).StatusCode)
	})
	t.Run("under StripPrefix", func(t *testing.T) {
		require.Equal(t, http.StatusOK, get(t, http.StripPrefix("/ocsp", e.h), "/ocsp/"+b64).StatusCode)
	})
	t.Run("under ServeMux: the trap", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("/ocsp/", e.h)
		resp := get(t, mux, "/ocsp/"+b64)
		require.True(t, resp.StatusCode >= 300 && resp.StatusCode < 400, "ServeMux answered %d: if it no longer cleans paths, update the ServeHTTP doc", resp.StatusCode)
	})
}

func TestUnauthorized(t *testing.T) {
	e := newUnitEnv(t, Options{})
	other := testpki.MustNew(t, testpki.ECDSAP256) // same names as e.ca, another key
	stored := testpki.RandomSerial()
	e.add(t, stored, ocspstate.Good)
	tooBig := new(big.Int).Lsh(big.NewInt(1), 8*ocspstate.MaxSerialOctets)
	for _, tc := range []struct {
		name    string
		reqDER  []byte
		outcome string
	}{
		{"unknown serial", e.request(t, testpki.RandomSerial(), crypto.SHA1), "unknown-serial"},
		{"unknown issuer with the same name", ocspRequest(t, serialCert(stored), other.Intermediate, crypto.SHA1), "unknown-issuer"},
		{"zero serial", e.request(t, big.NewInt(0), crypto.SHA1), "unknown-serial"},
		{"negative serial aliasing a stored one", e.request(t, new(big.Int).Neg(stored), crypto.SHA1), "unknown-serial"},
		{"serial over 20 octets", e.request(t, tooBig, crypto.SHA1), "unknown-serial"},
		{"SHA-384 CertID", e.request(t, stored, crypto.SHA384), "unknown-issuer"},
		{"SHA-256 request, SHA-1 response stored", e.request(t, stored, crypto.SHA256), "certid-hash-mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t, "unauthorized", tc.outcome)
			requireError(t, e.do(post(tc.reqDER, "application/ocsp-request")), http.StatusOK, UnauthorizedDER)
			requireError(t, e.do(getPath(t, "/"+b64Escaped(tc.reqDER))), http.StatusOK, UnauthorizedDER)
			require.Equal(t, before+2, e.count(t, "unauthorized", tc.outcome))
		})
	}
}

func TestSHA256CertID(t *testing.T) {
	e := newUnitEnv(t, Options{})
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey, CertIDHash: crypto.SHA256})
	require.NoError(t, err)
	serial := testpki.RandomSerial()
	resp, err := signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(t, err)
	e.src.put(e.ca.Intermediate, serial, resp.DER)
	w := e.do(post(e.request(t, serial, crypto.SHA256), "application/ocsp-request"))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, resp.DER, w.Body.Bytes())
	requireError(t, e.do(post(e.request(t, serial, crypto.SHA1), "application/ocsp-request")), http.StatusOK, UnauthorizedDER)
	require.Equal(t, 1.0, e.count(t, "unauthorized", "certid-hash-mismatch"))
}

// TestSeveralIssuers routes by issuer key hash between two CAs with the
// same name, each under SHA-1 and SHA-256 CertIDs.
func TestSeveralIssuers(t *testing.T) {
	// Same names, different keys: routing must use the key hash too.
	a, err := testpki.NewNamed(testpki.ECDSAP256, " twin")
	require.NoError(t, err)
	b, err := testpki.NewNamed(testpki.ECDSAP256, " twin")
	require.NoError(t, err)
	require.Equal(t, a.Intermediate.RawSubject, b.Intermediate.RawSubject)
	src := &fakeSource{m: map[ocspstate.Key][]byte{}}
	serial := testpki.RandomSerial() // the same serial under both
	for _, ca := range []*testpki.CA{a, b} {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, CertIDHash: h})
			require.NoError(t, err)
			sr := new(big.Int).Add(serial, big.NewInt(int64(h)))
			resp, err := s.Sign(sr, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			src.put(ca.Intermediate, sr, resp.DER)
		}
	}
	h, err := New(src, Options{Issuers: []*x509.Certificate{a.Intermediate, b.Intermediate, a.Intermediate}})
	require.NoError(t, err)
	for _, ca := range []*testpki.CA{a, b} {
		for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			sr := new(big.Int).Add(serial, big.NewInt(int64(hash)))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, post(ocspRequest(t, serialCert(sr), ca.Intermediate, hash), "application/ocsp-request"))
			require.Equal(t, http.StatusOK, w.Code)
			_, err := ocspstate.Validate(w.Body.Bytes(), ca.Intermediate, ocspstate.Expect{Serial: sr, Now: time.Now()})
			require.NoError(t, err)
		}
	}
}

// twoCertIDs returns an OCSPRequest asking about two serials.
func twoCertIDs(t testing.TB, one, two []byte) []byte {
	t.Helper()
	list := func(der []byte) []byte {
		s := cryptobyte.String(der)
		var req, tbs, l cryptobyte.String
		require.True(t, s.ReadASN1(&req, cbasn1.SEQUENCE) && req.ReadASN1(&tbs, cbasn1.SEQUENCE) && tbs.ReadASN1(&l, cbasn1.SEQUENCE))
		return l
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(list(one))
				b.AddBytes(list(two))
			})
		})
	})
	return b.BytesOrPanic()
}

func TestMalformed(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	e.add(t, serial, ocspstate.Good)
	good := e.request(t, serial, crypto.SHA1)
	for _, tc := range []struct {
		name    string
		req     *http.Request
		code    int
		outcome string
	}{
		{"GET /", getPath(t, "/"), http.StatusBadRequest, "malformed"},
		{"GET not base64", getPath(t, "/Mnot*base64"), http.StatusBadRequest, "malformed"},
		{"GET base64 of garbage", getPath(t, "/"+b64Escaped([]byte("0garbage"))), http.StatusBadRequest, "malformed"},
		{"GET bad escape", &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/M%zz"}, Header: http.Header{}}, http.StatusBadRequest, "malformed"},
		{"GET truncated", getPath(t, "/"+b64Escaped(good[:len(good)-3])), http.StatusBadRequest, "malformed"},
		{"POST empty", post(nil, "application/ocsp-request"), http.StatusBadRequest, "malformed"},
		{"POST trailing data", post(append(bytes.Clone(good), 0), "application/ocsp-request"), http.StatusBadRequest, "malformed"},
		{"POST two CertIDs", post(twoCertIDs(t, good, e.request(t, testpki.RandomSerial(), crypto.SHA1)), "application/ocsp-request"), http.StatusBadRequest, "malformed"},
		{"POST 1-byte body", post([]byte{0x30}, "application/ocsp-request"), http.StatusBadRequest, "malformed"},
		{"POST wrong Content-Type", post(good, "text/plain"), http.StatusUnsupportedMediaType, "content-type"},
		{"POST too large", post(make([]byte, MaxRequestBytes+1), "application/ocsp-request"), http.StatusRequestEntityTooLarge, "too-large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t, "malformedRequest", tc.outcome)
			requireError(t, e.do(tc.req), tc.code, MalformedRequestDER)
			require.Equal(t, before+1, e.count(t, "malformedRequest", tc.outcome))
		})
	}
	t.Run("POST too large without Content-Length", func(t *testing.T) {
		r := post(nil, "application/ocsp-request")
		r.Body = http.NoBody
		r.Body = struct {
			*bytes.Reader
			closer
		}{bytes.NewReader(make([]byte, 3*MaxRequestBytes)), closer{}}
		r.ContentLength = -1
		requireError(t, e.do(r), http.StatusRequestEntityTooLarge, MalformedRequestDER)
	})
}

type closer struct{}

func (closer) Close() error { return nil }

func TestMethodNotAllowed(t *testing.T) {
	e := newUnitEnv(t, Options{})
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodOptions, "PATCH"} {
		t.Run(m, func(t *testing.T) {
			w := e.do(httptest.NewRequest(m, "/", nil))
			requireError(t, w, http.StatusMethodNotAllowed, MalformedRequestDER)
			require.Equal(t, "GET, HEAD, POST", w.Header().Get("Allow"))
		})
	}
	require.Equal(t, 4.0, e.count(t, "malformedRequest", "method-not-allowed"))
}

func TestHEAD(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	der := e.add(t, serial, ocspstate.Good)
	base := serve(t, e.h)
	resp, err := http.Head(base + "/" + b64Escaped(e.request(t, serial, crypto.SHA1)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(len(der)), resp.ContentLength)
}

// TestRefusesInvalidStoredResponses is invariant I5: whatever the source
// holds, the handler sends internalError, never the stored bytes, and
// logs and counts the problem.
func TestRefusesInvalidStoredResponses(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	for _, tc := range []struct {
		name    string
		stored  func(t *testing.T, e *unitEnv, serial *big.Int) []byte
		advance time.Duration
		problem ocspstate.Problem
	}{
		{"1-byte body", func(*testing.T, *unitEnv, *big.Int) []byte { return []byte{0x00} }, 0, ocspstate.ProblemMalformed},
		{"HTML", func(*testing.T, *unitEnv, *big.Int) []byte { return []byte("<html>404</html>") }, 0, ocspstate.ProblemMalformed},
		{"empty", func(*testing.T, *unitEnv, *big.Int) []byte { return []byte{} }, 0, ocspstate.ProblemMalformed},
		{"stored unauthorized", func(*testing.T, *unitEnv, *big.Int) []byte { return []byte(UnauthorizedDER) }, 0, ocspstate.ProblemNotSuccessful},
		{"another serial", func(t *testing.T, e *unitEnv, _ *big.Int) []byte {
			resp, err := e.signer.Sign(testpki.RandomSerial(), ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			return resp.DER
		}, 0, ocspstate.ProblemSerial},
		{"wrong key", func(t *testing.T, e *unitEnv, serial *big.Int) []byte {
			return wrongKeyResponse(t, ca, serialCert(serial))
		}, 0, ocspstate.ProblemSignature},
		{"past nextUpdate", func(t *testing.T, e *unitEnv, serial *big.Int) []byte {
			resp, err := e.signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			return resp.DER
		}, 97 * time.Hour, ocspstate.ProblemExpired},
		{"thisUpdate in the future", func(t *testing.T, e *unitEnv, serial *big.Int) []byte {
			resp, err := e.signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			return resp.DER
		}, -time.Hour, ocspstate.ProblemFuture},
		{"delegated responder expired", func(t *testing.T, e *unitEnv, serial *big.Int) []byte {
			// Signed two hours before the responder certificate expires,
			// served an hour after: the response itself is still fresh.
			notAfter := e.ca.Responder.NotAfter
			s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Responder: e.ca.Responder, Key: e.ca.ResponderKey,
				Now: func() time.Time { return notAfter.Add(-2 * time.Hour) }})
			require.NoError(t, err)
			resp, err := s.Sign(serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			e.advance(notAfter.Add(time.Hour).Sub(e.clock()))
			return resp.DER
		}, 0, ocspstate.ProblemSigner},
	} {
		for _, memo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memo=%v", tc.name, memo), func(t *testing.T) {
				e := newUnitEnvMemo(t, Options{}, memo)
				serial := testpki.RandomSerial()
				e.src.put(e.ca.Intermediate, serial, tc.stored(t, e, serial))
				e.advance(tc.advance)
				for range 3 {
					requireError(t, e.do(post(e.request(t, serial, crypto.SHA1), "application/ocsp-request")), http.StatusInternalServerError, InternalErrorDER)
				}
				require.Equal(t, 3.0, e.count(t, "internalError", "invalid-"+tc.problem.String()))
				logs := e.logs.String()
				require.Equal(t, 1, strings.Count(logs, "level=ERROR"), "logs are rate limited:\n%s", logs)
				require.Contains(t, logs, "problem="+tc.problem.String())
				require.Contains(t, logs, "serial="+ocspstate.SerialHex(serial))
				if memo && tc.advance == 0 && tc.problem != ocspstate.ProblemSigner {
					// Bytes that fail validation never get a memo. (A
					// response refused only for the time keeps the memo
					// of its validation; the clock is checked on every
					// request.)
					require.Zero(t, e.src.memosSet())
				}
			})
		}
	}
}

// TestCachedVerdictBoundToSerialAndIssuer is invariant I5 on the cache
// hit path: bytes validated and cached for one serial and issuer are not
// served for another, even though their signature is already known good.
func TestCachedVerdictBoundToSerialAndIssuer(t *testing.T) {
	other := testpki.MustNew(t, testpki.ECDSAP256)
	for _, memo := range []bool{false, true} {
		t.Run(fmt.Sprintf("memo=%v", memo), func(t *testing.T) {
			testCachedVerdictBound(t, other, newUnitEnvMemo(t, Options{Issuers: []*x509.Certificate{testpki.Shared(t, testpki.ECDSAP256).Intermediate, other.Intermediate}}, memo))
		})
	}
}

func testCachedVerdictBound(t *testing.T, other *testpki.CA, e *unitEnv) {
	serial, otherSerial := testpki.RandomSerial(), testpki.RandomSerial()
	der := e.add(t, serial, ocspstate.Good)
	w := e.do(post(e.request(t, serial, crypto.SHA1), "application/ocsp-request"))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, der, w.Body.Bytes())

	// The same bytes, stored (by a broken store) under another serial
	// and under another issuer.
	e.src.put(e.ca.Intermediate, otherSerial, der)
	e.src.put(other.Intermediate, serial, der)
	requireError(t, e.do(post(e.request(t, otherSerial, crypto.SHA1), "application/ocsp-request")), http.StatusInternalServerError, InternalErrorDER)
	require.Equal(t, 1.0, e.count(t, "internalError", "invalid-serial"))
	requireError(t, e.do(post(ocspRequest(t, serialCert(serial), other.Intermediate, crypto.SHA1), "application/ocsp-request")), http.StatusInternalServerError, InternalErrorDER)
	require.Equal(t, 1.0, e.count(t, "internalError", "invalid-cert-id"))
	require.Zero(t, counterValue(t, e.reg, "precert_responder_validation_cache_total", map[string]string{"result": "hit"}))
}

// TestMemoSource: over a MemoSource, the verdict is kept beside the
// response: validated once, then served from one lookup, with the same
// bytes and headers as over a plain Source; a replaced response is
// validated afresh, and the clock is still checked on every request.
func TestMemoSource(t *testing.T) {
	plain, memo := newUnitEnv(t, Options{}), newUnitEnvMemo(t, Options{}, true)
	serial := testpki.RandomSerial()
	der := memo.add(t, serial, ocspstate.Good)
	plain.src.put(plain.ca.Intermediate, serial, der)
	req := func(e *unitEnv) *httptest.ResponseRecorder {
		return e.do(getPath(t, "/"+b64Escaped(e.request(t, serial, crypto.SHA1))))
	}
	want := req(plain)
	require.Equal(t, http.StatusOK, want.Code)
	for i := range 3 {
		w := req(memo)
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, der, w.Body.Bytes())
		require.Equal(t, want.Header(), w.Header(), "request %d: the same headers as over a plain Source", i)
	}
	require.Equal(t, 1, memo.src.memosSet(), "validated once")
	require.Equal(t, 2.0, counterValue(t, memo.reg, "precert_responder_validation_cache_total", map[string]string{"result": "hit"}))
	require.Zero(t, memo.h.cache.len(), "no second copy of the verdict")

	// Revoked: new bytes, a new validation.
	revoked := memo.add(t, serial, ocspstate.Revoked)
	w := req(memo)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, revoked, w.Body.Bytes())
	require.Equal(t, 2, memo.src.memosSet())
	require.Equal(t, 1.0, memo.count(t, "successful", "revoked"))

	// Fresh when validated, stale now: refused despite the memo.
	memo.advance(96 * time.Hour)
	requireError(t, req(memo), http.StatusInternalServerError, InternalErrorDER)
	require.Equal(t, 1.0, memo.count(t, "internalError", "invalid-expired"))
	require.Equal(t, 2, memo.src.memosSet())
}

// TestFreshnessCheckedOnCacheHits: a response validated and cached while
// fresh is refused once its nextUpdate passes.
func TestFreshnessCheckedOnCacheHits(t *testing.T) {
	e := newUnitEnv(t, Options{})
	serial := testpki.RandomSerial()
	e.add(t, serial, ocspstate.Good)
	req := func() *http.Request { return post(e.request(t, serial, crypto.SHA1), "application/ocsp-request") }
	require.Equal(t, http.StatusOK, e.do(req()).Code)
	require.Equal(t, http.StatusOK, e.do(req()).Code)
	require.Equal(t, 1.0, counterValue(t, e.reg, "precert_responder_validation_cache_total", map[string]string{"result": "hit"}))
	e.advance(96 * time.Hour)
	requireError(t, e.do(req()), http.StatusInternalServerError, InternalErrorDER)
	require.Equal(t, 1.0, e.count(t, "internalError", "invalid-expired"))
}

func TestCacheDisabled(t *testing.T) {
	e := newUnitEnv(t, Options{ValidationCacheSize: -1})
	require.Nil(t, e.h.cache)
	serial := testpki.RandomSerial()
	e.add(t, serial, ocspstate.Good)
	for range 2 {
		require.Equal(t, http.StatusOK, e.do(post(e.request(t, serial, crypto.SHA1), "application/ocsp-request")).Code)
	}
	require.Equal(t, 2.0, counterValue(t, e.reg, "precert_responder_validation_cache_total", map[string]string{"result": "miss"}))
}

func TestValidationCacheBounded(t *testing.T) {
	c := newValidationCache(cacheShards * 2)
	for i := range 10000 {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		c.put(&sum, verdict{issuer: uint16(i)})
		got, ok := c.get(&sum)
		require.True(t, ok)
		require.Equal(t, uint16(i), got.issuer)
	}
	require.LessOrEqual(t, c.len(), cacheShards*2)
}

func TestSourceErrors(t *testing.T) {
	t.Run("outage", func(t *testing.T) {
		e := newUnitEnv(t, Options{})
		e.src.err = errors.New("connection refused")
		for range 3 {
			requireError(t, e.do(post(e.request(t, testpki.RandomSerial(), crypto.SHA1), "application/ocsp-request")), http.StatusServiceUnavailable, TryLaterDER)
		}
		require.Equal(t, 3.0, e.count(t, "tryLater", "source-error"))
		require.Equal(t, 1, strings.Count(e.logs.String(), "connection refused"), "logs are rate limited")
	})
	t.Run("client gone", func(t *testing.T) {
		e := newUnitEnv(t, Options{})
		e.src.err = context.Canceled
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := post(e.request(t, testpki.RandomSerial(), crypto.SHA1), "application/ocsp-request").WithContext(ctx)
		requireError(t, e.do(r), http.StatusServiceUnavailable, TryLaterDER)
		require.Equal(t, 1.0, e.count(t, "tryLater", "canceled"))
		require.Empty(t, e.logs.String())
	})
}

// TestOverBoltStore serves the fixture's real bbolt store.
func TestOverBoltStore(t *testing.T) {
	f := newFixture(t)
	base := serve(t, f.handler(t, Options{}))
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		issuer *x509.Certificate
		want   int
	}{
		{"good", f.good, f.caA.Intermediate, ocsp.Good},
		{"revoked", f.revoked, f.caA.Intermediate, ocsp.Revoked},
		{"ct-failed precert", f.ctFailed, f.caA.Intermediate, ocsp.Good},
		{"delegated", f.delegated, f.caB.Intermediate, ocsp.Good},
		{"unknown", f.unknown, f.caA.Intermediate, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(base+"/", "application/ocsp-request", bytes.NewReader(ocspRequest(t, tc.cert, tc.issuer, crypto.SHA1)))
			require.NoError(t, err)
			defer resp.Body.Close()
			var body bytes.Buffer
			_, err = body.ReadFrom(resp.Body)
			require.NoError(t, err)
			if tc.want < 0 {
				require.Equal(t, UnauthorizedDER, body.String())
				return
			}
			parsed, err := ocsp.ParseResponseForCert(body.Bytes(), tc.cert, tc.issuer)
			require.NoError(t, err)
			signer := tc.issuer
			if parsed.Certificate != nil {
				signer = parsed.Certificate // verified against the issuer by ParseResponseForCert
			}
			require.NoError(t, parsed.CheckSignatureFrom(signer))
			require.Equal(t, tc.want, parsed.Status)
		})
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	reg := prometheus.NewRegistry()
	src := &fakeSource{m: map[ocspstate.Key][]byte{}}
	for range 2 {
		_, err := New(src, Options{Issuers: []*x509.Certificate{ca.Intermediate}, Registerer: reg})
		require.NoError(t, err)
	}
}

func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(time.Minute)
	t0 := time.Now()
	ok, n := l.allow("k", t0)
	require.True(t, ok)
	require.Zero(t, n)
	for range 5 {
		ok, _ = l.allow("k", t0.Add(time.Second))
		require.False(t, ok)
	}
	ok, _ = l.allow("other", t0)
	require.True(t, ok)
	ok, n = l.allow("k", t0.Add(2*time.Minute))
	require.True(t, ok)
	require.Equal(t, 5, n)
}

// TestEscapedPathEquivalence: escapedPath returns u.EscapedPath() when
// RawPath is consistent, and otherwise decodes to the same outcome.
func TestEscapedPathEquivalence(t *testing.T) {
	e := newUnitEnv(t, Options{})
	_, b64 := e.findSerial(t, func(s string) bool { return strings.Contains(s, "/") && strings.Contains(s, "+") })
	pct := url.QueryEscape(b64)
	unesc, err := url.PathUnescape(pct)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		u    *url.URL
		same bool // escapedPath(u) == u.EscapedPath()
	}{
		{"consistent RawPath", &url.URL{Path: "/" + unesc, RawPath: "/" + pct}, true},
		{"no RawPath", &url.URL{Path: "/" + b64}, true},
		{"stale RawPath after a rewrite", &url.URL{Path: "/other/" + b64, RawPath: "/" + pct}, false},
		{"space in Path", &url.URL{Path: "/" + strings.ReplaceAll(b64, "+", " ")}, false},
		{"percent in Path", &url.URL{Path: "/M%41"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.same {
				require.Equal(t, tc.u.EscapedPath(), escapedPath(tc.u))
			}
			requireSameDecoding(t, tc.u)
		})
	}
}

// TestMemoOverBoltStore holds the memo contract on the real store, not
// only on memoFake: a memo set for a response that has since been replaced
// (by a re-signed one of the same length, or by a revocation) is refused;
// the new response is served with its own verdict and ETag; and requests
// served while it is replaced always get a body that validates, with the
// ETag of that very body. A stale verdict or ETag would let a cache
// revalidating with If-None-Match keep serving "good" after a revocation.
func TestMemoOverBoltStore(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	issuer := f.caA.Intermediate
	id := ocspstate.IssuerIDOf(issuer)
	serial := f.good.SerialNumber
	// check serves one GET and returns the status of the body, or why the
	// answer is not consistent.
	u, err := url.ParseRequestURI("/" + b64Escaped(ocspRequest(t, f.good, issuer, crypto.SHA1)))
	require.NoError(t, err)
	check := func() (ocspstate.Status, error) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
		if w.Code != http.StatusOK {
			return 0, fmt.Errorf("status %d", w.Code)
		}
		sum := sha256.Sum256(w.Body.Bytes())
		if etag := `"` + hex.EncodeToString(sum[:]) + `"`; w.Header().Get("ETag") != etag {
			return 0, fmt.Errorf("ETag %s for a body whose is %s", w.Header().Get("ETag"), etag)
		}
		info, err := ocspstate.Validate(w.Body.Bytes(), issuer, ocspstate.Expect{Serial: serial})
		if err != nil {
			return 0, err
		}
		return info.Status, nil
	}
	served := func() (der []byte, memo ocspstate.Memo) {
		t.Helper()
		st, err := check()
		require.NoError(t, err)
		require.NotZero(t, st)
		der, memo, ok := f.store.CachedResponse(id, serial)
		require.True(t, ok)
		require.NotZero(t, memo, "the handler kept its verdict beside the response")
		return der, memo
	}

	// Re-signed, same status, same length: only the bytes' identity tells
	// the old memo from a valid one.
	old, memo := served()
	for range 64 { // an ECDSA signature's length varies by an octet or two
		f.resign(t, serial, time.Time{})
		if cur, _, _ := f.store.CachedResponse(id, serial); len(cur) == len(old) {
			break
		}
	}
	cur, _, _ := f.store.CachedResponse(id, serial)
	require.Len(t, cur, len(old))
	require.False(t, f.store.SetMemo(id, serial, old, memo), "a memo for the replaced bytes is refused")
	old, memo = served()

	// Revoked while requests are served on all cores: each worker serves
	// the good response before the revocation, then keeps serving until it
	// sees it, and must never see good again after revoked. (The deadline
	// only keeps a broken handler from hanging the test.)
	deadline := time.Now().Add(30 * time.Second)
	var serving, wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		serving.Add(1)
		wg.Go(func() {
			st, err := check()
			serving.Done()
			if err == nil && st != ocspstate.Good {
				err = fmt.Errorf("status %v before the revocation", st)
			}
			for err == nil && st != ocspstate.Revoked {
				if time.Now().After(deadline) {
					err = errors.New("the revocation was never served")
					break
				}
				st, err = check()
			}
			for i := 0; err == nil && i < 100; i++ {
				if st, err = check(); err == nil && st != ocspstate.Revoked {
					err = fmt.Errorf("status %v served after the revocation was", st)
				}
			}
			errs <- err
		})
	}
	serving.Wait()
	f.resign(t, serial, time.Now().Add(-time.Second))
	wg.Wait()
	for range 4 {
		require.NoError(t, <-errs)
	}
	require.False(t, f.store.SetMemo(id, serial, old, memo), "a memo for the replaced bytes is refused")
	st, err := check()
	require.NoError(t, err)
	require.Equal(t, ocspstate.Revoked, st)
}
