package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/responder"
)

// benchRow is one line of the bench table: a figure, the baseline it is
// measured against in the same run, their ratio and the goal.
type benchRow struct {
	Figure        string  `json:"figure"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	BaselineUnit  string  `json:"baseline_unit"`
	Ratio         float64 `json:"ratio"`
	Goal          string  `json:"goal"`           // "≥ 0.40", "≤ 0.1" or "reported"
	Met           *bool   `json:"met,omitempty"`  // nil when only reported
	Note          string  `json:"note,omitempty"` // how it was measured, or why it is missing
}

// benchReport is what --json prints.
type benchReport struct {
	Date     string        `json:"date"`
	CPUs     int           `json:"cpus"`
	Go       string        `json:"go"`
	Quick    bool          `json:"quick"`
	Duration time.Duration `json:"duration_ns"`
	Rows     []benchRow    `json:"rows"`
}

// benchSizes are the workload sizes; --quick shrinks them.
type benchSizes struct {
	issuances, inflight, updates, records, sweeps, requests int
}

var (
	fullSizes  = benchSizes{issuances: 4000, inflight: 1024, updates: 20000, records: 1_000_000, sweeps: 3, requests: 400_000}
	quickSizes = benchSizes{issuances: 300, inflight: 256, updates: 2000, records: 20_000, sweeps: 1, requests: 20_000}
)

// benchRows is how many rows bench prints, for its progress lines.
const benchRows = 11

// runBench measures every performance figure next to a baseline measured
// in the same run: on shared machines absolute numbers mean little,
// ratios mean more.
func runBench(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "bench", "bench [--quick] [--json] [--dir DIR] [--pg DSN]")
	quick := fs.Bool("quick", false, "small stores and short runs (under a minute), for smoke tests; the ratios are rougher")
	asJSON := fs.Bool("json", false, "print the rows as JSON instead of a table")
	dir := fs.String("dir", "", "scratch directory, kept afterwards so that the next run reuses its 1,000,000-record store (default: a temporary one, removed)")
	pgDSN := fs.String("pg", os.Getenv("PRECERT_PG_DSN"), "PostgreSQL DSN for the PostgreSQL row (default $PRECERT_PG_DSN, else the local server's database test)")
	records := fs.Int("records", 0, "records in the sweep and responder store (default 1,000,000; 20,000 with --quick)")
	issuances := fs.Int("issuances", 0, "issuances per pipeline measurement (default 4,000; 300 with --quick)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	if *records != 0 {
		sz.records = *records
	}
	if *issuances != 0 {
		sz.issuances = *issuances
	}
	if sz.records < 1000 || sz.issuances < 10 {
		return fail(env, "bench: --records must be at least 1,000 and --issuances at least 10")
	}
	if *pgDSN == "" {
		*pgDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "precert-bench-")
		if err != nil {
			return fail(env, "bench: %v", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fail(env, "bench: %v", err)
	}

	b := &bencher{ctx: ctx, env: env, dir: *dir, sz: sz, pgDSN: *pgDSN}
	start := time.Now()
	fmt.Fprintf(env.stderr, "precert bench: %d CPUs, %s, %s run; the load generator and the server share these cores\n",
		runtime.GOMAXPROCS(0), runtime.Version(), map[bool]string{true: "quick", false: "full"}[*quick])
	for _, step := range []func() error{b.issuance, b.store, b.sweep, b.responder} {
		if err := step(); err != nil {
			b.flush(*asJSON, *quick, time.Since(start))
			return fail(env, "bench: %v", err)
		}
	}
	b.flush(*asJSON, *quick, time.Since(start))
	return exitOK
}

type bencher struct {
	ctx   context.Context
	env   *cliEnv
	dir   string
	sz    benchSizes
	pgDSN string
	rows  []benchRow
	done  int
}

// progress announces the row being measured.
func (b *bencher) progress(what string) {
	fmt.Fprintf(b.env.stderr, "[%d/%d] %s …\n", b.done+1, benchRows, what)
}

func (b *bencher) add(r benchRow) {
	if r.Met == nil && r.Goal != "reported" && r.Ratio > 0 {
		met := goalMet(r.Goal, r.Ratio)
		r.Met = &met
	}
	b.rows = append(b.rows, r)
	b.done++
	fmt.Fprintf(b.env.stderr, "      %s: %s (ratio %s, goal %s)\n", r.Figure, fmtValue(r.Value, r.Unit), fmtRatio(r.Ratio), r.Goal)
}

// goalMet reads "≥ x" or "≤ x".
func goalMet(goal string, ratio float64) bool {
	op, num, _ := strings.Cut(goal, " ")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return false
	}
	if op == "≤" {
		return ratio <= v
	}
	return ratio >= v
}

func fmtValue(v float64, unit string) string {
	switch {
	case unit == "" || v == 0:
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 1:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.4f %s", v, unit)
}

func fmtRatio(r float64) string {
	if r <= 0 || math.IsNaN(r) {
		return "-"
	}
	if r < 0.1 {
		// Three significant digits, so that 0.0143 against a goal of
		// 0.01 does not print as 0.01.
		return fmt.Sprintf("%.3g", r)
	}
	return fmt.Sprintf("%.2f", r)
}

func (b *bencher) flush(asJSON, quick bool, d time.Duration) {
	if asJSON {
		rep := benchReport{Date: time.Now().UTC().Format(time.DateOnly), CPUs: runtime.GOMAXPROCS(0), Go: runtime.Version(),
			Quick: quick, Duration: d, Rows: b.rows}
		enc := json.NewEncoder(b.env.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	w := tabwriter.NewWriter(b.env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tvalue\tbaseline (same run)\tbaseline value\tratio\tgoal\tmet\t")
	for _, r := range b.rows {
		met := "-"
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Figure, fmtValue(r.Value, r.Unit), r.Baseline,
			fmtValue(r.BaselineValue, r.BaselineUnit), fmtRatio(r.Ratio), r.Goal, met)
	}
	w.Flush()
	for _, r := range b.rows {
		if r.Note != "" {
			fmt.Fprintf(b.env.stdout, "  %s: %s\n", r.Figure, r.Note)
		}
	}
	fmt.Fprintf(b.env.stdout, "%d CPUs, %s; the whole run took %s\n", runtime.GOMAXPROCS(0), runtime.Version(), d.Round(time.Second))
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// issuance: the pipeline against the raw signatures one issuance needs,
// with linting off and on, and on PostgreSQL against bbolt.
func (b *bencher) issuance() error {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return err
	}
	n, inflight := b.sz.issuances, b.sz.inflight
	raw, err := perf.RawIssuanceSigning(ca, n)
	if err != nil {
		return err
	}
	rawRate := rate(n, raw)
	baseline := "raw signing: precert + OCSP response + final, same keys, all cores"
	var boltRate float64
	for _, lint := range []bool{false, true} {
		label := map[bool]string{false: "off", true: "on"}[lint]
		b.progress("issuance, bbolt, zlint " + label)
		// The baseline again, right before, so that both see the same
		// machine; the two measurements are averaged.
		again, err := perf.RawIssuanceSigning(ca, n)
		if err != nil {
			return err
		}
		base := (rawRate + rate(n, again)) / 2
		e, err := perf.NewIssueEnv(ca, filepath.Join(b.dir, "issue-"+label), lint)
		if err != nil {
			return err
		}
		d, err := e.Issue(b.ctx, n, inflight)
		e.Close()
		os.RemoveAll(filepath.Join(b.dir, "issue-"+label))
		if err != nil {
			return err
		}
		got := rate(n, d)
		goal := "≥ 0.40"
		if lint {
			goal = "reported"
		} else {
			boltRate = got
		}
		b.add(benchRow{Figure: fmt.Sprintf("issuances/s, P-256, 2 in-process CT logs, bbolt, zlint %s, %d in flight", label, inflight),
			Value: got, Unit: "issuances/s", Baseline: baseline, BaselineValue: base, BaselineUnit: "issuances/s",
			Ratio: got / base, Goal: goal})
	}
	b.progress("issuance, PostgreSQL")
	row := benchRow{Figure: fmt.Sprintf("issuances/s on PostgreSQL, zlint off, %d in flight", inflight), Unit: "issuances/s",
		Baseline: "issuances/s on bbolt, same pipeline", BaselineValue: boltRate, BaselineUnit: "issuances/s", Goal: "reported"}
	got, err := b.postgresIssuance(ca, n, inflight)
	if err != nil {
		row.Note = "not measured: " + err.Error()
	} else {
		row.Value, row.Ratio = got, got/boltRate
	}
	b.add(row)
	return nil
}

// store: fsyncs per committed update under 64 concurrent writers, against
// one commit (two fdatasyncs in bbolt) per update.
func (b *bencher) store() error {
	b.progress("store: group commit, 64 writers")
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return err
	}
	n := b.sz.updates
	one, oneCommits, err := perf.StoreUpdates(ca, b.dir, 64, 1, n/10)
	if err != nil {
		return err
	}
	group, commits, err := perf.StoreUpdates(ca, b.dir, 64, 0, n)
	if err != nil {
		return err
	}
	// bbolt syncs twice per commit (data, then meta page): counted, not
	// assumed, by the commits the store made.
	oneFsyncs := 2 * float64(oneCommits) / float64(n/10)
	fsyncs := 2 * float64(commits) / float64(n)
	b.add(benchRow{Figure: "fsyncs per committed update, 64 concurrent writers (bbolt, group commit)", Value: fsyncs, Unit: "fsyncs/update",
		Baseline: "one commit per update (MaxBatch 1), 64 writers", BaselineValue: oneFsyncs, BaselineUnit: "fsyncs/update",
		Ratio: fsyncs / oneFsyncs, Goal: "≤ 0.1", Note: "a bbolt commit is two fdatasyncs; the ratio is commits per update"})
	b.progress("store: updates/s, from the same runs")
	b.add(benchRow{Figure: "store updates/s, 64 concurrent writers (group commit)", Value: rate(n, group), Unit: "updates/s",
		Baseline: "one commit per update (MaxBatch 1), 64 writers", BaselineValue: rate(n/10, one), BaselineUnit: "updates/s",
		Ratio: rate(n, group) / rate(n/10, one), Goal: "reported"})
	return nil
}

// sweep: a store of records of which 1% are due: the time to find the due
// set against the whole sweep, and the sweep's signing rate against raw
// OCSP response signing.
func (b *bencher) sweep() error {
	b.progress(fmt.Sprintf("sweep: opening (or building, minutes the first time) a %d-record store", b.sz.records))
	t0 := time.Now()
	e, err := perf.NewSweepEnv(b.dir, b.sz.records)
	if err != nil {
		return err
	}
	defer e.Close()
	built := time.Since(t0)
	due := b.sz.records / 100
	if err := e.WarmUp(b.ctx, due); err != nil {
		return err
	}
	var find, total, raw time.Duration
	for range b.sz.sweeps {
		if err := e.MakeDue(due); err != nil {
			return err
		}
		r, err := perf.RawResponseSigning(e.CA(), due)
		if err != nil {
			return err
		}
		rep, err := e.Sweep(b.ctx, due)
		if err != nil {
			return err
		}
		raw += r
		find += rep.Find
		total += rep.Total
	}
	n := due * b.sz.sweeps
	note := fmt.Sprintf("%d sweeps of %d due among %d records, after one untimed; store ready in %s", b.sz.sweeps, due, b.sz.records, built.Round(time.Second))
	b.add(benchRow{Figure: fmt.Sprintf("sweep, %d records, 1%% due: time to find the due set", b.sz.records),
		Value: ms(find) / float64(b.sz.sweeps), Unit: "ms/sweep",
		Baseline: "the whole sweep (find, sign, commit)", BaselineValue: ms(total) / float64(b.sz.sweeps), BaselineUnit: "ms/sweep",
		Ratio: find.Seconds() / total.Seconds(), Goal: "≤ 0.01", Note: note})
	b.progress("sweep: signing rate")
	b.add(benchRow{Figure: "sweep signing rate (responses re-signed and committed)", Value: rate(n, total), Unit: "responses/s",
		Baseline: "raw OCSP response signing (x/crypto/ocsp.CreateResponse), all cores", BaselineValue: rate(n, raw), BaselineUnit: "responses/s",
		Ratio: raw.Seconds() / total.Seconds(), Goal: "≥ 0.80"})
	return nil
}

// responder: GET requests per second and p99 latency over loopback from a
// separate load generator process, against a server process holding the
// store, and against a handler writing a fixed body of the same size in
// that same process, under every load of perf.Loads, interleaved; each
// server's capacity is its highest rate over them. Then the server's
// resident memory.
func (b *bencher) responder() error {
	path := perf.SweepStorePath(b.dir, b.sz.records)
	rounds := max(1, b.sz.requests/100_000)
	b.progress(fmt.Sprintf("responder: starting a server process on the %d-record store and validating every response, then %d GETs to each server under each of %v connections, in %d rounds",
		b.sz.records, b.sz.requests, perf.Loads, rounds))
	srv, err := startBenchServer(b.ctx, path, perf.SweepCADir(b.dir), b.sz.records)
	if err != nil {
		return err
	}
	defer srv.stop()
	const handler, fixedBody = 0, 1
	addrs := []string{handler: srv.info.Handler, fixedBody: srv.info.Fixed}
	spec := perf.LoadSpec{NameHash: srv.info.NameHash, KeyHash: srv.info.KeyHash, SerialBase: "1", Serials: b.sz.records}
	if err := perf.WarmUp(spec, addrs); err != nil {
		return err
	}
	serverCPU := func() (time.Duration, error) { return perf.ProcessCPUOf(srv.cmd.Process.Pid) }
	res, err := perf.Sweep(spec, addrs, perf.Loads, b.sz.requests, rounds, serverCPU, func(_ perf.Target, run func() error) error {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		return run()
	})
	if err != nil {
		return err
	}
	best, fixedBest := perf.Capacity(res, handler), perf.Capacity(res, fixedBody)
	ours, fixed := res[best][handler], res[fixedBest][fixedBody]
	perLoad := make([]string, len(perf.Loads))
	for l, conns := range perf.Loads {
		perLoad[l] = fmt.Sprintf("%d: %.2f", conns, res[l][handler].PerSecond()/res[l][fixedBody].PerSecond())
	}
	note := fmt.Sprintf("highest rates, at %d (handler) and %d (fixed) keep-alive connections, from a separate process; the ratio under each load, by connections: %s; cores kept busy by server and load generator at %d connections: %.2f (handler), %.2f (fixed) of %d; %d-byte responses; every response validated (verdicts kept beside them) in %s",
		perf.Loads[best], perf.Loads[fixedBest], strings.Join(perLoad, ", "), perf.Loads[best], ours.CoresBusy(), res[best][fixedBody].CoresBusy(), runtime.NumCPU(), srv.info.Size, time.Duration(srv.info.WarmNS).Round(time.Second))
	b.add(benchRow{Figure: fmt.Sprintf("responder GET requests/s over loopback, %d-record store: capacity (the highest rate under %d to %d connections)", b.sz.records, perf.Loads[0], perf.Loads[len(perf.Loads)-1]),
		Value: ours.PerSecond(), Unit: "requests/s",
		Baseline: "net/http handler writing a fixed body of the same size, its capacity", BaselineValue: fixed.PerSecond(), BaselineUnit: "requests/s",
		Ratio: ours.PerSecond() / fixed.PerSecond(), Goal: "≥ 0.80", Note: note})
	b.progress(fmt.Sprintf("responder: %d connections, from the same loads", perf.LatencyConns))
	ours, fixed = res[0][handler], res[0][fixedBody] // perf.LatencyConns
	note = fmt.Sprintf("below saturation: cores kept busy %.2f (handler), %.2f (fixed) of %d; the rate here counts round-trip wake-ups as much as work",
		ours.CoresBusy(), fixed.CoresBusy(), runtime.NumCPU())
	b.add(benchRow{Figure: fmt.Sprintf("responder GET requests/s, %d connections", perf.LatencyConns), Value: ours.PerSecond(), Unit: "requests/s",
		Baseline: "the fixed-body handler, same load", BaselineValue: fixed.PerSecond(), BaselineUnit: "requests/s",
		Ratio: ours.PerSecond() / fixed.PerSecond(), Goal: "reported", Note: note})
	b.progress("responder: p99 latency")
	b.add(benchRow{Figure: fmt.Sprintf("responder p99 latency, %d connections", perf.LatencyConns), Value: ms(ours.P99), Unit: "ms",
		Baseline: "the fixed-body handler's p99", BaselineValue: ms(fixed.P99), BaselineUnit: "ms",
		Ratio: float64(ours.P99) / float64(fixed.P99), Goal: "≤ 2.0"})
	b.progress("responder: resident memory")
	rss, anon, file, err := readRSS(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b.add(benchRow{Figure: fmt.Sprintf("responder resident memory, %d records", b.sz.records), Value: float64(rss) / (1 << 20), Unit: "MiB",
		Baseline: "store file size", BaselineValue: float64(fi.Size()) / (1 << 20), BaselineUnit: "MiB",
		Ratio: float64(rss) / float64(fi.Size()), Goal: "reported",
		Note: fmt.Sprintf("%.0f MiB anonymous (heap: response cache with verdicts, buffers), %.0f MiB of the store's pages mapped", float64(anon)/(1<<20), float64(file)/(1<<20))})
	return nil
}

// readRSS returns a process's VmRSS, RssAnon and RssFile in bytes.
func readRSS(pid int) (rss, anon, file int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading the server's memory: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "RssAnon":
			anon = n << 10
		case "RssFile":
			file = n << 10
		}
	}
	if rss == 0 {
		return 0, 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, anon, file, nil
}

// benchServerInfo is what the server process prints once it is ready.
type benchServerInfo struct {
	Handler  string `json:"handler"` // address of the responder
	Fixed    string `json:"fixed"`   // address of the fixed-body handler
	Size     int    `json:"size"`    // bytes of a stored response
	NameHash []byte `json:"name_hash"`
	KeyHash  []byte `json:"key_hash"`
	WarmNS   int64  `json:"warm_ns"`
}

type benchServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	info  benchServerInfo
}

// startBenchServer runs `precert bench-serve` as a child process and waits
// for its address line.
func startBenchServer(ctx context.Context, db, caDir string, records int) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench-serve", "--db", db, "--ca", caDir, "--records", strconv.Itoa(records))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &benchServer{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &s.info)
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("bench server process: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return s, nil
}

func (s *benchServer) stop() {
	s.stdin.Close() // the server exits when its stdin closes
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// runBenchServe is the server process of bench's responder rows: it opens
// the store read-only with its response cache, has a Handler validate
// every response once (the verdicts are kept beside the responses), serves the Handler and a fixed-body handler on two loopback
// ports, prints their addresses as one JSON line and serves until its
// stdin closes.
func runBenchServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "bench-serve", "bench-serve --db FILE --ca DIR --records N")
	db := fs.String("db", "", "the store")
	caDir := fs.String("ca", "", "the store's CA, as testpki saved it")
	records := fs.Int("records", 0, "serials 1..N to warm")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ca, err := testpki.Load(*caDir)
	if err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	store, err := ocspstate.Open(*db, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}, ReadOnly: true, CacheResponses: true})
	if err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	defer store.Close()
	h, err := responder.New(store, responder.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	if err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	info := benchServerInfo{}
	if info.NameHash, info.KeyHash, err = ocspstate.IssuerHashes(ca.Intermediate, crypto.SHA1); err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	der, err := store.Response(ctx, ocspstate.IssuerIDOf(ca.Intermediate), big.NewInt(1))
	if err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	info.Size = len(der)
	t0 := time.Now()
	if err := perf.Warm(h, info.NameHash, info.KeyHash, big.NewInt(1), *records); err != nil {
		return fail(env, "bench-serve: warming: %v", err)
	}
	info.WarmNS = int64(time.Since(t0))
	fixed := perf.FixedBody(info.Size)
	for _, s := range []struct {
		h    http.Handler
		addr *string
	}{{h, &info.Handler}, {fixed, &info.Fixed}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(env, "bench-serve: %v", err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		*s.addr = ln.Addr().String()
	}
	// PRECERT_BENCH_SERVE_PROFILE names a file for a CPU profile of the
	// serving (after warming), for BENCHMARKS.md's evidence.
	if path := os.Getenv("PRECERT_BENCH_SERVE_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fail(env, "bench-serve: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(env, "bench-serve: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := json.NewEncoder(env.stdout).Encode(info); err != nil {
		return fail(env, "bench-serve: %v", err)
	}
	io.Copy(io.Discard, os.Stdin)
	return exitOK
}

// postgresIssuance runs the lint-off pipeline on PostgreSQL, in a schema
// of its own that it drops afterwards.
func (b *bencher) postgresIssuance(ca *testpki.CA, n, inflight int) (float64, error) {
	schema := perf.PostgresSchemaName()
	defer pgstore.DropSchema(context.Background(), b.pgDSN, schema)
	e, err := perf.NewIssueEnvWith(ca, perf.PostgresOpener(b.pgDSN, schema, 0), false)
	if err != nil {
		return 0, fmt.Errorf("PostgreSQL at %s: %v", redactDSN(b.pgDSN), err)
	}
	defer e.Close()
	d, err := e.Issue(b.ctx, n, inflight)
	if err != nil {
		return 0, err
	}
	return rate(n, d), nil
}
