package pgstore_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"math/big"
	"time"

	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
)

// Open a shared store, reserve a serial, and read it back. Every CA
// process — issuers, responders, sweepers — opens the same DSN and schema.
func ExampleOpen() {
	var issuer *x509.Certificate // the issuing CA's certificate, loaded elsewhere
	ctx := context.Background()
	store, err := pgstore.Open(ctx, "postgres://ca@127.0.0.1:5432/ca?sslmode=disable", pgstore.Options{
		Issuers: []*x509.Certificate{issuer},
		Schema:  "precert",
		// Each process holds up to this many connections.
		MaxConns: 8,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	now := time.Now()
	r := &ocspstate.Record{
		Issuer: ocspstate.IssuerIDOf(issuer), Serial: big.NewInt(0x5eed), State: ocspstate.Reserved,
		IntentDER: []byte("the unsigned precertificate TBS"),
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
		Lease: ocspstate.Lease{Owner: "issuer-1", Expires: now.Add(2 * time.Minute)},
	}
	if err := store.Reserve(ctx, r); err != nil {
		log.Fatal(err) // wraps ocspstate.ErrSerialExists if the serial was ever used
	}
	got, err := store.Get(ctx, r.Issuer, r.Serial)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.State, got.Version)
}
