package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/certpipe/precert/internal/integration"
	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testio"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
)

// TestMain lets the test binary stand in for the precert binary when demo
// --crash re-executes itself as "demo-child", and bench as "bench-serve"
// and as its load generator.
func TestMain(m *testing.M) {
	perf.RunLoadChild()
	if len(os.Args) > 1 && (os.Args[1] == "demo-child" || os.Args[1] == "bench-serve") {
		env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr}
		os.Exit(run(context.Background(), env, os.Args[1:]))
	}
	code := m.Run()
	if demoOnce.dir != "" {
		os.RemoveAll(filepath.Dir(demoOnce.dir))
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb testio.Buffer
	code := run(ctx, &cliEnv{stdout: &out, stderr: &errb}, args)
	return result{code, out.String(), errb.String()}
}

// demoDir runs a small demo once per test binary and returns its
// directory; tests must not modify it.
var demoOnce struct {
	sync.Once
	dir string
	res result
}

func demoDir(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "precert-cli-")
		require.NoError(t, err)
		demoOnce.dir = filepath.Join(dir, "demo")
		demoOnce.res = runCLI(t, context.Background(), "demo", "--dir", demoOnce.dir, "--certs", "12", "--ct-fail-rate", "0.3")
	})
	require.Equal(t, exitOK, demoOnce.res.code, "demo failed: %s %s", demoOnce.res.stdout, demoOnce.res.stderr)
	return demoOnce.dir
}

func TestHelp(t *testing.T) {
	for _, c := range commands {
		if c.summary == "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, context.Background(), c.name, "--help")
			require.Equal(t, exitOK, r.code)
			require.Contains(t, r.stdout, "Usage: precert "+c.name)
		})
	}
	r := runCLI(t, context.Background(), "--help")
	require.Equal(t, exitOK, r.code)
	for _, c := range commands {
		if c.summary != "" {
			require.Contains(t, r.stdout, c.name)
		}
	}
	r = runCLI(t, context.Background(), "frobnicate")
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, `unknown command "frobnicate"`)
}

func TestDemo(t *testing.T) {
	dir := demoDir(t)
	for _, f := range []string{"ca.pem", "ca.key", "root.pem", "ocsp.db", "loglist.json"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
	}
	pre, err := os.ReadDir(filepath.Join(dir, "precerts"))
	require.NoError(t, err)
	require.Len(t, pre, 12, "one precertificate per certificate requested")
	for _, e := range pre {
		require.Regexp(t, `^[0-9a-f]+\.pem$`, e.Name(), "named by lowercase hex serial")
	}
	finals, err := os.ReadDir(filepath.Join(dir, "certs"))
	require.NoError(t, err)
	require.Contains(t, demoOnce.res.stdout, fmt.Sprintf("issued                 %d", len(finals)))
	require.Contains(t, demoOnce.res.stdout, "audit                  clean")

	// Inspect, audit and sweep work on what the demo left.
	r := runCLI(t, context.Background(), "inspect", "--db", filepath.Join(dir, "ocsp.db"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Regexp(t, `total\s+12`, r.stdout)
	serial := strings.TrimSuffix(pre[0].Name(), ".pem")
	r = runCLI(t, context.Background(), "inspect", "--db", filepath.Join(dir, "ocsp.db"), "--loglist", filepath.Join(dir, "loglist.json"), serial)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, serial)
	require.Regexp(t, `ocsp\s+good`, r.stdout)

	r = runCLI(t, context.Background(), "audit", "--db", filepath.Join(dir, "ocsp.db"), "--issuer", filepath.Join(dir, "ca.pem"), "--loglist", filepath.Join(dir, "loglist.json"))
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "audit: clean, 12 records (SCT signatures verified)")

	// A second demo into the same directory refuses.
	r = runCLI(t, context.Background(), "demo", "--dir", dir, "--certs", "1")
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, "already exists")
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line")
}

func TestDemoForceAndCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o644))
	r := runCLI(t, context.Background(), "demo", "--dir", dir, "--certs", "30", "--crash", "--force")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "audit                  clean")
	require.Regexp(t, `crashes survived\s+\d+`, r.stdout)
	pre, err := os.ReadDir(filepath.Join(dir, "precerts"))
	require.NoError(t, err)
	require.Len(t, pre, 30, "exactly the requested number end Issued or CTFailed")
	_, err = os.Stat(filepath.Join(dir, "old"))
	require.ErrorIs(t, err, os.ErrNotExist, "--force replaced the directory")
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--certs", "0"}, {"--logs", "1"}, {"--ct-fail-rate", "1.5"}, {"--serve", "nonsense"}, {"--bogus"}, {"extra"},
	} {
		r := runCLI(t, context.Background(), append([]string{"demo", "--dir", t.TempDir()}, args...)...)
		require.Equal(t, exitError, r.code, args)
		require.NotEmpty(t, r.stderr, args)
	}
}

func TestErrorPaths(t *testing.T) {
	dir := demoDir(t)
	db := filepath.Join(dir, "ocsp.db")
	issuer := filepath.Join(dir, "ca.pem")
	key := filepath.Join(dir, "ca.key")
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.db")
	require.NoError(t, os.WriteFile(corrupt, bytes.Repeat([]byte("garbage!"), 4096), 0o600))
	other, err := testpki.New(testpki.ECDSAP256)
	require.NoError(t, err)
	otherKey, err := testpki.KeyPEM(other.IntermediateKey)
	require.NoError(t, err)
	wrongKey := filepath.Join(tmp, "wrong.key")
	require.NoError(t, os.WriteFile(wrongKey, otherKey, 0o600))
	notPEM := filepath.Join(tmp, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"audit: missing db", []string{"audit", "--db", filepath.Join(tmp, "nope.db"), "--issuer", issuer}, "no such file"},
		{"audit: missing issuer", []string{"audit", "--db", db, "--issuer", filepath.Join(tmp, "nope.pem")}, "--issuer"},
		{"audit: issuer not PEM", []string{"audit", "--db", db, "--issuer", notPEM}, "no PEM CERTIFICATE"},
		{"audit: corrupt db", []string{"audit", "--db", corrupt, "--issuer", issuer}, "not a valid bbolt file"},
		{"audit: no flags", []string{"audit"}, "missing --db, --issuer"},
		{"inspect: missing db", []string{"inspect", "--db", filepath.Join(tmp, "nope.db")}, "no such file"},
		{"inspect: corrupt db", []string{"inspect", "--db", corrupt}, "not a valid bbolt file"},
		{"inspect: bad serial", []string{"inspect", "--db", db, "xyz"}, "not a positive hexadecimal"},
		{"inspect: unknown serial", []string{"inspect", "--db", db, "abcdef"}, "no record for serial"},
		{"sweep: wrong key for issuer", []string{"sweep", "--db", db, "--issuer", issuer, "--key", wrongKey}, "does not match"},
		{"sweep: missing key", []string{"sweep", "--db", db, "--issuer", issuer, "--key", filepath.Join(tmp, "nope.key")}, "no such file"},
		{"sweep: no signer", []string{"sweep", "--db", db, "--issuer", issuer}, "give --key"},
		{"sweep: corrupt db", []string{"sweep", "--db", corrupt, "--issuer", issuer, "--key", key}, "not a valid bbolt file"},
		{"sweep: postgres unreachable", []string{"sweep", "--db", "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "--issuer", issuer, "--key", key}, "127.0.0.1:1"},
		{"serve: wrong key for issuer", []string{"serve", "--db", db, "--issuer", issuer, "--key", wrongKey, "--addr", "127.0.0.1:0"}, "does not match"},
		{"serve: no addr", []string{"serve", "--db", db, "--issuer", issuer}, "missing --addr"},
		{"serve: half a responder", []string{"serve", "--db", db, "--issuer", issuer, "--responder-cert", issuer, "--addr", "127.0.0.1:0"}, "go together"},
		{"probe: missing issuer", []string{"probe", "--url", "http://127.0.0.1:1/", "--issuer", filepath.Join(tmp, "nope.pem")}, "no such file"},
		{"probe: bad url", []string{"probe", "--url", "ftp://x/", "--issuer", issuer}, "probe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, context.Background(), tc.args...)
			require.Equal(t, exitError, r.code, r.stdout+r.stderr)
			require.Contains(t, r.stderr, tc.want)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one clear line, got %q", r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, "precert: "), r.stderr)
			require.NotContains(t, r.stderr, "hunter2", "passwords are never printed")
		})
	}

	t.Run("busy db", func(t *testing.T) {
		s, err := ocspstate.Open(db, ocspstate.Options{})
		require.NoError(t, err)
		defer s.Close()
		for _, args := range [][]string{
			{"audit", "--db", db, "--issuer", issuer},
			{"inspect", "--db", db},
			{"sweep", "--db", db, "--issuer", issuer, "--key", key},
			{"serve", "--db", db, "--issuer", issuer, "--key", key, "--addr", "127.0.0.1:0"},
		} {
			r := runCLI(t, context.Background(), args...)
			require.Equal(t, exitError, r.code)
			require.Contains(t, r.stderr, "in use by another process")
			require.Equal(t, 1, strings.Count(r.stderr, "\n"))
		}
	})
}

func TestAuditReportsViolations(t *testing.T) {
	src := demoDir(t)
	db := filepath.Join(t.TempDir(), "ocsp.db")
	data, err := os.ReadFile(filepath.Join(src, "ocsp.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(db, data, 0o600))
	// Damage one stored response on disk: flip a byte of its signature.
	bdb, err := bolt.Open(db, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		// The first record's hot part holds its response; the response
		// ends the record's first length-prefixed field after 10 bytes of
		// header, and its last bytes are the signature.
		recs := tx.Bucket([]byte("records"))
		k, v := recs.Cursor().First()
		rec := append([]byte(nil), v...)
		n, w := binary.Uvarint(rec[10:])
		rec[10+w+int(n)-3] ^= 1
		return recs.Put(k, rec)
	}))
	require.NoError(t, bdb.Close())
	r := runCLI(t, context.Background(), "audit", "--db", db, "--issuer", filepath.Join(src, "ca.pem"))
	require.Equal(t, exitFailed, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "response-invalid")
	require.Contains(t, r.stdout, "audit: 1 violations over 12 records")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

// TestDemoServeWithOpenSSL is issue 7's acceptance: every precertificate
// of the demo — CT-failed ones included — gets "good" with "Response
// verify OK" from openssl; an unknown serial gets "unauthorized".
func TestDemoServeWithOpenSSL(t *testing.T) {
	openssl := integration.LookPath(t, "openssl", "install it with: apt-get install openssl")
	dir := filepath.Join(t.TempDir(), "demo")
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- runCLI(t, ctx, "demo", "--dir", dir, "--certs", "12", "--ct-fail-rate", "0.4", "--serve", addr)
	}()
	defer func() {
		cancel()
		r := <-done
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		require.Contains(t, r.stdout, "stopped")
	}()
	// The unknown-serial request doubles as the readiness check.
	var unknown []byte
	for i := 0; i < 300; i++ {
		out, _ := exec.Command(openssl, "ocsp", "-issuer", filepath.Join(dir, "ca.pem"), "-serial", "0x1234567890abcdef",
			"-url", "http://"+addr+"/", "-no_nonce").CombinedOutput()
		if bytes.Contains(out, []byte("unauthorized")) {
			unknown = out
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, string(unknown), "Responder Error: unauthorized (6)")
	pre, err := filepath.Glob(filepath.Join(dir, "precerts", "*.pem"))
	require.NoError(t, err)
	require.Len(t, pre, 12)
	for _, f := range pre {
		cmd := exec.Command(openssl, "ocsp", "-issuer", filepath.Join(dir, "ca.pem"), "-CAfile", filepath.Join(dir, "root.pem"),
			"-cert", f, "-url", "http://"+addr+"/", "-no_nonce")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "Response verify OK")
		require.Contains(t, string(out), f+": good")
		require.NotContains(t, string(out), "WARNING")
	}
}

func TestServeAndProbe(t *testing.T) {
	src := demoDir(t)
	db := filepath.Join(t.TempDir(), "ocsp.db")
	data, err := os.ReadFile(filepath.Join(src, "ocsp.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(db, data, 0o600))
	addr, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- runCLI(t, ctx, "serve", "--db", db, "--issuer", filepath.Join(src, "ca.pem"), "--key", filepath.Join(src, "ca.key"),
			"--addr", addr, "--metrics", metrics)
	}()
	waitHTTP(t, "http://"+metrics+"/readyz")

	pre, err := filepath.Glob(filepath.Join(src, "precerts", "*.pem"))
	require.NoError(t, err)
	r := runCLI(t, context.Background(), append([]string{"probe", "--url", "http://" + addr + "/", "--issuer", filepath.Join(src, "ca.pem")}, pre[:3]...)...)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "checks passed")

	res, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body := new(bytes.Buffer)
	body.ReadFrom(res.Body)
	res.Body.Close()
	require.Contains(t, body.String(), "precert_responder_responses_total")
	require.Contains(t, body.String(), "precert_sweep_runs_total")

	// Expecting revoked where the responder says good fails the probe.
	r = runCLI(t, context.Background(), "probe", "--url", "http://"+addr+"/", "--issuer", filepath.Join(src, "ca.pem"), "--revoked", pre[0])
	require.Equal(t, exitFailed, r.code, r.stdout)

	cancel()
	r = <-done
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "startup sweep:")
	require.Contains(t, r.stdout, "stopped")
}

func TestProbeFlagsJunk(t *testing.T) {
	src := demoDir(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte{0x30}) })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()
	r := runCLI(t, context.Background(), "probe", "--url", "http://"+ln.Addr().String()+"/", "--issuer", filepath.Join(src, "ca.pem"))
	require.Equal(t, exitFailed, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "checks failed")
}

func TestBench(t *testing.T) {
	r := runCLI(t, context.Background(), "bench", "--quick", "--json", "--dir", t.TempDir(), "--issuances", "40", "--records", "2000")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	var rep benchReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	require.True(t, rep.Quick)
	require.Len(t, rep.Rows, benchRows)
	for _, row := range rep.Rows {
		require.NotEmpty(t, row.Baseline, row.Figure)
		if strings.HasPrefix(row.Note, "not measured") {
			require.False(t, integration.Enabled(), "%s: %s (PRECERT_INTEGRATION=1 needs every row)", row.Figure, row.Note)
			continue
		}
		require.Positive(t, row.Value, row.Figure)
		require.Positive(t, row.BaselineValue, row.Figure)
		require.InEpsilon(t, row.Value/row.BaselineValue, row.Ratio, 0.02, row.Figure)
		if row.Goal != "reported" {
			require.NotNil(t, row.Met, row.Figure)
		}
	}
	require.Equal(t, strings.Count(r.stderr, "…\n"), benchRows, "a progress line per row:\n%s", r.stderr)

	r = runCLI(t, context.Background(), "bench", "--records", "5")
	require.Equal(t, exitError, r.code)
}

// TestPostgresStore runs the operator commands against a PostgreSQL store
// (--db postgres://…?schema=…): reservations whose issuing process died
// are abandoned by sweep, then audit finds the schema clean and inspect
// counts them.
func TestPostgresStore(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	dir := demoDir(t)
	issuer := filepath.Join(dir, "ca.pem")
	key := filepath.Join(dir, "ca.key")
	certs, err := loadCerts("issuer", issuer)
	require.NoError(t, err)
	s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema, Issuers: certs})
	require.NoError(t, err)
	now := time.Now()
	for i := range 3 {
		require.NoError(t, s.Reserve(context.Background(), &ocspstate.Record{
			Issuer: ocspstate.IssuerIDOf(certs[0]), Serial: big.NewInt(int64(1000 + i)), State: ocspstate.Reserved,
			IntentDER: []byte{0x30, 0x00}, NotBefore: now, NotAfter: now.Add(24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "a process that died", Expires: now.Add(50 * time.Millisecond)},
		}))
	}
	require.NoError(t, s.Close())
	time.Sleep(100 * time.Millisecond) // the leases run out

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	db := u.String()

	r := runCLI(t, context.Background(), "sweep", "--db", db, "--issuer", issuer, "--key", key)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "abandoned")
	r = runCLI(t, context.Background(), "audit", "--db", db, "--issuer", issuer)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "clean, 3 records")
	r = runCLI(t, context.Background(), "inspect", "--db", db)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Regexp(t, `Abandoned\s+3`, r.stdout)
}
