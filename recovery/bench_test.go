package recovery_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/perf"
)

// BenchmarkSweep sweeps a store of PRECERT_BENCH_RECORDS records (default
// 1,000,000; CTFailed precertificates with real responses, the shape that
// stays longest in a store) of which 1% are due for re-signing, and
// reports:
//
//   - find-ms: time spent reading the due set from the index, and
//     find-fraction, its share of the sweep;
//   - sweep-ms: the whole sweep (find, sign, commit);
//   - x-raw-signing: the time to sign as many responses with
//     ocsp.CreateResponse on all cores, measured in the same run, divided
//     by the sweep's (1.0 would be a sweep as fast as bare signing);
//   - writes/commit: how many refreshes shared each bbolt transaction.
//
// One untimed sweep comes first: the sweeper then reads the index into the
// memory of its last read, as one in service does.
//
// Building the store takes minutes the first time; set
// PRECERT_BENCH_CACHE to a directory to keep it between runs.
//
// Run: go test -run '^$' -bench Sweep -benchtime 3x -timeout 1h ./recovery/
func BenchmarkSweep(b *testing.B) {
	total := 1_000_000
	if s := os.Getenv("PRECERT_BENCH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		total = n
	}
	due := total / 100
	dir := os.Getenv("PRECERT_BENCH_CACHE")
	if dir == "" {
		// One directory per process: the benchmark function runs more
		// than once (b.N = 1 first), and should build the store once.
		benchDirOnce.Do(func() { benchDir, benchDirErr = os.MkdirTemp("", "precert-bench-") })
		if benchDirErr != nil {
			b.Fatal(benchDirErr)
		}
		dir = benchDir
	}
	t0 := time.Now()
	e, err := perf.NewSweepEnv(dir, total)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.Logf("store of %d records ready in %s", total, time.Since(t0))
	ctx := context.Background()
	if err := e.WarmUp(ctx, due); err != nil {
		b.Fatal(err)
	}
	var find, sweep, raw time.Duration
	var commits, writes uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := e.MakeDue(due); err != nil {
			b.Fatal(err)
		}
		r, err := perf.RawResponseSigning(e.CA(), due)
		if err != nil {
			b.Fatal(err)
		}
		raw += r
		before := e.Store.Stats()
		b.StartTimer()
		rep, err := e.Sweep(ctx, due)
		if err != nil {
			b.Fatal(err)
		}
		find += rep.Find
		sweep += rep.Total
		after := e.Store.Stats()
		commits += after.Commits - before.Commits
		writes += after.Writes - before.Writes
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(find.Microseconds())/1000/n, "find-ms")
	b.ReportMetric(float64(sweep.Microseconds())/1000/n, "sweep-ms")
	b.ReportMetric(find.Seconds()/sweep.Seconds(), "find-fraction")
	b.ReportMetric(raw.Seconds()/sweep.Seconds(), "x-raw-signing")
	b.ReportMetric(float64(due)/(sweep.Seconds()/n), "refreshed/s")
	b.ReportMetric(float64(writes)/float64(max(commits, 1)), "writes/commit")
}

var (
	benchDirOnce sync.Once
	benchDir     string
	benchDirErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}
