package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
)

// runBench measures the library's throughput, each figure next to a
// baseline measured in the same run: absolute numbers on shared machines
// mean little, ratios mean more.
func runBench(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "bench", "bench [--dir DIR] [--issuances N] [--updates N] [--records N]")
	dir := fs.String("dir", "", "scratch directory (default: a temporary one, removed afterwards)")
	issuances := fs.Int("issuances", 2000, "issuances per measurement")
	updates := fs.Int("updates", 20000, "store updates per measurement")
	records := fs.Int("records", 100000, "records in the sweep store (1% are swept)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *issuances < 1 || *updates < 64 || *records < 100 {
		return fail(env, "bench: --issuances ≥ 1, --updates ≥ 64 and --records ≥ 100, please")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "precert-bench-")
		if err != nil {
			return fail(env, "bench: %v", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fail(env, "bench: %v", err)
	}
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return fail(env, "bench: %v", err)
	}
	fmt.Fprintf(env.stdout, "precert bench: %d CPUs, %s; each line is measured against the baseline just before it\n\n", runtime.GOMAXPROCS(0), runtime.Version())
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "measurement\trate\tratio\tgoal\t")
	row := func(name string, n int, d time.Duration, unit string, ratio float64, goal string) {
		r := "-"
		if ratio > 0 {
			r = fmt.Sprintf("%.2f", ratio)
		}
		fmt.Fprintf(w, "%s\t%.0f %s\t%s\t%s\t\n", name, float64(n)/d.Seconds(), unit, r, goal)
	}
	check := func(err error) bool {
		if err != nil {
			w.Flush()
			fail(env, "bench: %v", err)
			return false
		}
		return ctx.Err() == nil
	}

	// Store: group commit against one commit per update.
	one, _, err := perf.StoreUpdates(ca, *dir, 16, 1, *updates/10)
	if !check(err) {
		return exitError
	}
	row("store, one commit per update (16 writers)", *updates/10, one, "updates/s", 0, "baseline")
	group, commits, err := perf.StoreUpdates(ca, *dir, 64, 0, *updates)
	if !check(err) {
		return exitError
	}
	row(fmt.Sprintf("store, group commit (64 writers, %.2f fsyncs/update)", 2*float64(commits)/float64(*updates)), *updates, group, "updates/s",
		(float64(*updates)/group.Seconds())/(float64(*updates/10)/one.Seconds()), "> 1")

	// Issuance: the pipeline against the raw signatures it needs.
	raw, err := perf.RawIssuanceSigning(ca, *issuances)
	if !check(err) {
		return exitError
	}
	row("raw signing: precert + OCSP + final (P-256)", *issuances, raw, "issuances/s", 0, "baseline")
	for _, lint := range []bool{false, true} {
		e, err := perf.NewIssueEnv(ca, filepath.Join(*dir, fmt.Sprintf("issue-%v", lint)), lint)
		if err == nil {
			var d time.Duration
			d, err = e.Issue(ctx, *issuances, 1024)
			e.Close()
			if check(err) {
				goal := "≥ 0.40"
				if lint {
					goal = "-"
				}
				row(fmt.Sprintf("pipeline, 2 in-process CT logs, 1024 in flight, lint %v", map[bool]string{true: "on", false: "off"}[lint]), *issuances, d, "issuances/s", raw.Seconds()/d.Seconds(), goal)
				continue
			}
		}
		if !check(err) {
			return exitError
		}
	}

	// Sweep: re-signing 1% of a store against signing alone.
	due := *records / 100
	se, err := perf.NewSweepEnv(*dir, *records)
	if !check(err) {
		return exitError
	}
	defer se.Close()
	if !check(se.MakeDue(due)) {
		return exitError
	}
	rawSign, err := perf.RawResponseSigning(se.CA(), due)
	if !check(err) {
		return exitError
	}
	row("raw signing: OCSP responses", due, rawSign, "responses/s", 0, "baseline")
	rep, err := se.Sweep(ctx, due)
	if !check(err) {
		return exitError
	}
	row(fmt.Sprintf("sweep of %d due among %d (index %s)", due, *records, rep.Find.Round(time.Microsecond)), due, rep.Total, "responses/s", rawSign.Seconds()/rep.Total.Seconds(), "≥ 0.80")
	w.Flush()
	return exitOK
}
