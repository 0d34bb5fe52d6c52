package issuance_test

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
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
)

// Issue a certificate: the precertificate and its good response are
// committed before any CT log sees it; the final certificate is returned
// only once it is committed too.
func ExamplePipeline_Issue() {
	dir, _ := os.MkdirTemp("", "precert-example-")
	defer os.RemoveAll(dir)
	ca, _ := testpki.New(testpki.ECDSAP256) // your issuing CA and its key

	store, err := ocspstate.Open(filepath.Join(dir, "ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	responses, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		log.Fatal(err)
	}
	// Two logs of distinct operators (in-process here; Chrome's log list
	// in production, see ctsubmit.LoadLogList).
	a, _ := ctlogtest.Start(ctlogtest.Options{Name: "log-a"})
	b, _ := ctlogtest.Start(ctlogtest.Options{Name: "log-b"})
	defer a.Close()
	defer b.Close()
	ct, err := ctsubmit.New(ctsubmit.Config{Logs: []*ctsubmit.Log{a.Log(), b.Log()}, HTTPClient: &http.Client{}})
	if err != nil {
		log.Fatal(err)
	}

	p, err := issuance.New(issuance.Config{
		Store:     store,
		Issuer:    ca.Intermediate,
		IssuerKey: ca.IntermediateKey,
		Chain:     []*x509.Certificate{ca.Intermediate, ca.Root},
		Responses: responses,
		CT:        ct,
	})
	if err != nil {
		log.Fatal(err)
	}

	subscriber, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := pipetest.RequestFor(ca, subscriber.Public(), time.Now())
	res, err := p.Issue(context.Background(), req)
	var ctErr *ctsubmit.Error
	switch {
	case errors.As(err, &ctErr):
		// CTFailed: the precertificate stays answerable (good) until it
		// expires. Each log's cause is in ctErr.Logs.
		log.Fatal(err)
	case err != nil:
		log.Fatal(err)
	}
	rec, _ := store.Get(context.Background(), p.IssuerID(), res.Serial)
	fmt.Println(res.State, len(res.SCTs), "SCTs;", "OCSP", rec.OCSP.Status)
	// Output: Issued 2 SCTs; OCSP good
}
