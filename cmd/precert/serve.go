package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
	"github.com/certpipe/precert/responder"
)

func runServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "serve", "serve --db FILE|DSN --issuer PEM [--responder-cert PEM --responder-key PEM | --key PEM] --addr ADDR [--metrics ADDR] [--sweep-interval DUR]")
	of := addOperatorFlags(fs, "the issuer's key: with it (or a delegated responder), the startup sweep runs and responses are kept fresh")
	addr := fs.String("addr", "", "address to serve OCSP on, e.g. :8080 (GET and POST at any path)")
	metricsAddr := fs.String("metrics", "", "address for /metrics, /healthz and /readyz")
	interval := fs.Duration("sweep-interval", 5*time.Minute, "background sweep interval (with a key)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if code := required(env, "serve", map[string]string{"db": *of.db, "issuer": *of.issuer, "addr": *addr}); code != 0 {
		return code
	}
	o, err := of.open(ctx, env, true)
	if err != nil {
		return fail(env, "serve: %v", err)
	}
	defer o.store.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Startup order: sweep, then serve and probe, then keep sweeping.
	var sweeper *recovery.Sweeper
	if o.signer != nil {
		sweeper, err = recovery.New(recovery.Config{Store: o.store, Signers: []*ocspstate.ResponseSigner{o.signer}, Logger: env.log, Registerer: reg})
		if err != nil {
			return fail(env, "serve: %v", err)
		}
		rep, err := sweeper.Sweep(ctx)
		if err != nil {
			return fail(env, "serve: startup sweep: %v", err)
		}
		fmt.Fprintln(env.stdout, "startup sweep:", rep)
	} else {
		fmt.Fprintln(env.stdout, "no key given: serving stored responses only; run `precert sweep` (or serve with --key) to keep them fresh")
	}
	return serve(ctx, env, o.store, []*x509.Certificate{o.issuer}, *addr, *metricsAddr, reg, sweeper, *interval)
}

// serve runs the OCSP responder on addr (and metrics on metricsAddr),
// probes it, and runs the background sweep, until ctx ends.
func serve(ctx context.Context, env *cliEnv, store ocspstate.Store, issuers []*x509.Certificate, addr, metricsAddr string,
	reg *prometheus.Registry, sweeper *recovery.Sweeper, interval time.Duration) int {
	h, err := responder.New(store, responder.Options{Issuers: issuers, Logger: env.log, Registerer: reg})
	if err != nil {
		return fail(env, "serve: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(env, "serve: --addr %s: %v", addr, err)
	}
	// The responder is the server's handler, not mounted on a ServeMux:
	// a mux would redirect GET paths containing "//", which base64 makes.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"

	var ready atomic.Bool
	var msrv *http.Server
	if metricsAddr != "" {
		mln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			srv.Close()
			return fail(env, "serve: --metrics %s: %v", metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "not ready: the self-probe has not passed", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
		fmt.Fprintf(env.stdout, "metrics at http://%s/metrics, readiness at /readyz\n", mln.Addr())
	}

	// Probe ourselves before declaring readiness: unknown serials must get
	// the 5 unauthorized bytes, uncacheable; a stored precertificate, if
	// any, a valid response.
	targets, err := probeTargets(ctx, store)
	if err != nil {
		srv.Close()
		return fail(env, "serve: choosing probe targets: %v", err)
	}
	rep, err := (&responder.Prober{}).Probe(ctx, url, issuers, targets...)
	if err != nil || !rep.OK() {
		srv.Close()
		if err != nil {
			return fail(env, "serve: self-probe: %v", err)
		}
		fmt.Fprint(env.stderr, rep)
		return fail(env, "serve: self-probe of %s failed; not serving", url)
	}
	ready.Store(true)
	fmt.Fprintf(env.stdout, "serving OCSP at %s (self-probe passed: %d checks)\n", url, len(rep.Checks))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sweeper != nil {
		go sweeper.Run(runCtx, interval)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fail(env, "serve: %v", err)
		}
	}
	ready.Store(false)
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShutdown()
	srv.Shutdown(shutdown)
	if msrv != nil {
		msrv.Shutdown(shutdown)
	}
	fmt.Fprintln(env.stdout, "stopped")
	return exitOK
}

// probeTargets picks one published record per state, at most a few, to
// probe with its precertificate and expected status.
func probeTargets(ctx context.Context, store ocspstate.Store) ([]responder.ProbeTarget, error) {
	var out []responder.ProbeTarget
	seen := map[ocspstate.State]bool{}
	errStop := errors.New("enough")
	err := store.Scan(ctx, func(r *ocspstate.Record) error {
		if !r.State.Published() || seen[r.State] || time.Now().After(r.NotAfter) {
			return nil
		}
		c, err := x509.ParseCertificate(r.PrecertDER)
		if err != nil {
			return nil // the auditor reports it; the probe needs a parseable one
		}
		seen[r.State] = true
		out = append(out, responder.ProbeTarget{Cert: c, WantStatus: r.OCSP.Status})
		if len(out) == 4 {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// serveDemo serves the demo's store until interrupted.
func serveDemo(ctx context.Context, env *cliEnv, d *demoCA, addr, dir string) int {
	reg := prometheus.NewRegistry()
	s, err := recovery.New(recovery.Config{Store: d.store, Signers: []*ocspstate.ResponseSigner{d.signer}, Logger: env.log, Registerer: reg})
	if err != nil {
		return fail(env, "demo: %v", err)
	}
	fmt.Fprintf(env.stdout, "\ntry: openssl ocsp -issuer %s/ca.pem -CAfile %s/root.pem -cert %s/precerts/<SERIAL>.pem -url http://%s/ -no_nonce\n", dir, dir, dir, addr)
	fmt.Fprintln(env.stdout, "interrupt (Ctrl-C) to stop")
	return serve(ctx, env, d.store, []*x509.Certificate{d.issuer}, addr, "", reg, s, 5*time.Minute)
}

func runProbe(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "probe", "probe --url URL --issuer PEM [--revoked CERT.pem ...] [--sha256] [CERT.pem ...]")
	url := fs.String("url", "", "the responder's URL, as in certificates' AIA extension")
	issuerPath := fs.String("issuer", "", "PEM file with the issuing CA certificate(s)")
	sha256 := fs.Bool("sha256", false, "send SHA-256 CertIDs (RFC 9919) instead of SHA-1")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of each request")
	var revoked stringList
	fs.Var(&revoked, "revoked", "a certificate expected to be revoked (repeatable)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if code := required(env, "probe", map[string]string{"url": *url, "issuer": *issuerPath}); code != 0 {
		return code
	}
	issuers, err := loadCerts("issuer", *issuerPath)
	if err != nil {
		return fail(env, "probe: %v", err)
	}
	var targets []responder.ProbeTarget
	add := func(path string, st ocspstate.Status) error {
		certs, err := loadCerts("cert", path)
		if err != nil {
			return err
		}
		for _, c := range certs {
			targets = append(targets, responder.ProbeTarget{Cert: c, WantStatus: st})
		}
		return nil
	}
	for _, p := range fs.Args() {
		if err := add(p, ocspstate.Good); err != nil {
			return fail(env, "probe: %v", err)
		}
	}
	for _, p := range revoked {
		if err := add(p, ocspstate.Revoked); err != nil {
			return fail(env, "probe: %v", err)
		}
	}
	pr := &responder.Prober{Timeout: *timeout}
	if *sha256 {
		pr.CertIDHash = crypto.SHA256
	}
	rep, err := pr.Probe(ctx, *url, issuers, targets...)
	if err != nil {
		return fail(env, "probe: %v", err)
	}
	fmt.Fprint(env.stdout, rep)
	if !rep.OK() {
		fmt.Fprintf(env.stdout, "probe: %d of %d checks failed\n", len(rep.Failed()), len(rep.Checks))
		return exitFailed
	}
	fmt.Fprintf(env.stdout, "probe: all %d checks passed\n", len(rep.Checks))
	return exitOK
}

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
