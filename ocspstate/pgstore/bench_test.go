package pgstore_test

import (
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
)

// refreshBatch is the size of the benchmark's batches: the sweeper's
// commit groups reach 256.
const refreshBatch = 256

// BenchmarkRefreshResponses measures the sweeper's commonest write on
// PostgreSQL: batches of 256 stored responses replaced by newer ones with
// ocspstate.RefreshResponses, through the store's own path, one
// transaction per batch (native), and, in the same run, through
// ocspstate.RefreshEach, the path for a store without one: one Update,
// and so one commit, per record (per-record). Signing is left
// out of the timings. Each reports refreshes/s; native also reports
// x-per-record, the ratio of the two.
//
// Run: go test -run '^$' -bench RefreshResponses -benchtime 20x ./ocspstate/pgstore/
func BenchmarkRefreshResponses(b *testing.B) {
	dsn, schema := pgtest.Schema(b)
	ca := testpki.Shared(b, testpki.ECDSAP256)
	ctx := context.Background()
	store, err := pgstore.Open(ctx, dsn, pgstore.Options{Issuers: []*x509.Certificate{ca.Intermediate}, Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	// Responses signed an hour ago, then refreshed as of now, a second
	// later each round: every refresh replaces the stored bytes.
	signedAt := time.Now().Add(-time.Hour)
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey,
		Now: func() time.Time { return signedAt }})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*ocspstate.Record, refreshBatch)
	for i := range recs {
		if recs[i], err = precertRecord(ctx, store, signer, big.NewInt(int64(1000+i))); err != nil {
			b.Fatal(err)
		}
	}
	// round refreshes every record once with refresh, and returns the
	// time it took.
	round := func(b *testing.B, refresh func(context.Context, []ocspstate.Refresh) []error) time.Duration {
		signedAt = signedAt.Add(time.Second)
		refs := make([]ocspstate.Refresh, len(recs))
		for i, r := range recs {
			resp, err := signer.SignRecord(r)
			if err != nil {
				b.Fatal(err)
			}
			refs[i] = ocspstate.Refresh{Issuer: r.Issuer, Serial: r.Serial, Prev: r.OCSP.ResponseDER, Response: resp}
		}
		t0 := time.Now()
		errs := refresh(ctx, refs)
		d := time.Since(t0)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("refresh %d: %v", i, err)
			}
			recs[i].SetResponse(refs[i].Response)
		}
		return d
	}
	var perRecord float64
	for _, c := range []struct {
		name    string
		refresh func(context.Context, []ocspstate.Refresh) []error
	}{
		{"per-record", func(ctx context.Context, refs []ocspstate.Refresh) []error {
			return ocspstate.RefreshEach(ctx, store, refs)
		}},
		{"native", store.RefreshResponses},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += round(b, c.refresh)
			}
			rate := float64(b.N*refreshBatch) / total.Seconds()
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(rate, "refreshes/s")
			if c.name == "per-record" {
				perRecord = rate
			} else if perRecord > 0 {
				b.ReportMetric(rate/perRecord, "x-per-record")
			}
		})
	}
}

// precertRecord stores a Precert record for serial with OCSP enabled and
// a good response from signer, and returns it as stored.
func precertRecord(ctx context.Context, s ocspstate.Store, signer *ocspstate.ResponseSigner, serial *big.Int) (*ocspstate.Record, error) {
	now := time.Now()
	err := s.Reserve(ctx, &ocspstate.Record{
		Issuer: signer.IssuerID(), Serial: serial, State: ocspstate.Reserved,
		IntentDER: []byte{0x30, 0x00}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		Lease: ocspstate.Lease{Owner: "bench", Expires: now.Add(time.Hour)},
	})
	if err != nil {
		return nil, err
	}
	resp, err := signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
	if err != nil {
		return nil, err
	}
	return s.Update(ctx, signer.IssuerID(), serial, func(r *ocspstate.Record) error {
		r.State = ocspstate.Precert
		r.PrecertDER = []byte{0x30, 0x00}
		r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
		r.SetResponse(resp)
		return nil
	})
}
