package issuance_test

import (
	"context"
	"fmt"
	"runtime"
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
	for _, lint := range []bool{false, true} {
		b.Run(fmt.Sprintf("pipeline/lint=%v", lint), func(b *testing.B) {
			e, err := perf.NewIssueEnv(ca, b.TempDir(), lint)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			b.ResetTimer()
			elapsed, err := e.Issue(context.Background(), b.N, 32*runtime.GOMAXPROCS(0))
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
