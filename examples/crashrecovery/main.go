// Command crashrecovery shows what happens when a CA dies between
// committing a precertificate and finishing it, and the startup order that
// repairs it: open the store, sweep, then serve and issue, then keep
// sweeping. The "crash" here is an injected fault; the crash harness in
// package recovery/crashtest does the same with SIGKILL.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
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
	"github.com/certpipe/precert/recovery"
)

func main() {
	if err := run(os.TempDir()); err != nil {
		log.Fatal(err)
	}
}

// ca is everything a CA process holds: reopened after the "crash".
type ca struct {
	store    *ocspstate.BoltStore
	pipeline *issuance.Pipeline
	sweeper  *recovery.Sweeper
}

func start(path string, pki *testpki.CA, logs []*ctsubmit.Log, faults issuance.FaultInjector) (*ca, error) {
	store, err := ocspstate.Open(path, ocspstate.Options{Issuers: []*x509.Certificate{pki.Intermediate}})
	if err != nil {
		return nil, err
	}
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: pki.Intermediate, Key: pki.IntermediateKey})
	if err != nil {
		return nil, err
	}
	ct, err := ctsubmit.New(ctsubmit.Config{Logs: logs, HTTPClient: &http.Client{}})
	if err != nil {
		return nil, err
	}
	p, err := issuance.New(issuance.Config{Store: store, Issuer: pki.Intermediate, IssuerKey: pki.IntermediateKey,
		Responses: signer, CT: ct, Faults: faults,
		LeaseDuration: time.Second}) // short, for the example; minutes in production
	if err != nil {
		return nil, err
	}
	s, err := recovery.New(recovery.Config{Store: store, Signers: []*ocspstate.ResponseSigner{signer}, Resumers: []recovery.Resumer{p}})
	if err != nil {
		return nil, err
	}
	return &ca{store: store, pipeline: p, sweeper: s}, nil
}

func run(dir string) error {
	pki, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return err
	}
	var logs []*ctsubmit.Log
	for _, name := range []string{"log-a", "log-b"} {
		l, err := ctlogtest.Start(ctlogtest.Options{Name: name})
		if err != nil {
			return err
		}
		defer l.Close()
		logs = append(logs, l.Log())
	}
	path := filepath.Join(dir, "crashrecovery-ocsp.db")
	os.Remove(path)

	// The first process dies right after the precertificate and its good
	// response were committed, before CT.
	first, err := start(path, pki, logs, issuance.FaultErr(issuance.AfterCommitPrecert))
	if err != nil {
		return err
	}
	subscriber, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	_, err = first.pipeline.Issue(context.Background(), &issuance.Request{
		PublicKey: subscriber.Public(), DNSNames: []string{"www.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90*24*time.Hour - time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies: []x509.OID{testpki.DomainValidated}, OCSPServer: []string{"http://ocsp.example.com/"},
		CRLDistributionPoints: []string{"http://crl.example.com/ca.crl"},
	})
	var ie *issuance.Error
	if !errors.As(err, &ie) || !errors.Is(err, issuance.ErrInjected) {
		return fmt.Errorf("expected the injected crash, got %v", err)
	}
	rec, _ := first.store.Get(context.Background(), first.pipeline.IssuerID(), ie.Serial)
	fmt.Printf("crashed: serial %x left in %s, OCSP %s (answerable before any log saw it)\n", ie.Serial, rec.State, rec.OCSP.Status)
	first.store.Close()

	// The restart: open the store, sweep (once the dead process's lease
	// has expired), and only then serve and issue.
	time.Sleep(1100 * time.Millisecond)
	second, err := start(path, pki, logs, nil)
	if err != nil {
		return err
	}
	defer second.store.Close()
	rep, err := second.sweeper.Sweep(context.Background())
	if err != nil {
		return err
	}
	rec, _ = second.store.Get(context.Background(), second.pipeline.IssuerID(), ie.Serial)
	fmt.Printf("startup sweep: %s\nserial %x is now %s\n", rep, ie.Serial, rec.State)

	violations, err := recovery.Audit(context.Background(), second.store, []*x509.Certificate{pki.Intermediate}, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("audit: %d violations\n", len(violations))
	if len(violations) > 0 || rec.State != ocspstate.Issued {
		return errors.New("recovery did not finish the certificate")
	}
	// Then: start the responder, accept issuance, and
	// go second.sweeper.Run(ctx, 5*time.Minute).
	return nil
}
