package issuance_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
)

// BenchmarkIssueParallel measures Issue throughput on a bbolt store with two
// in-process CT logs (same machine, same cores: their signing and our SCT
// verification are included), with linting off and on, against the raw
// throughput of the three signatures one issuance needs — a P-256
// x509.CreateCertificate for the precertificate, an ocsp.CreateResponse,
// and a CreateCertificate for the final certificate — measured first, on
// all cores, in the same run. It reports issuances/s and x-raw, the ratio.
//
// Run: go test -run '^$' -bench IssueParallel -benchtime 5s ./issuance/
func BenchmarkIssueParallel(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	var raw float64
	b.Run("raw-signing", func(b *testing.B) {
		elapsed, err := perf.RawIssuanceSigning(ca, b.N)
		if err != nil {
			b.Fatal(err)
		}
		raw = float64(b.N) / elapsed.Seconds()
		b.ReportMetric(raw, "issuances/s")
	})
	for _, c := range []struct {
		lint     bool
		inflight int
	}{{false, 64}, {false, 1024}, {true, 64}, {true, 1024}} {
		// In flight: issuances running at once. More share more commits
		// (each issuance makes four, one per durable step).
		b.Run(fmt.Sprintf("pipeline/lint=%v/inflight=%d", c.lint, c.inflight), func(b *testing.B) {
			e, err := perf.NewIssueEnv(ca, b.TempDir(), c.lint)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			b.ResetTimer()
			elapsed, err := e.Issue(context.Background(), b.N, c.inflight)
			if err != nil {
				b.Fatal(err)
			}
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "issuances/s")
			if raw > 0 {
				b.ReportMetric(rate/raw, "x-raw")
			}
		})
	}
}
