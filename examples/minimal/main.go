// Command minimal embeds the precert pipeline in a CA: one store, one
// response signer, one CT submitter, one pipeline, one certificate. Replace
// the throwaway CA with your issuing CA (its key may be any crypto.Signer,
// an HSM's included) and the in-process logs with Chrome's log list.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
)

func main() {
	if err := run(os.TempDir()); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	ca, err := testpki.New(testpki.ECDSAP256) // your issuing CA and key
	if err != nil {
		return err
	}
	store, err := ocspstate.Open(filepath.Join(dir, "minimal-ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	if err != nil {
		return err
	}
	defer store.Close()
	responses, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		return err
	}
	var logs []*ctsubmit.Log // production: ctsubmit.LoadLogList(Chrome's log_list.json)
	for _, name := range []string{"log-a", "log-b"} {
		l, err := ctlogtest.Start(ctlogtest.Options{Name: name})
		if err != nil {
			return err
		}
		defer l.Close()
		logs = append(logs, l.Log())
	}
	ct, err := ctsubmit.New(ctsubmit.Config{Logs: logs, HTTPClient: &http.Client{}})
	if err != nil {
		return err
	}
	p, err := issuance.New(issuance.Config{Store: store, Issuer: ca.Intermediate, IssuerKey: ca.IntermediateKey,
		Chain: []*x509.Certificate{ca.Intermediate, ca.Root}, Responses: responses, CT: ct})
	if err != nil {
		return err
	}
	subscriber, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	res, err := p.Issue(context.Background(), &issuance.Request{
		PublicKey: subscriber.Public(), DNSNames: []string{"www.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90*24*time.Hour - time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies: []x509.OID{testpki.DomainValidated}, OCSPServer: []string{"http://ocsp.example.com/"},
		CRLDistributionPoints: []string{"http://crl.example.com/ca.crl"},
	})
	if err != nil {
		return err // errors.Is(err, issuance.ErrCTFailed): the precert stays answerable
	}
	fmt.Printf("issued serial %x with %d embedded SCTs\n", res.Serial, len(res.SCTs))
	return pem.Encode(os.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: res.Final.Raw})
}
