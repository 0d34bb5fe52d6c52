package responder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certpipe/precert/ocspstate"
	"github.com/stretchr/testify/require"
)

// tamper serves h, except for requests fn answers itself (fn returns
// true). It parses the OCSP request the way the handler does.
func tamper(h http.Handler, fn func(w http.ResponseWriter, req *request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		var err error
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			err = parseRequest(body, &req)
		} else {
			err = decodeGET(r.URL.EscapedPath(), &req)
		}
		if err == nil && fn(w, &req) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// failure is a failed check, reduced to what tests compare.
type failure struct {
	serial  string // "unknown" for the random serial
	name    string
	problem ocspstate.Problem
}

func failures(rep *Report) []failure {
	var out []failure
	for _, c := range rep.Failed() {
		serial := "unknown"
		if !strings.HasPrefix(c.Target, "unknown") {
			serial, _, _ = strings.Cut(strings.TrimPrefix(c.Target, "serial "), " ")
		}
		out = append(out, failure{serial, c.name(), c.Problem})
	}
	return out
}

func (c Check) name() string { return c.Method + " " + c.Name }

// probeFixture probes f's good, revoked, CT-failed and delegated
// certificates at base.
func probeFixture(t *testing.T, f *fixture, base string, p *Prober) *Report {
	t.Helper()
	if p == nil {
		p = &Prober{Timeout: 10 * time.Second}
	}
	rep, err := p.Probe(context.Background(), base, f.issuers(),
		ProbeTarget{Cert: f.good},
		ProbeTarget{Cert: f.revoked, WantStatus: ocspstate.Revoked},
		ProbeTarget{Cert: f.ctFailed, WantStatus: ocspstate.Good},
		ProbeTarget{Cert: f.delegated},
	)
	require.NoError(t, err)
	t.Log(rep)
	return rep
}

func TestProbeHealthyResponder(t *testing.T) {
	f := newFixture(t)
	base := serve(t, f.handler(t, Options{}))
	rep := probeFixture(t, f, base+"/ocsp", nil)
	require.True(t, rep.OK(), "%s", rep)
	// Per issuer: GET and POST × (http, content-type, body, no-cache);
	// per target: GET and POST × (http, content-type, response, fresh,
	// status, cache-headers).
	require.Len(t, rep.Checks, 2*2*4+4*2*6)
	require.Contains(t, rep.String(), "(precertificate), want good")

	t.Run("package-level Probe", func(t *testing.T) {
		rep, err := Probe(context.Background(), base+"/", f.issuers(), f.good, f.ctFailed, f.delegated)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s", rep)
	})
	t.Run("SHA-256 CertIDs", func(t *testing.T) {
		rep, err := (&Prober{CertIDHash: crypto.SHA256}).Probe(context.Background(), base, f.issuers(), ProbeTarget{Cert: f.sha256})
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s", rep)
	})
}

// The acceptance cases of the issue, each in its own test: what a probe
// must flag.

func TestProbeFlagsOneByteBody(t *testing.T) {
	f := newFixture(t)
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write([]byte{0x30}) // the DigiCert incident: a 1-byte body
	}))
	rep := probeFixture(t, f, base, nil)
	require.False(t, rep.OK())
	fs := failures(rep)
	// Unknown serials: body and no-cache (no Cache-Control at all), for
	// 2 issuers over GET and POST; targets: response, for 4 targets over
	// GET and POST.
	require.Len(t, fs, 2*2*2+4*2, "%s", rep)
	for _, fl := range fs {
		if fl.serial == "unknown" {
			require.Regexp(t, " (body|no-cache)$", fl.name)
		} else {
			require.Contains(t, fl.name, " response")
			require.Equal(t, ocspstate.ProblemMalformed, fl.problem)
		}
	}
	require.Contains(t, rep.String(), "of 1 bytes 30 (too short to be any OCSPResponse)")
}

func TestProbeFlagsHTMLErrorPage(t *testing.T) {
	f := newFixture(t)
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}))
	rep := probeFixture(t, f, base, nil)
	fs := failures(rep)
	for _, want := range []failure{
		{"unknown", "GET content-type", 0}, {"unknown", "GET body", 0}, {"unknown", "POST body", 0},
		{ocspstate.SerialHex(f.good.SerialNumber), "GET content-type", 0},
		{ocspstate.SerialHex(f.good.SerialNumber), "GET response", ocspstate.ProblemMalformed},
		{ocspstate.SerialHex(f.good.SerialNumber), "POST response", ocspstate.ProblemMalformed},
	} {
		require.Contains(t, fs, want, "%s", rep)
	}
	require.Contains(t, rep.String(), "(looks like HTML)")
}

func TestProbeFlagsCachedUnauthorized(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	base := serve(t, tamper(h, func(w http.ResponseWriter, req *request) bool {
		if _, err := f.store.Response(context.Background(), ocspstate.IssuerIDOf(f.caA.Intermediate), &req.serial); err == nil {
			return false
		}
		if _, err := f.store.Response(context.Background(), ocspstate.IssuerIDOf(f.caB.Intermediate), &req.serial); err == nil {
			return false
		}
		// The right bytes, with headers that let a CDN keep them for a day.
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Header().Set("Cache-Control", "max-age=86400, public")
		io.WriteString(w, UnauthorizedDER)
		return true
	}))
	rep := probeFixture(t, f, base, nil)
	require.ElementsMatch(t, []failure{
		{"unknown", "GET no-cache", 0}, {"unknown", "POST no-cache", 0},
		{"unknown", "GET no-cache", 0}, {"unknown", "POST no-cache", 0},
	}, failures(rep), "%s", rep)
}

// TestProbeFlagsBadResponse serves a bad response for f.good's serial in
// place of the handler's, and expects exactly the failed check.
func TestProbeFlagsBadResponse(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	for _, tc := range []struct {
		name    string
		body    func(t *testing.T) []byte
		check   string
		problem ocspstate.Problem
	}{
		{"stale", func(t *testing.T) []byte {
			// Signed 100 hours ago for 96 hours: nextUpdate passed 4 hours ago.
			old, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.caA.Intermediate, Key: f.caA.IntermediateKey,
				Now: func() time.Time { return time.Now().Add(-100 * time.Hour) }})
			require.NoError(t, err)
			stale, err := old.Sign(f.good.SerialNumber, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			return stale.DER
		}, "fresh", ocspstate.ProblemExpired},
		{"for another serial", func(t *testing.T) []byte {
			// Valid, signed, fresh, good: for the wrong serial.
			other, err := f.store.Response(context.Background(), ocspstate.IssuerIDOf(f.caA.Intermediate), f.ctFailed.SerialNumber)
			require.NoError(t, err)
			return other
		}, "response", ocspstate.ProblemSerial},
		{"wrong key", func(t *testing.T) []byte { return wrongKeyResponse(t, f.caA, f.good) }, "response", ocspstate.ProblemSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.body(t)
			base := serve(t, tamper(h, func(w http.ResponseWriter, req *request) bool {
				if req.serial.Cmp(f.good.SerialNumber) != 0 {
					return false
				}
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Header().Set("Cache-Control", "max-age=0, public, no-transform, must-revalidate")
				w.Write(bad)
				return true
			}))
			rep := probeFixture(t, f, base, nil)
			good := ocspstate.SerialHex(f.good.SerialNumber)
			require.ElementsMatch(t, []failure{
				{good, "GET " + tc.check, tc.problem}, {good, "POST " + tc.check, tc.problem},
			}, failures(rep), "%s", rep)
		})
	}
}

func TestProbeFlagsWrongStatus(t *testing.T) {
	f := newFixture(t)
	base := serve(t, f.handler(t, Options{}))
	rep, err := Probe(context.Background(), base, f.issuers(), f.revoked) // wants good
	require.NoError(t, err)
	revoked := ocspstate.SerialHex(f.revoked.SerialNumber)
	require.ElementsMatch(t, []failure{
		{revoked, "GET status", ocspstate.ProblemStatus}, {revoked, "POST status", ocspstate.ProblemStatus},
	}, failures(rep), "%s", rep)
}

func TestProbeFlagsCacheHeaders(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, Options{})
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"max-age past nextUpdate", map[string]string{"Cache-Control": "max-age=8640000, public"}},
		{"no max-age", map[string]string{"Cache-Control": "public"}},
		{"no Cache-Control", map[string]string{"Cache-Control": ""}},
		{"Expires past nextUpdate", map[string]string{"Expires": time.Now().Add(30 * 24 * time.Hour).UTC().Format(http.TimeFormat)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := &headerRewriter{ResponseWriter: w, header: tc.header}
				h.ServeHTTP(rec, r)
			}))
			rep, err := Probe(context.Background(), base, f.issuers(), f.good)
			require.NoError(t, err)
			good := ocspstate.SerialHex(f.good.SerialNumber)
			require.ElementsMatch(t, []failure{{good, "GET cache-headers", 0}, {good, "POST cache-headers", 0}}, failures(rep), "%s", rep)
		})
	}
}

// headerRewriter overrides headers of successful responses just before
// they are written.
type headerRewriter struct {
	http.ResponseWriter
	header map[string]string
}

func (h *headerRewriter) WriteHeader(code int) {
	if code == http.StatusOK && len(h.Header().Get("ETag")) > 0 {
		for k, v := range h.header {
			if v == "" {
				h.Header().Del(k)
			} else {
				h.Header().Set(k, v)
			}
		}
	}
	h.ResponseWriter.WriteHeader(code)
}

func TestProbeTransportFailures(t *testing.T) {
	f := newFixture(t)
	hang := make(chan struct{})
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		detail  string
	}{
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		}, "deadline exceeded"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, "HTTP 302"},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, UnauthorizedDER)
		}, "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, tc.handler)
			t.Cleanup(func() {
				select {
				case <-hang:
				default:
					close(hang) // release the hanging handler before the server closes
				}
			})
			rep, err := (&Prober{Timeout: 200 * time.Millisecond}).Probe(context.Background(), base, f.issuers()[:1], ProbeTarget{Cert: f.good})
			require.NoError(t, err)
			require.Len(t, rep.Checks, 4, "only the http check of each request:\n%s", rep)
			for _, c := range rep.Checks {
				require.False(t, c.OK)
				require.Equal(t, "http", c.Name)
				require.Contains(t, c.Detail, tc.detail)
			}
		})
	}
}

func TestProbeArguments(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name    string
		url     string
		issuers []*x509.Certificate
		targets []ProbeTarget
		want    string
	}{
		{"no issuers", "http://127.0.0.1:1/", nil, nil, "at least one issuer"},
		{"bad scheme", "ftp://127.0.0.1/", f.issuers(), nil, "not an http or https URL"},
		{"no host", "http:///ocsp", f.issuers(), nil, "not an http or https URL"},
		{"foreign certificate", "http://127.0.0.1:1/", []*x509.Certificate{f.caB.Intermediate}, []ProbeTarget{{Cert: f.good}}, "signed by none of the issuers"},
		{"bad status", "http://127.0.0.1:1/", f.issuers(), []ProbeTarget{{Cert: f.good, WantStatus: 9}}, "WantStatus"},
		{"no certificate", "http://127.0.0.1:1/", f.issuers(), []ProbeTarget{{}}, "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Prober{}).Probe(context.Background(), tc.url, tc.issuers, tc.targets...)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rep, err := Probe(ctx, "http://127.0.0.1:1/", f.issuers())
		require.ErrorIs(t, err, context.Canceled)
		require.NotNil(t, rep)
	})
}

func TestUncacheable(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want bool
	}{
		{"max-age=0, no-cache", true},
		{"no-store", true},
		{"max-age=0", true},
		{"max-age=0, s-maxage=60", false},
		{"max-age=60", false},
		{"public", false},
		{"", false},
	} {
		t.Run(tc.cc, func(t *testing.T) { require.Equal(t, tc.want, uncacheable(tc.cc)) })
	}
}

func TestIsPrecert(t *testing.T) {
	f := newFixture(t)
	require.True(t, isPrecert(f.goodPre))
	require.True(t, isPrecert(f.ctFailed))
	require.False(t, isPrecert(f.good))
	require.False(t, isPrecert(&x509.Certificate{SerialNumber: big.NewInt(1)}))
}
