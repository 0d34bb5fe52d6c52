package recovery_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

// Startup: open the store, sweep once, audit, then keep sweeping in the
// background while the responder and the pipeline run.
func ExampleSweeper_Sweep() {
	dir, _ := os.MkdirTemp("", "precert-example-")
	defer os.RemoveAll(dir)
	ca, _ := testpki.New(testpki.ECDSAP256)

	store, err := ocspstate.Open(filepath.Join(dir, "ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		log.Fatal(err)
	}
	s, err := recovery.New(recovery.Config{
		Store:   store,
		Signers: []*ocspstate.ResponseSigner{signer},
		// Resumers: []recovery.Resumer{pipeline}, to finish precertificates in flight.
	})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := s.Sweep(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("due:", rep.Due, "errors:", len(rep.Errors))

	violations, err := recovery.Audit(context.Background(), store, []*x509.Certificate{ca.Intermediate}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("violations:", len(violations))

	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx, 5*time.Minute) // until shutdown
	cancel()
	// Output:
	// due: 0 errors: 0
	// violations: 0
}
