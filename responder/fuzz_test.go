package responder

import (
	"crypto"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// fuzzEnv is a handler with a good and a revoked response stored, and the
// requests for them as seeds.
func fuzzEnv(f *testing.F) (*unitEnv, [][]byte) {
	e := newUnitEnv(f, Options{})
	good, revoked := testpki.RandomSerial(), testpki.RandomSerial()
	e.add(f, good, ocspstate.Good)
	e.add(f, revoked, ocspstate.Revoked)
	reqs := [][]byte{
		e.request(f, good, crypto.SHA1),
		e.request(f, revoked, crypto.SHA1),
		e.request(f, good, crypto.SHA256),
		e.request(f, testpki.RandomSerial(), crypto.SHA1),
		withNonce(f, e.request(f, good, crypto.SHA1)),
		twoCertIDs(f, e.request(f, good, crypto.SHA1), e.request(f, revoked, crypto.SHA1)),
	}
	return e, reqs
}

// withNonce adds an RFC 8954 nonce extension to a request, as openssl does
// by default.
func withNonce(t testing.TB, der []byte) []byte {
	t.Helper()
	s := cryptobyte.String(der)
	var req, tbs cryptobyte.String
	require.True(t, s.ReadASN1(&req, cbasn1.SEQUENCE) && req.ReadASN1(&tbs, cbasn1.SEQUENCE))
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(tbs)
			b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier([]int{1, 3, 6, 1, 5, 5, 7, 48, 1, 2})
						b.AddASN1OctetString([]byte{0x04, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// requireWellFormed is invariant I5 for one response: the body is one of
// the compiled-in error responses, or a successful response that
// validates for the handler's issuer, or empty on a 304.
func requireWellFormed(t *testing.T, e *unitEnv, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.Bytes()
	if w.Code == http.StatusNotModified {
		require.Empty(t, body)
		return
	}
	require.Equal(t, "application/ocsp-response", w.Header().Get("Content-Type"))
	switch string(body) {
	case MalformedRequestDER, InternalErrorDER, TryLaterDER, UnauthorizedDER:
		require.Equal(t, "max-age=0, no-cache", w.Header().Get("Cache-Control"))
		if string(body) == UnauthorizedDER {
			require.Equal(t, http.StatusOK, w.Code)
		} else {
			require.NotEqual(t, http.StatusOK, w.Code)
		}
		return
	}
	require.Equal(t, http.StatusOK, w.Code)
	resp, err := ocsp.ParseResponse(body, e.ca.Intermediate)
	require.NoError(t, err, "body % x", body)
	_, err = ocspstate.Validate(body, e.ca.Intermediate, ocspstate.Expect{Serial: resp.SerialNumber, Now: e.clock()})
	require.NoError(t, err)
}

// FuzzGET feeds arbitrary escaped paths to the handler.
func FuzzGET(f *testing.F) {
	e, reqs := fuzzEnv(f)
	for _, der := range reqs {
		b64 := base64.StdEncoding.EncodeToString(der)
		f.Add("/" + url.QueryEscape(b64))
		f.Add("/ocsp/" + b64)
		f.Add("/" + strings.ReplaceAll(b64, "+", "%20"))
		f.Add("/" + strings.TrimRight(b64, "="))
	}
	for _, s := range []string{"/", "//", "/M", "/M%", "/MA==", "/M/M/M/M/M/M/M/M/M/M", "/%4D", "/ocsp/M%2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		urls := []*url.URL{{Path: path}, {Path: path, RawPath: path}}
		if p, err := url.PathUnescape(path); err == nil {
			urls = append(urls, &url.URL{Path: p, RawPath: path})
		}
		for _, u := range urls {
			requireSameDecoding(t, u)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
			requireWellFormed(t, e, w)
		}
	})
}

// requireSameDecoding checks that decoding escapedPath(u) has the outcome
// decoding u.EscapedPath() has.
func requireSameDecoding(t *testing.T, u *url.URL) {
	t.Helper()
	var got, want request
	gotErr := decodeGET(escapedPath(u), &got)
	wantErr := decodeGET(u.EscapedPath(), &want)
	require.Equal(t, wantErr == nil, gotErr == nil, "escapedPath %q, EscapedPath %q: %v, %v", escapedPath(u), u.EscapedPath(), gotErr, wantErr)
	if wantErr == nil {
		require.Equal(t, want.hash, got.hash)
		require.Equal(t, want.issuer, got.issuer)
		require.Zero(t, want.serial.Cmp(&got.serial))
	}
}

// FuzzPOST feeds arbitrary bodies to the handler.
func FuzzPOST(f *testing.F) {
	e, reqs := fuzzEnv(f)
	for _, der := range reqs {
		f.Add(der)
		f.Add(der[:len(der)/2])
	}
	for _, s := range [][]byte{nil, {0x30}, {0x30, 0x00}, []byte(UnauthorizedDER), []byte("<html>")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, post(body, "application/ocsp-request"))
		requireWellFormed(t, e, w)
	})
}

// FuzzBase64Segment holds decodeBase64Segment to its definition: undo the
// percent-encoding, repair the quirks, then decode as
// base64.RawStdEncoding. Both must refuse the same inputs and agree on
// every byte of the others.
func FuzzBase64Segment(f *testing.F) {
	for _, s := range []string{"", "M", "MA", "MAA", "MAAA", "MA==", "MA=A", "M%41", "M%4", "M%zz",
		"M A", "M-_+/", "MA\r\nAA", "M%25", "M%3D%3D", "MIIB/w==", "M\x00", "Mé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotErr := decodeBase64Segment(s)
		want, wantErr := referenceBase64Segment(s)
		require.Equal(t, wantErr == nil, gotErr == nil, "%q: got %v, want %v", s, gotErr, wantErr)
		if wantErr == nil {
			require.Equal(t, want, got, "%q", s)
		} else {
			require.ErrorIs(t, gotErr, errMalformed)
		}
	})
}

// referenceBase64Segment is decodeBase64Segment written the slow, obvious
// way, in two passes, with the standard library for both: url.PathUnescape
// (which leaves '+' alone, as a path does), then the quirks repaired, then
// base64.RawStdEncoding.
func referenceBase64Segment(s string) ([]byte, error) {
	unescaped, err := url.PathUnescape(s)
	if err != nil {
		return nil, errMalformed
	}
	text := make([]byte, 0, len(unescaped))
	for _, c := range []byte(unescaped) {
		switch c {
		case ' ', '-':
			text = append(text, '+')
		case '_':
			text = append(text, '/')
		case '\r', '\n', '=':
		default:
			text = append(text, c)
		}
	}
	return base64.RawStdEncoding.AppendDecode([]byte{}, text)
}
