package responder

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
)

// fixture is a real bbolt store holding one record per case the client
// tests cover, under two issuers: A (ECDSA P-256) signs its responses
// directly, B (RSA-2048) through its delegated responder certificate. The
// two hierarchies have distinct names: NSS finds a response's signer by
// name, and testpki names hierarchies by key type.
//
// Every certificate's AIA OCSP URL points at a loopback listener the
// fixture holds, so that clients which only follow AIA (NSS without a
// default responder) reach the handler started by serveAIA.
type fixture struct {
	ln      net.Listener
	url     string // AIA OCSP URL: http://127.0.0.1:port/ocsp/
	store   *ocspstate.BoltStore
	caA     *testpki.CA
	caB     *testpki.CA
	signerA *ocspstate.ResponseSigner
	signerB *ocspstate.ResponseSigner

	good      *x509.Certificate // final certificate, Issued, good
	revoked   *x509.Certificate // final certificate, Issued, revoked (keyCompromise)
	ctFailed  *x509.Certificate // precertificate whose CT submission failed, good
	unknown   *x509.Certificate // issued by A, never stored
	delegated *x509.Certificate // final certificate under B, response by B's delegated responder
	sha256    *x509.Certificate // final certificate under A, response with a SHA-256 CertID
	goodPre   *x509.Certificate // the precertificate of good

	revokedAt time.Time
}

// newFixture builds the store in a temporary directory. Issuer A is a
// fresh hierarchy; B, whose RSA keys are slow to generate, is shared with
// the rest of the process.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{caA: testpki.MustNew(t, testpki.ECDSAP256), caB: testpki.Shared(t, testpki.RSA2048)}
	var err error
	f.ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.url = "http://" + f.ln.Addr().String() + "/ocsp/"
	t.Cleanup(func() { f.ln.Close() })
	f.signerA, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.caA.Intermediate, Key: f.caA.IntermediateKey})
	require.NoError(t, err)
	f.signerB, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.caB.Intermediate, Responder: f.caB.Responder, Key: f.caB.ResponderKey})
	require.NoError(t, err)
	// The cache, as `precert serve` opens it: the Handler keeps its
	// verdicts beside the responses (MemoSource).
	f.store, err = ocspstate.Open(filepath.Join(t.TempDir(), "ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{f.caA.Intermediate, f.caB.Intermediate}, CacheResponses: true})
	require.NoError(t, err)
	t.Cleanup(func() { f.store.Close() })

	f.goodPre, f.good = issue(t, f.store, f.caA, f.signerA, ocspstate.Issued, f.url)
	_, f.revoked = issue(t, f.store, f.caA, f.signerA, ocspstate.Issued, f.url)
	f.ctFailed, _ = issue(t, f.store, f.caA, f.signerA, ocspstate.CTFailed, f.url)
	_, f.delegated = issue(t, f.store, f.caB, f.signerB, ocspstate.Issued, f.url)
	signerA256, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.caA.Intermediate, Key: f.caA.IntermediateKey, CertIDHash: crypto.SHA256})
	require.NoError(t, err)
	_, f.sha256 = issue(t, f.store, f.caA, signerA256, ocspstate.Issued, f.url)
	key, err := testpki.NewKey(f.caA.KeyType)
	require.NoError(t, err)
	tmpl := f.caA.LeafTemplate(90*24*time.Hour, "unknown.precert.test")
	tmpl.OCSPServer = []string{f.url}
	f.unknown, err = f.caA.IssueLeaf(tmpl, key.Public())
	require.NoError(t, err)

	f.revokedAt = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	f.resign(t, f.revoked.SerialNumber, f.revokedAt)
	return f
}

// resign re-signs and commits the response of serial under issuer A:
// revoked at revokedAt for keyCompromise, unless revokedAt is zero, which
// keeps the record's status.
func (f *fixture) resign(t testing.TB, serial *big.Int, revokedAt time.Time) {
	t.Helper()
	_, err := f.store.Update(context.Background(), ocspstate.IssuerIDOf(f.caA.Intermediate), serial, func(r *ocspstate.Record) error {
		if !revokedAt.IsZero() {
			r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, revokedAt, ocspstate.ReasonKeyCompromise
		}
		resp, err := f.signerA.SignRecord(r)
		if err != nil {
			return err
		}
		r.SetResponse(resp)
		return nil
	})
	require.NoError(t, err)
}

func (f *fixture) issuers() []*x509.Certificate {
	return []*x509.Certificate{f.caA.Intermediate, f.caB.Intermediate}
}

// handler returns a Handler over the fixture's store with opts (Issuers
// filled in when empty).
func (f *fixture) handler(t testing.TB, opts Options) *Handler {
	t.Helper()
	if opts.Issuers == nil {
		opts.Issuers = f.issuers()
	}
	h, err := New(f.store, opts)
	require.NoError(t, err)
	return h
}

// serveAIA serves h on the fixture's listener, the URL in every
// certificate's AIA, and returns that URL. It can be called once.
func (f *fixture) serveAIA(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := &httptest.Server{Listener: f.ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return f.url
}

// serve serves h on loopback, without a ServeMux in front (see
// ServeHTTP's doc), and returns the server's URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// issue takes a fresh serial under ca from Reserved through Precert to
// final (Issued, through SCTs) or CTFailed, the way the pipeline does, and
// returns the precertificate and the final certificate (nil for CTFailed).
// Both name ocspURL in their AIA extension.
func issue(t testing.TB, store *ocspstate.BoltStore, ca *testpki.CA, signer *ocspstate.ResponseSigner, final ocspstate.State, ocspURL string) (pre, cert *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	key, err := testpki.NewKey(ca.KeyType)
	require.NoError(t, err)
	serial := testpki.RandomSerial()
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.precert.test")
	tmpl.SerialNumber = serial
	tmpl.OCSPServer = []string{ocspURL}
	tmpl.ExtraExtensions = []pkix.Extension{ctsubmit.PoisonExtension()}
	pre, err = ca.IssueLeaf(tmpl, key.Public())
	require.NoError(t, err)

	id := ocspstate.IssuerIDOf(ca.Intermediate)
	require.NoError(t, store.Reserve(ctx, &ocspstate.Record{
		Issuer: id, Serial: serial, State: ocspstate.Reserved,
		IntentDER: pre.RawTBSCertificate, NotBefore: pre.NotBefore, NotAfter: pre.NotAfter,
		Lease: ocspstate.Lease{Owner: "test", Expires: time.Now().Add(time.Hour)},
	}))
	update := func(fn func(r *ocspstate.Record)) {
		t.Helper()
		_, err := store.Update(ctx, id, serial, func(r *ocspstate.Record) error { fn(r); return nil })
		require.NoError(t, err)
	}
	resp, err := signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(t, err)
	update(func(r *ocspstate.Record) {
		r.State = ocspstate.Precert
		r.PrecertDER = pre.Raw
		r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
		r.SetResponse(resp)
	})
	if final == ocspstate.CTFailed {
		update(func(r *ocspstate.Record) { r.State = ocspstate.CTFailed })
		return pre, nil
	}
	tmpl.ExtraExtensions = nil
	cert, err = ca.IssueLeaf(tmpl, key.Public())
	require.NoError(t, err)
	update(func(r *ocspstate.Record) {
		r.State = ocspstate.SCTs
		r.SCTs = [][]byte{{0x00}}
	})
	update(func(r *ocspstate.Record) {
		r.State = ocspstate.Issued
		r.FinalDER = cert.Raw
	})
	return pre, cert
}

// ocspRequest returns the DER request for cert under issuer with hash h.
func ocspRequest(t testing.TB, cert, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: h})
	require.NoError(t, err)
	return der
}

// serialCert is a certificate that carries only a serial, enough for
// ocsp.CreateRequest.
func serialCert(serial *big.Int) *x509.Certificate { return &x509.Certificate{SerialNumber: serial} }
