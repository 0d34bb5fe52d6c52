package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
	"github.com/certpipe/precert/recovery/crashtest"
)

// demoLease is the lease of the demo's issuing process: short, so that a
// restarted process (or the final sweep) takes over what a killed one held
// within seconds.
const demoLease = 2 * time.Second

const demoOwner = "precert-demo"

type demoFlags struct {
	dir      string
	certs    int
	logs     int
	failRate float64
	crash    bool
	serve    string
	force    bool
	workers  int
}

func runDemo(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "demo", "demo [--dir DIR] [--certs N] [--logs K] [--ct-fail-rate F] [--crash] [--serve ADDR] [--force]")
	var f demoFlags
	fs.StringVar(&f.dir, "dir", "./precert-demo", "directory for the CA, the store, the log list and the certificates")
	fs.IntVar(&f.certs, "certs", 100, "number of certificates to issue")
	fs.IntVar(&f.logs, "logs", 3, "number of CT logs (in-process, on loopback, distinct operators)")
	fs.Float64Var(&f.failRate, "ct-fail-rate", 0.1, "fraction of precertificates every log refuses (they end CTFailed, OCSP good)")
	fs.BoolVar(&f.crash, "crash", false, "issue in a child process that is SIGKILLed at random fault points and restarted until done")
	fs.StringVar(&f.serve, "serve", "", "after the audit, serve OCSP at http://ADDR/ until interrupted (e.g. 127.0.0.1:8080)")
	fs.BoolVar(&f.force, "force", false, "replace an existing --dir")
	fs.IntVar(&f.workers, "workers", 16, "concurrent issuances")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(env, "demo: unexpected argument %q", fs.Arg(0))
	case f.certs < 1:
		return fail(env, "demo: --certs must be at least 1")
	case f.logs < 2:
		return fail(env, "demo: --logs must be at least 2: the CT policies need SCTs from two operators")
	case f.failRate < 0 || f.failRate > 1:
		return fail(env, "demo: --ct-fail-rate must be between 0 and 1")
	case f.workers < 1:
		return fail(env, "demo: --workers must be at least 1")
	}
	if f.serve != "" {
		if _, _, err := net.SplitHostPort(f.serve); err != nil {
			return fail(env, "demo: --serve %q is not HOST:PORT", f.serve)
		}
	}
	if os.Getenv("PRECERT_LOG") == "" {
		// CT refusals are part of the demo: only errors are news here.
		env.log = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	if err := prepareDir(f.dir, f.force); err != nil {
		return fail(env, "demo: %v", err)
	}
	start := time.Now()

	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		return fail(env, "demo: creating the CA: %v", err)
	}
	keyPEM, err := testpki.KeyPEM(ca.IntermediateKey)
	if err != nil {
		return fail(env, "demo: %v", err)
	}
	for name, data := range map[string][]byte{
		"ca.pem":   testpki.PEM(ca.Intermediate, ca.Root),
		"root.pem": testpki.PEM(ca.Root),
		"ca.key":   keyPEM,
	} {
		if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o600); err != nil {
			return fail(env, "demo: %v", err)
		}
	}

	logs, err := startDemoLogs(f.logs, f.failRate)
	if err != nil {
		return fail(env, "demo: starting CT logs: %v", err)
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	ctLogs := make([]*ctsubmit.Log, len(logs))
	for i, l := range logs {
		ctLogs[i] = l.log.Log()
	}
	list, err := ctsubmit.MarshalLogList(ctLogs, time.Now())
	if err != nil {
		return fail(env, "demo: writing the log list: %v", err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "loglist.json"), list, 0o644); err != nil {
		return fail(env, "demo: %v", err)
	}
	fmt.Fprintf(env.stdout, "precert demo: issuing %d certificates in %s with %d CT logs (%.0f%% refused by every log)%s\n",
		f.certs, f.dir, f.logs, 100*f.failRate, map[bool]string{true: ", crashing at random fault points", false: ""}[f.crash])

	var totals issueReport
	crashes := 0
	bar := newProgress(env, f.certs)
	if f.crash {
		crashes, totals, err = issueWithCrashes(ctx, env, f, bar)
	} else {
		totals, err = issueAll(ctx, env, f.dir, f.certs, f.workers, 0, bar.set)
	}
	bar.done()
	if err != nil {
		return fail(env, "demo: %v", err)
	}

	// Recovery and audit, in this process: whatever a crash left in flight
	// is taken over once its lease has expired.
	if crashes > 0 {
		time.Sleep(demoLease + 100*time.Millisecond)
	}
	o, err := openDemo(env, f.dir)
	if err != nil {
		return fail(env, "demo: %v", err)
	}
	defer o.store.Close()
	final, err := o.sweep(ctx, nil)
	if err != nil {
		return fail(env, "demo: %v", err)
	}
	totals.add(final)
	a := &recovery.Auditor{Issuers: []*x509.Certificate{ca.Intermediate}, Logs: ctLogs}
	vs, err := a.Audit(ctx, o.store, time.Now())
	if err != nil {
		return fail(env, "demo: audit: %v", err)
	}
	nPre, nFinal, err := writePEMs(ctx, o.store, f.dir)
	if err != nil {
		return fail(env, "demo: %v", err)
	}
	counts, err := o.store.Counts(ctx)
	if err != nil {
		return fail(env, "demo: %v", err)
	}

	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "issued\t%d\tfinal certificates with embedded SCTs (%s)\n", counts[ocspstate.Issued], filepath.Join(f.dir, "certs"))
	fmt.Fprintf(w, "CT failed\t%d\tprecertificates no log accepted; OCSP good until expiry\n", counts[ocspstate.CTFailed])
	fmt.Fprintf(w, "abandoned\t%d\tserials reserved by a killed process before anything was published\n", counts[ocspstate.Abandoned])
	fmt.Fprintf(w, "crashes survived\t%d\tSIGKILLs of the issuing process\n", crashes)
	fmt.Fprintf(w, "recovered\t%d\tin-flight records finished or abandoned by recovery sweeps\n", totals.resumed)
	why := "OCSP responses signed by recovery sweeps"
	if totals.refreshed == 0 {
		why = "none needed: every precertificate was committed with its signed response"
	}
	fmt.Fprintf(w, "responses by recovery\t%d\t%s\n", totals.refreshed, why)
	if len(vs) == 0 {
		fmt.Fprintf(w, "audit\tclean\t%d precertificates and %d final certificates checked, SCTs verified\n", nPre, nFinal)
	} else {
		fmt.Fprintf(w, "audit\t%d violations\t\n", len(vs))
	}
	w.Flush()
	for _, v := range vs {
		fmt.Fprintln(env.stdout, "  ", v)
	}
	fmt.Fprintf(env.stdout, "\ndone in %s\n", time.Since(start).Round(100*time.Millisecond))
	if len(vs) > 0 {
		return exitFailed
	}
	if f.serve != "" {
		return serveDemo(ctx, env, o, f.serve, f.dir)
	}
	return exitOK
}

// prepareDir creates dir, refusing a non-empty one unless force.
func prepareDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0 && !force:
		return fmt.Errorf("%s already exists and is not empty; pass --force to replace it, or choose another --dir", dir)
	case err == nil && len(entries) > 0:
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	for _, d := range []string{dir, filepath.Join(dir, "precerts"), filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// demoLog is an in-process CT log on loopback that refuses a fixed
// fraction of precertificates, chosen by a hash of their serial so that
// every log refuses the same ones, every time they are submitted.
type demoLog struct {
	log *ctlogtest.Log
	srv *http.Server
}

func (d *demoLog) Close() {
	d.srv.Close()
	d.log.Close()
}

func startDemoLogs(n int, failRate float64) ([]*demoLog, error) {
	var out []*demoLog
	operators := []string{"Alpha Logs", "Beta Transparency", "Gamma CT", "Delta Audit", "Epsilon Ledger"}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("demo-log-%c", 'a'+i)
		l, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: name, Operator: operators[i%len(operators)] + fmt.Sprint(i/len(operators))})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l.URL = "http://" + ln.Addr().String()
		srv := &http.Server{Handler: refuseFraction(l, failRate), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		out = append(out, &demoLog{log: l, srv: srv})
	}
	return out, nil
}

func refuseFraction(next http.Handler, rate float64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		var req struct {
			Chain [][]byte `json:"chain"`
		}
		if json.Unmarshal(body, &req) == nil && len(req.Chain) > 0 {
			if c, err := x509.ParseCertificate(req.Chain[0]); err == nil && refused(c.SerialNumber, rate) {
				http.Error(w, "demo: this log refuses this precertificate (--ct-fail-rate)", http.StatusBadRequest)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func refused(serial *big.Int, rate float64) bool {
	sum := sha256.Sum256(serial.Bytes())
	return float64(binary.BigEndian.Uint64(sum[:8]))/float64(^uint64(0)) < rate
}

// demoCA is the demo's store, issuer and signers, opened from --dir.
type demoCA struct {
	env    *cliEnv
	store  *ocspstate.BoltStore
	issuer *x509.Certificate
	chain  []*x509.Certificate
	key    crypto.Signer
	signer *ocspstate.ResponseSigner
	logs   []*ctsubmit.Log
}

func openDemo(env *cliEnv, dir string) (*demoCA, error) {
	certs, err := loadCerts("dir", filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	key, err := loadKey("dir", filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	logs, err := loadLogs(filepath.Join(dir, "loglist.json"))
	if err != nil {
		return nil, err
	}
	d := &demoCA{env: env, issuer: certs[0], chain: certs, key: key, logs: logs}
	if d.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: d.issuer, Key: key}); err != nil {
		return nil, err
	}
	if d.store, err = ocspstate.Open(filepath.Join(dir, "ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{d.issuer}}); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *demoCA) pipeline(faults issuance.FaultInjector) (*issuance.Pipeline, error) {
	sub, err := ctsubmit.New(ctsubmit.Config{
		Logs: d.logs, HTTPClient: &http.Client{}, Logger: d.env.log,
		Stagger: 200 * time.Millisecond, PerLogTimeout: 3 * time.Second, OverallTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return issuance.New(issuance.Config{
		Store: d.store, Issuer: d.issuer, IssuerKey: d.key, Chain: d.chain,
		Responses: d.signer, CT: sub, Owner: demoOwner, LeaseDuration: demoLease,
		Faults: faults, Logger: d.env.log,
	})
}

// sweep runs one recovery sweep with a pipeline to finish records in
// flight.
func (d *demoCA) sweep(ctx context.Context, faults issuance.FaultInjector) (issueReport, error) {
	p, err := d.pipeline(faults)
	if err != nil {
		return issueReport{}, err
	}
	s, err := recovery.New(recovery.Config{Store: d.store, Signers: []*ocspstate.ResponseSigner{d.signer},
		Resumers: []recovery.Resumer{p}, Faults: faults, Logger: d.env.log, Owner: demoOwner + "-sweeper"})
	if err != nil {
		return issueReport{}, err
	}
	rep, err := s.Sweep(ctx)
	if err != nil {
		return issueReport{}, err
	}
	if len(rep.Errors) > 0 {
		return issueReport{}, fmt.Errorf("recovery sweep: %s; first error: %v", rep, rep.Errors[0])
	}
	return issueReport{
		refreshed: rep.Count(recovery.ActionRefreshed),
		resumed:   rep.Count(recovery.ActionIssued) + rep.Count(recovery.ActionCTFailed) + rep.Count(recovery.ActionAbandoned),
	}, nil
}

// issueReport counts what recovery did while issuing.
type issueReport struct{ refreshed, resumed int }

func (r *issueReport) add(o issueReport) {
	r.refreshed += o.refreshed
	r.resumed += o.resumed
}

// issueAll opens the demo store, sweeps it (the startup order), and issues
// until n certificates are Issued or CTFailed. With killProb > 0, every
// fault point SIGKILLs the process with that probability.
func issueAll(ctx context.Context, env *cliEnv, dir string, n, workers int, killProb float64, progress func(int)) (issueReport, error) {
	d, err := openDemo(env, dir)
	if err != nil {
		return issueReport{}, err
	}
	defer d.store.Close()
	var faults issuance.FaultInjector
	if killProb > 0 {
		faults = issuance.FaultFunc(func(context.Context, issuance.FaultPoint, *big.Int) error {
			if rand.Float64() < killProb {
				crashtest.Die()
			}
			return nil
		})
	}
	rep, err := d.sweep(ctx, faults)
	if err != nil {
		return rep, err
	}
	p, err := d.pipeline(faults)
	if err != nil {
		return rep, err
	}
	counts, err := d.store.Counts(ctx)
	if err != nil {
		return rep, err
	}
	// Precertificates left in flight by a killed process will end Issued
	// or CTFailed through recovery: they count as done.
	done := counts[ocspstate.Issued] + counts[ocspstate.CTFailed] + counts[ocspstate.Precert] + counts[ocspstate.SCTs]
	progress(done)
	var finished atomic.Int64
	finished.Store(int64(done))
	var next atomic.Int64
	next.Store(int64(done))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				key, err := testpki.NewKey(testpki.ECDSAP256)
				if err == nil {
					_, err = p.Issue(ctx, demoRequest(key.Public(), i))
				}
				if err != nil && !errors.Is(err, issuance.ErrCTFailed) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				progress(int(finished.Add(1)))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	return rep, ctx.Err()
}

func demoRequest(pub crypto.PublicKey, i int64) *issuance.Request {
	now := time.Now().UTC().Truncate(time.Second)
	name := fmt.Sprintf("host%d.precert-demo.example.com", i)
	return &issuance.Request{
		PublicKey:             pub,
		DNSNames:              []string{name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(-time.Hour).Add(90*24*time.Hour - time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies:              []x509.OID{testpki.DomainValidated},
		OCSPServer:            []string{"http://ocsp.precert-demo.example.com/"},
		IssuingCertificateURL: []string{"http://ca.precert-demo.example.com/issuer.der"},
		CRLDistributionPoints: []string{"http://ca.precert-demo.example.com/issuer.crl"},
	}
}

// runDemoChild is the issuing process of demo --crash. It reports progress
// and recovery counts on stdout, one line each, for the parent.
func runDemoChild(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "demo-child", "demo-child --dir DIR --certs N --workers W --kill-prob P")
	dir := fs.String("dir", "", "")
	n := fs.Int("certs", 0, "")
	workers := fs.Int("workers", 16, "")
	killProb := fs.Float64("kill-prob", 0, "")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if os.Getenv("PRECERT_LOG") == "" {
		env.log = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	var mu sync.Mutex
	rep, err := issueAll(ctx, env, *dir, *n, *workers, *killProb, func(done int) {
		mu.Lock()
		fmt.Fprintf(env.stdout, "progress %d\n", done)
		mu.Unlock()
	})
	fmt.Fprintf(env.stdout, "recovery %d %d\n", rep.refreshed, rep.resumed)
	if err != nil {
		return fail(env, "demo-child: %v", err)
	}
	return exitOK
}

// issueWithCrashes runs demo-child until it completes, counting the
// SIGKILLs it survived.
func issueWithCrashes(ctx context.Context, env *cliEnv, f demoFlags, bar *progress) (int, issueReport, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, issueReport{}, err
	}
	// About one kill every ten issuances' worth of fault points.
	killProb := 1.0 / 120
	var totals issueReport
	for crashes := 0; ; crashes++ {
		if crashes > 10*f.certs+50 {
			return crashes, totals, errors.New("the issuing process keeps dying without finishing")
		}
		cmd := exec.CommandContext(ctx, self, "demo-child", "--dir", f.dir, "--certs", strconv.Itoa(f.certs),
			"--workers", strconv.Itoa(f.workers), "--kill-prob", strconv.FormatFloat(killProb, 'g', -1, 64))
		out, err := cmd.StdoutPipe()
		if err != nil {
			return crashes, totals, err
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return crashes, totals, err
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) == 2 && fields[0] == "progress":
				v, _ := strconv.Atoi(fields[1])
				bar.set(v)
			case len(fields) == 3 && fields[0] == "recovery":
				a, _ := strconv.Atoi(fields[1])
				b, _ := strconv.Atoi(fields[2])
				totals.add(issueReport{refreshed: a, resumed: b})
			}
		}
		err = cmd.Wait()
		if err == nil {
			return crashes, totals, nil
		}
		if ctx.Err() != nil {
			return crashes, totals, ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				bar.note("issuing process killed (SIGKILL); restarting: open store, sweep, continue")
				continue
			}
		}
		return crashes, totals, fmt.Errorf("issuing process failed: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
}

// writePEMs writes every precertificate and final certificate of the
// store to dir/precerts and dir/certs, named by serial.
func writePEMs(ctx context.Context, store ocspstate.Store, dir string) (precerts, finals int, err error) {
	err = store.Scan(ctx, func(r *ocspstate.Record) error {
		name := ocspstate.SerialHex(r.Serial) + ".pem"
		if len(r.PrecertDER) > 0 {
			if err := os.WriteFile(filepath.Join(dir, "precerts", name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.PrecertDER}), 0o644); err != nil {
				return err
			}
			precerts++
		}
		if len(r.FinalDER) > 0 {
			if err := os.WriteFile(filepath.Join(dir, "certs", name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.FinalDER}), 0o644); err != nil {
				return err
			}
			finals++
		}
		return nil
	})
	return precerts, finals, err
}

// progress shows issuance progress: a bar on a terminal, a line every 10%
// otherwise.
type progress struct {
	env   *cliEnv
	total int
	mu    sync.Mutex
	last  int
}

func newProgress(env *cliEnv, total int) *progress {
	return &progress{env: env, total: total, last: -1}
}

func (p *progress) set(done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done <= p.last {
		return
	}
	if p.env.stdoutTTY {
		width := 40
		filled := width * done / p.total
		fmt.Fprintf(p.env.stdout, "\r[%s%s] %d/%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, p.total)
	} else if step := max(1, p.total/10); done/step != p.last/step || done == p.total {
		fmt.Fprintf(p.env.stdout, "issued or CT-failed: %d/%d\n", done, p.total)
	}
	p.last = done
}

func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.env.stdoutTTY {
		fmt.Fprintf(p.env.stdout, "\r%-60s\n", msg)
		return
	}
	fmt.Fprintln(p.env.stdout, msg)
}

func (p *progress) done() {
	if p.env.stdoutTTY {
		fmt.Fprintln(p.env.stdout)
	}
}
