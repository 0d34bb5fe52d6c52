package responder_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/responder"
)

// Serve the responses of a bbolt store, then check the responder the way
// relying parties see it.
func Example() {
	ca, err := testpki.New(testpki.ECDSAP256) // a throwaway CA
	if err != nil {
		log.Fatal(err)
	}
	issuers := []*x509.Certificate{ca.Intermediate}
	dir, err := os.MkdirTemp("", "responder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := ocspstate.Open(filepath.Join(dir, "ocsp.db"), ocspstate.Options{Issuers: issuers})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	h, err := responder.New(store, responder.Options{Issuers: issuers})
	if err != nil {
		log.Fatal(err)
	}

	// The handler is the server's handler: no ServeMux, which would
	// redirect GET paths containing "//". Timeouts always.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	// An empty store: every serial is unknown, and must be answered with
	// the 5-byte unauthorized response, uncacheable, over GET and POST.
	rep, err := responder.Probe(context.Background(), "http://"+ln.Addr().String()+"/", issuers)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", rep.OK())
	for _, c := range rep.Checks[:4] {
		fmt.Println(c.Method, c.Name, c.OK)
	}
	// Output:
	// ok: true
	// GET http true
	// GET content-type true
	// GET body true
	// GET no-cache true
}

// Probe a responder for a precertificate whose CT submission failed: it
// must still answer good (Mozilla Root Store Policy §5.4).
func ExampleProber_Probe() {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		log.Fatal(err)
	}
	issuers := []*x509.Certificate{ca.Intermediate}
	dir, err := os.MkdirTemp("", "responder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := ocspstate.Open(filepath.Join(dir, "ocsp.db"), ocspstate.Options{Issuers: issuers})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// What the issuance pipeline does, in short: reserve the serial,
	// sign, commit the precertificate with its good response.
	precert := mustPrecert(ca)
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	id := ocspstate.IssuerIDOf(ca.Intermediate)
	if err := store.Reserve(ctx, &ocspstate.Record{
		Issuer: id, Serial: precert.SerialNumber, State: ocspstate.Reserved, IntentDER: precert.RawTBSCertificate,
		NotBefore: precert.NotBefore, NotAfter: precert.NotAfter,
		Lease: ocspstate.Lease{Owner: "example", Expires: time.Now().Add(time.Minute)},
	}); err != nil {
		log.Fatal(err)
	}
	resp, err := signer.Sign(precert.SerialNumber, ocspstate.Good, time.Time{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Update(ctx, id, precert.SerialNumber, func(r *ocspstate.Record) error {
		r.State, r.PrecertDER = ocspstate.Precert, precert.Raw
		r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
		r.SetResponse(resp)
		return nil
	}); err != nil {
		log.Fatal(err)
	}

	h, err := responder.New(store, responder.Options{Issuers: issuers})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	p := &responder.Prober{Timeout: 5 * time.Second}
	rep, err := p.Probe(ctx, "http://"+ln.Addr().String()+"/ocsp", issuers,
		responder.ProbeTarget{Cert: precert, WantStatus: ocspstate.Good})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", rep.OK(), "checks:", len(rep.Checks))
	// Output:
	// ok: true checks: 20
}

// mustPrecert issues a precertificate: a leaf with the critical RFC 6962
// poison extension.
func mustPrecert(ca *testpki.CA) *x509.Certificate {
	key, err := testpki.NewKey(ca.KeyType)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com")
	tmpl.SerialNumber = testpki.RandomSerial()
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, poison)
	cert, err := ca.IssueLeaf(tmpl, key.Public())
	if err != nil {
		log.Fatal(err)
	}
	return cert
}

// poison is the RFC 6962 §3.1 precertificate poison extension.
var poison = pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, Critical: true, Value: []byte{0x05, 0x00}}
