// Command responder serves OCSP from a precert store, the way production
// should: the handler is the server's handler (not under a path-cleaning
// ServeMux, which would redirect base64 paths containing "//"), it is
// probed before it takes traffic, and relying parties ask it with ordinary
// OCSP requests.
package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/responder"
)

func main() {
	if err := run(os.TempDir()); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "responder-ocsp.db")
	os.Remove(path)
	// A responder's store keeps every response in memory (written through
	// on commit), so each request is a map lookup, not a B+tree walk.
	store, err := ocspstate.Open(path, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}, CacheResponses: true})
	if err != nil {
		return err
	}
	defer store.Close()
	precert, err := storeOnePrecert(store, ca)
	if err != nil {
		return err
	}

	h, err := responder.New(store, responder.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"

	// Before taking traffic (and from outside, continuously): probe.
	rep, err := responder.Probe(context.Background(), url, []*x509.Certificate{ca.Intermediate}, precert)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("probe failed:\n%s", rep)
	}
	fmt.Printf("probe: %d checks passed\n", len(rep.Checks))

	// A relying party's request.
	req, err := ocsp.CreateRequest(precert, ca.Intermediate, nil)
	if err != nil {
		return err
	}
	res, err := http.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	resp, err := ocsp.ParseResponseForCert(body, precert, ca.Intermediate)
	if err != nil {
		return err
	}
	fmt.Printf("serial %x: status %d (0 = good), next update %s, Cache-Control %q\n",
		resp.SerialNumber, resp.Status, resp.NextUpdate.Format(time.RFC3339), res.Header.Get("Cache-Control"))
	return nil
}

// storeOnePrecert stands in for the issuance pipeline: it stores a
// precertificate with its signed good response, as issuance step 5 does.
func storeOnePrecert(store ocspstate.Store, ca *testpki.CA) (*x509.Certificate, error) {
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		return nil, err
	}
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com")
	// The critical CT poison extension (RFC 6962 §3.1) makes it a precertificate.
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ctsubmit.PoisonExtension())
	precert, err := ca.IssueLeaf(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		return nil, err
	}
	r := &ocspstate.Record{Issuer: signer.IssuerID(), Serial: precert.SerialNumber, State: ocspstate.Reserved,
		IntentDER: precert.RawTBSCertificate, NotBefore: precert.NotBefore, NotAfter: precert.NotAfter,
		Lease: ocspstate.Lease{Owner: "example", Expires: time.Now().Add(time.Minute)}}
	ctx := context.Background()
	if err := store.Reserve(ctx, r); err != nil {
		return nil, err
	}
	resp, err := signer.SignRecord(r)
	if err != nil {
		return nil, err
	}
	_, err = store.Update(ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		r.State, r.PrecertDER = ocspstate.Precert, precert.Raw
		r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
		r.SetResponse(resp)
		return nil
	})
	return precert, err
}
