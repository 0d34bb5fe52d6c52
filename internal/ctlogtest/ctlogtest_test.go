package ctlogtest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
)

const day = 24 * time.Hour

func newPrecert(t testing.TB) *ctlogtest.Precert {
	t.Helper()
	p, err := ctlogtest.NewPrecert(testpki.Shared(t, testpki.ECDSAP256), 90*day, "www.precert.test")
	require.NoError(t, err)
	return p
}

// post submits chain to path and returns the status, Retry-After and body.
func post(t testing.TB, client *http.Client, url string, chain [][]byte) (int, string, []byte) {
	t.Helper()
	body, err := json.Marshal(ct.AddChainRequest{Chain: chain})
	require.NoError(t, err)
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// decode turns an add-chain response into an SCT.
func decode(t testing.TB, body []byte) *ct.SignedCertificateTimestamp {
	t.Helper()
	var r ct.AddChainResponse
	require.NoError(t, json.Unmarshal(body, &r))
	sct, err := r.ToSignedCertificateTimestamp()
	require.NoError(t, err)
	return sct
}

func TestModes(t *testing.T) {
	p := newPrecert(t)
	l := ctlogtest.New(t, ctlogtest.Options{Name: "modes", RetryAfter: 1500 * time.Millisecond})
	desc := l.Log()
	url := l.URL + ct.AddPreChainPath
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		mode       ctlogtest.Mode
		status     int
		retryAfter string
		check      func(t *testing.T, body []byte)
	}{
		{ctlogtest.Accept, 200, "", func(t *testing.T, body []byte) {
			require.NoError(t, ctsubmit.VerifySCT(desc, p.Chain, decode(t, body)))
		}},
		{ctlogtest.Reject, 400, "", func(t *testing.T, body []byte) {
			require.Contains(t, string(body), "mode reject")
		}},
		{ctlogtest.RateLimit, 429, "2", nil},
		{ctlogtest.Unavailable, 503, "", nil},
		{ctlogtest.Garbage, 200, "", func(t *testing.T, body []byte) {
			require.False(t, json.Valid(body))
		}},
		{ctlogtest.BadSignature, 200, "", func(t *testing.T, body []byte) {
			sct := decode(t, body)
			require.Equal(t, l.ID(), sct.LogID.KeyID)
			require.ErrorContains(t, ctsubmit.VerifySCT(desc, p.Chain, sct), "signature does not verify")
		}},
		{ctlogtest.WrongLogID, 200, "", func(t *testing.T, body []byte) {
			sct := decode(t, body)
			require.NotEqual(t, l.ID(), sct.LogID.KeyID)
			require.ErrorContains(t, ctsubmit.VerifySCT(desc, p.Chain, sct), "is not the log's ID")
			// The signature itself is the log's: the LogID is not signed.
			sct.LogID.KeyID = l.ID()
			require.NoError(t, ctsubmit.VerifySCT(desc, p.Chain, sct))
		}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			l.Reset()
			l.SetMode(tc.mode)
			require.Equal(t, tc.mode, l.Mode())
			status, ra, body := post(t, client, url, p.Chain)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.retryAfter, ra)
			if tc.check != nil {
				tc.check(t, body)
			}
			subs := l.Submissions()
			require.Len(t, subs, 1)
			require.Equal(t, tc.mode, subs[0].Mode)
			require.Equal(t, tc.status, subs[0].Status)
			require.True(t, subs[0].Precert)
			require.Equal(t, p.Chain, subs[0].Chain)
		})
	}
	t.Run("hang", func(t *testing.T) {
		l.Reset()
		l.SetMode(ctlogtest.Hang)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		body, err := json.Marshal(ct.AddChainRequest{Chain: p.Chain})
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		require.NoError(t, err)
		_, err = http.DefaultClient.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Eventually(t, func() bool { return len(l.Submissions()) == 1 }, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, 0, l.Submissions()[0].Status)
	})
}

func TestRequests(t *testing.T) {
	p := newPrecert(t)
	l := ctlogtest.New(t, ctlogtest.Options{})
	client := &http.Client{Timeout: 5 * time.Second}
	final, err := p.Final(mustSCTExt(t))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		path   string
		chain  [][]byte
		status int
	}{
		{"precert on add-chain", ct.AddChainPath, p.Chain, 400},
		{"certificate on add-pre-chain", ct.AddPreChainPath, [][]byte{final.Raw, p.Chain[1]}, 400},
		{"precert without issuer", ct.AddPreChainPath, p.Chain[:1], 400},
		{"empty chain", ct.AddPreChainPath, nil, 400},
		{"garbage certificate", ct.AddPreChainPath, [][]byte{[]byte("x")}, 400},
		{"certificate on add-chain", ct.AddChainPath, [][]byte{final.Raw, p.Chain[1]}, 200},
		{"unknown path", "/ct/v1/get-sth", p.Chain, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, _ := post(t, client, l.URL+tc.path, tc.chain)
			require.Equal(t, tc.status, status)
		})
	}
	resp, err := client.Get(l.URL + ct.AddPreChainPath)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// The add-chain SCT is over the certificate itself.
	status, _, body := post(t, client, l.URL+ct.AddChainPath, [][]byte{final.Raw})
	require.Equal(t, 200, status)
	ctFinal, err := ctx509.ParseCertificate(final.Raw)
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(l.PublicKey())
	require.NoError(t, err)
	v, err := ct.NewSignatureVerifier(pub)
	require.NoError(t, err)
	leaf := ct.CreateX509MerkleTreeLeaf(ct.ASN1Cert{Data: ctFinal.Raw}, decode(t, body).Timestamp)
	require.NoError(t, v.VerifySCTSignature(*decode(t, body), ct.LogEntry{Leaf: *leaf}))
}

func mustSCTExt(t testing.TB) pkix.Extension {
	t.Helper()
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1, Timestamp: 1,
		Signature: ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: []byte{1}},
	}
	raw, err := cttls.Marshal(sct)
	require.NoError(t, err)
	ext, err := ctsubmit.SCTListExtension([][]byte{raw})
	require.NoError(t, err)
	return ext
}

func TestLogDescription(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := ctlogtest.NewUnstarted(ctlogtest.Options{
		Name: "Test Log 2026!", Key: key, Tiled: true, TemporalStart: start, TemporalEnd: start.AddDate(1, 0, 0),
	})
	require.NoError(t, err)
	d := l.Log()
	require.Equal(t, "Test Log 2026!", d.Name)
	require.Equal(t, "Test Log 2026!", d.Operator, "the operator defaults to the name")
	require.Regexp(t, `^http://test-log-2026-\d+\.ctlogtest\.invalid$`, d.URL)
	require.True(t, d.Tiled)
	require.Equal(t, start, d.TemporalStart)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	require.Equal(t, spki, d.Key)
	require.Equal(t, sha256.Sum256(spki), d.ID())
	require.Equal(t, d.ID(), l.ID())
	require.NotSame(t, d, l.Log(), "each call returns a new Log")

	_, err = ctlogtest.NewUnstarted(ctlogtest.Options{Mode: ctlogtest.Mode(99)})
	require.Error(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, err = ctlogtest.NewUnstarted(ctlogtest.Options{Key: p384})
	require.ErrorContains(t, err, "P-256")
}

func TestStartAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	l, err := ctlogtest.Start(ctlogtest.Options{Addr: addr})
	require.NoError(t, err)
	require.Equal(t, "http://"+addr, l.URL)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	_, err = ctlogtest.Start(ctlogtest.Options{Addr: "256.0.0.1:1"})
	require.Error(t, err)
}

// TestCloseReleasesHang checks that Close returns while a request hangs,
// and the request ends.
func TestCloseReleasesHang(t *testing.T) {
	p := newPrecert(t)
	l, err := ctlogtest.Start(ctlogtest.Options{Mode: ctlogtest.Hang})
	require.NoError(t, err)
	done := make(chan int, 1)
	body, err := json.Marshal(ct.AddChainRequest{Chain: p.Chain})
	require.NoError(t, err)
	go func() { // no require here: not the test's goroutine
		resp, err := http.Post(l.URL+ct.AddPreChainPath, "application/json", bytes.NewReader(body))
		if err != nil {
			done <- 0
			return
		}
		_ = resp.Body.Close()
		done <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return l.Pending() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, l.Close())
	require.Equal(t, http.StatusServiceUnavailable, <-done, "the hung request is answered when the log closes")
	require.Zero(t, l.Pending())
	require.Len(t, l.Submissions(), 1)
	require.Equal(t, http.StatusServiceUnavailable, l.Submissions()[0].Status)
}

func TestTransportAndDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPrecert(t)
		a, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "a", Delay: 3 * time.Second})
		require.NoError(t, err)
		b, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "b"})
		require.NoError(t, err)
		client := &http.Client{Transport: ctlogtest.Transport(a, b)}

		start := time.Now()
		status, _, body := post(t, client, a.URL+ct.AddPreChainPath, p.Chain)
		require.Equal(t, 200, status)
		require.Equal(t, 3*time.Second, time.Since(start))
		require.NoError(t, ctsubmit.VerifySCT(a.Log(), p.Chain, decode(t, body)))
		require.Equal(t, 3*time.Second, a.Submissions()[0].Duration)

		status, _, _ = post(t, client, b.URL+ct.AddPreChainPath, p.Chain)
		require.Equal(t, 200, status)
		require.Empty(t, b.Submissions()[0].Duration)

		// A client that gives up during the delay gets its context's error.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+ct.AddPreChainPath, bytes.NewReader([]byte("{}")))
		require.NoError(t, err)
		_, err = client.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 0, a.Submissions()[1].Status)

		_, err = client.Get("http://elsewhere.invalid/")
		require.ErrorContains(t, err, "no log at")

		// SetDelay and SetMode apply to the next request.
		a.SetDelay(0)
		a.SetMode(ctlogtest.Reject)
		start = time.Now()
		status, _, _ = post(t, client, a.URL+ct.AddPreChainPath, p.Chain)
		require.Equal(t, 400, status)
		require.Zero(t, time.Since(start))

		// A closed log answers 503.
		require.NoError(t, b.Close())
		status, _, _ = post(t, client, b.URL+ct.AddPreChainPath, p.Chain)
		require.Equal(t, 503, status)
	})
}

func TestParseMode(t *testing.T) {
	for _, m := range ctlogtest.Modes {
		got, err := ctlogtest.ParseMode(m.String())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	_, err := ctlogtest.ParseMode("explode")
	require.ErrorContains(t, err, "want one of accept, reject")
	require.Equal(t, "Mode(42)", ctlogtest.Mode(42).String())
}

// TestPrecertCorrespondence checks that Final's TBS is the precert's with
// the poison replaced by the SCT list, as RFC 6962 §3.1 requires: both
// reduce to the same precertificate TBS.
func TestPrecertCorrespondence(t *testing.T) {
	p := newPrecert(t)
	final, err := p.Final(mustSCTExt(t))
	require.NoError(t, err)
	require.Equal(t, p.Cert.SerialNumber, final.SerialNumber)
	preTBS, err := ctx509.BuildPrecertTBS(p.Cert.RawTBSCertificate, nil)
	require.NoError(t, err)
	finalTBS, err := ctx509.RemoveSCTList(final.RawTBSCertificate)
	require.NoError(t, err)
	require.Equal(t, preTBS, finalTBS)
	require.Equal(t, append([][]byte{p.Cert.Raw}, p.CA.ChainDER()...), p.Chain)
}

// TestSCTVerifiesWithCTGo checks the log's precertificate SCTs with
// certificate-transparency-go alone — its own leaf from the chain, its
// own verifier — independently of the encoding the log signs with and
// ctsubmit verifies with.
func TestSCTVerifiesWithCTGo(t *testing.T) {
	l := ctlogtest.New(t, ctlogtest.Options{Name: "ctgo"})
	pub, err := x509.ParsePKIXPublicKey(l.PublicKey())
	require.NoError(t, err)
	v, err := ct.NewSignatureVerifier(pub)
	require.NoError(t, err)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, kt := range testpki.KeyTypes {
		p, err := ctlogtest.NewPrecert(testpki.Shared(t, kt), 90*day, "ctgo.precert.test")
		require.NoError(t, err)
		for _, mode := range []ctlogtest.Mode{ctlogtest.Accept, ctlogtest.BadSignature} {
			l.SetMode(mode)
			status, _, body := post(t, client, l.URL+ct.AddPreChainPath, p.Chain)
			require.Equal(t, 200, status)
			sct := decode(t, body)
			var raw []ct.ASN1Cert
			for _, c := range p.Chain {
				raw = append(raw, ct.ASN1Cert{Data: c})
			}
			leaf, err := ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, sct.Timestamp)
			require.NoError(t, err)
			err = v.VerifySCTSignature(*sct, ct.LogEntry{Leaf: *leaf})
			if mode == ctlogtest.Accept {
				require.NoError(t, err, kt.String())
			} else {
				require.Error(t, err, kt.String())
			}
		}
	}
}
