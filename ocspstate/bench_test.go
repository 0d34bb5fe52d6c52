package ocspstate_test

import (
	"fmt"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
)

// BenchmarkStoreUpdateParallel measures Update throughput with 1, 16 and 64
// concurrent writers, each renewing the lease of its own record (a write
// that moves the record in the due index), and reports:
//
//   - updates/s;
//   - fsyncs/update: bbolt does two fdatasyncs per commit (data pages, then
//     the meta page; checked with strace), so this is 2 × commits / updates;
//   - x-one-commit: the ratio to the same store and the same writers with
//     group commit disabled (MaxBatch 1, one commit per update), measured
//     first in the same run.
//
// The postgres/ sub-benchmarks run the same workload on a pgstore (one
// transaction per update, in a fresh schema of the database named by
// PRECERT_PG_DSN; skipped without one) and report x-bolt, the ratio to the
// bbolt store with the same writers in the same run.
//
// Run: go test -run '^$' -bench StoreUpdateParallel -benchtime 3s ./ocspstate/
func BenchmarkStoreUpdateParallel(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	var baseline float64
	bolt := map[int]float64{}
	run := func(b *testing.B, writers, maxBatch int) float64 {
		elapsed, commits, err := perf.StoreUpdates(ca, b.TempDir(), writers, maxBatch, b.N)
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(b.N) / elapsed.Seconds()
		b.ReportMetric(rate, "updates/s")
		b.ReportMetric(2*float64(commits)/float64(b.N), "fsyncs/update")
		return rate
	}
	b.Run("one-commit-per-update/writers=16", func(b *testing.B) {
		baseline = run(b, 16, 1)
	})
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			rate := run(b, writers, 0)
			bolt[writers] = rate
			if baseline > 0 {
				b.ReportMetric(rate/baseline, "x-one-commit")
			}
		})
	}
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("postgres/writers=%d", writers), func(b *testing.B) {
			dsn, schema := pgtest.Schema(b)
			elapsed, err := perf.StoreUpdatesWith(ca, perf.PostgresOpener(dsn, schema, 0), writers, b.N)
			if err != nil {
				b.Fatal(err)
			}
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "updates/s")
			if bolt[writers] > 0 {
				b.ReportMetric(rate/bolt[writers], "x-bolt")
			}
		})
	}
}

// BenchmarkValidate compares a full signature check with a validation of
// bytes this process already verified.
func BenchmarkValidate(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		b.Fatal(err)
	}
	resp, err := s.Sign(big.NewInt(5), ocspstate.Good, time.Time{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	want := ocspstate.Expect{Serial: big.NewInt(5), Status: ocspstate.Good, Now: time.Now()}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := ocspstate.Validate(resp.DER, ca.Intermediate, want); err != nil {
				b.Fatal(err)
			}
		}
	})
	v, err := ocspstate.NewValidator(ca.Intermediate)
	if err != nil {
		b.Fatal(err)
	}
	id := ocspstate.IssuerIDOf(ca.Intermediate)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Validate(resp.DER, id, want); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSign compares ResponseSigner.Sign, which checks every response
// it produces, with bare ocsp.CreateResponse, in parallel on all cores.
func BenchmarkSign(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	b.Run("ocsp.CreateResponse", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for i := int64(1); pb.Next(); i++ {
				now := time.Now()
				if _, err := ocsp.CreateResponse(ca.Intermediate, ca.Intermediate, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(i),
					ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour)}, ca.IntermediateKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ResponseSigner.Sign", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for i := int64(1); pb.Next(); i++ {
				if _, err := s.Sign(big.NewInt(i), ocspstate.Good, time.Time{}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
