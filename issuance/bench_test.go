package issuance_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
)

// BenchmarkIssueParallel measures Issue throughput on a bbolt store with two
// in-process CT logs (same machine, same cores: their signing and our SCT
// verification are included), with linting off and on, against the raw
// throughput of the three signatures one issuance needs — a P-256
// x509.CreateCertificate for the precertificate, an ocsp.CreateResponse,
// and a CreateCertificate for the final certificate — measured first, on
// all cores, in the same run. It reports issuances/s and x-raw, the ratio,
// and, for the pipelines, the CPU time per issuance (this process: the
// logs included) and cores-busy, the CPU time over the elapsed time (at
// most GOMAXPROCS; below it, the cores waited, on fsync mostly).
//
// The pipeline-postgres/ sub-benchmarks run the lint-off pipelines on a
// pgstore (a fresh schema of the database named by PRECERT_PG_DSN; skipped
// without one) and also report x-bolt, the ratio to the same pipeline on
// bbolt in the same run.
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
	bolt := map[int]float64{}
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
			rate := issue(b, e, raw, c.inflight)
			if !c.lint {
				bolt[c.inflight] = rate
			}
		})
	}
	for _, inflight := range []int{64, 1024} {
		b.Run(fmt.Sprintf("pipeline-postgres/lint=false/inflight=%d", inflight), func(b *testing.B) {
			dsn, schema := pgtest.Schema(b)
			e, err := perf.NewIssueEnvWith(ca, perf.PostgresOpener(dsn, schema, 0), false)
			if err != nil {
				b.Fatal(err)
			}
			rate := issue(b, e, raw, inflight)
			if bolt[inflight] > 0 {
				b.ReportMetric(rate/bolt[inflight], "x-bolt")
			}
		})
	}
}

// issue runs b.N issuances on e, inflight at a time, closes it, reports
// issuances/s, x-raw, cores-busy and cpu-µs/issuance, and returns the rate.
func issue(b *testing.B, e *perf.IssueEnv, raw float64, inflight int) float64 {
	defer e.Close()
	b.ResetTimer()
	cpu0 := perf.ProcessCPU()
	elapsed, err := e.Issue(context.Background(), b.N, inflight)
	if err != nil {
		b.Fatal(err)
	}
	cpu := perf.ProcessCPU() - cpu0
	b.ReportMetric(float64(cpu)/float64(elapsed), "cores-busy")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/issuance")
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "issuances/s")
	if raw > 0 {
		b.ReportMetric(rate/raw, "x-raw")
	}
	return rate
}
