// Command precert is the operator's tool for a precert store: a demo that
// runs the whole pipeline on a throwaway CA, an OCSP server, the recovery
// sweep, the auditor, record inspection, a live probe of any responder, and
// benchmarks.
//
//	precert demo      run the pipeline end to end on a throwaway CA
//	precert serve     serve OCSP from a store (and keep it fresh with a key)
//	precert sweep     run one recovery sweep
//	precert audit     check invariants I1–I6 over a store
//	precert inspect   show one record, or counts per state
//	precert probe     check a live OCSP responder from outside
//	precert bench     measure throughput against baselines from the same run
//
// Every command takes --help. Exit status: 0 success, 1 the check failed
// (audit violations, probe failures), 2 bad usage or an error.
package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/pemfile"
	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the check ran and found problems
	exitError  = 2 // usage or runtime error
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

var commands = []command{
	{"demo", "run the whole pipeline on a throwaway CA, then sweep, audit and optionally serve", runDemo},
	{"serve", "serve OCSP from a store; with a key, keep every response fresh", runServe},
	{"sweep", "run one recovery sweep over a store and print its report", runSweep},
	{"audit", "check invariants I1-I6 over every record; exit 1 on any violation", runAudit},
	{"inspect", "show one record, or the number of records in each state", runInspect},
	{"probe", "check a live OCSP responder: unknown serials, and given certificates over GET and POST", runProbe},
	{"bench", "measure throughput against baselines measured in the same run", runBench},
	{"demo-child", "", runDemoChild},   // internal: the issuing process of demo --crash
	{"bench-serve", "", runBenchServe}, // internal: the server process of bench's responder rows
}

// cliEnv is what commands print to and log with.
type cliEnv struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	stdoutTTY      bool
}

func main() {
	perf.RunLoadChild() // bench's load generator process: runs its load and exits
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fi, _ := os.Stdout.Stat()
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, stdoutTTY: fi != nil && fi.Mode()&os.ModeCharDevice != 0}
	os.Exit(run(ctx, env, os.Args[1:]))
}

func run(ctx context.Context, env *cliEnv, args []string) int {
	if env.log == nil {
		level := slog.LevelWarn
		if os.Getenv("PRECERT_LOG") == "debug" {
			level = slog.LevelDebug
		} else if os.Getenv("PRECERT_LOG") == "info" {
			level = slog.LevelInfo
		}
		env.log = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.stderr, "precert: unknown command %q; run 'precert --help' for the list\n", args[0])
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "precert: precertificates with crash-safe OCSP")
	fmt.Fprintln(w, "\nUsage: precert <command> [flags]   (precert <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		if c.summary != "" {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nLogging: PRECERT_LOG=info or debug (default warn), to stderr.")
}

// newFlags returns a flag set whose --help prints synopsis and flags to
// stdout.
func newFlags(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "Usage: precert %s\n\n", synopsis)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.stderr)
	}
	return fs
}

// parse parses args; it returns (exit code, false) when the command should
// stop (help, or a usage error already reported).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitError, false
	}
	return 0, true
}

// fail prints one line and returns exitError.
func fail(env *cliEnv, format string, args ...any) int {
	fmt.Fprintf(env.stderr, "precert: "+format+"\n", args...)
	return exitError
}

func required(env *cliEnv, cmd string, flags map[string]string) int {
	var missing []string
	for name, v := range flags {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) == 0 {
		return 0
	}
	sort.Strings(missing)
	return fail(env, "%s: missing %s (see precert %s --help)", cmd, strings.Join(missing, ", "), cmd)
}

// readFile reads a file named by a flag, with an error that names both.
func readFile(flagName, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--%s %s: no such file", flagName, path)
	case err != nil:
		return nil, fmt.Errorf("--%s %s: %v", flagName, path, err)
	}
	return data, nil
}

// loadCerts reads every CERTIFICATE in a PEM file.
func loadCerts(flagName, path string) ([]*x509.Certificate, error) {
	data, err := readFile(flagName, path)
	if err != nil {
		return nil, err
	}
	return parseCerts(flagName, path, data)
}

// parseCerts parses every CERTIFICATE block of data, read from path.
func parseCerts(flagName, path string, data []byte) ([]*x509.Certificate, error) {
	certs, err := pemfile.Certificates(data)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %v", flagName, path, err)
	}
	return certs, nil
}

// loadKey reads a PKCS #8, PKCS #1 or SEC 1 private key from a PEM file.
func loadKey(flagName, path string) (crypto.Signer, error) {
	data, err := readFile(flagName, path)
	if err != nil {
		return nil, err
	}
	return parseKey(flagName, path, data)
}

// parseKey parses the first PEM block of data, read from path, as a
// private key.
func parseKey(flagName, path string, data []byte) (crypto.Signer, error) {
	k, err := pemfile.Key(data)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %v", flagName, path, err)
	}
	return k, nil
}

// openStore opens --db: a bbolt file path, or a PostgreSQL DSN
// (postgres://… or postgresql://…) for a store shared by several
// processes. Read-only opens of a file require it to exist and do not
// block a running writer's readers; on PostgreSQL they only read (Due
// claims no records).
//
// serving opens a bbolt store with its response cache (every response in
// memory, written through on commit), for the responder's hot path.
func openStore(ctx context.Context, path string, issuers []*x509.Certificate, readOnly, serving bool) (ocspstate.Store, error) {
	if isPostgres(path) {
		dsn, schema, err := splitSchema(path)
		if err != nil {
			return nil, err
		}
		opts := pgstore.Options{Issuers: issuers, Schema: schema}
		if readOnly {
			opts.ClaimTTL = -1
		}
		s, err := pgstore.Open(ctx, dsn, opts)
		if err != nil {
			return nil, fmt.Errorf("--db %s: %v", redactDSN(path), err)
		}
		return s, nil
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--db %s: no such file", path)
		}
	}
	s, err := ocspstate.Open(path, ocspstate.Options{Issuers: issuers, ReadOnly: readOnly, CacheResponses: serving})
	if err != nil {
		return nil, fmt.Errorf("--db %s: %v", path, strings.TrimPrefix(err.Error(), "ocspstate: "))
	}
	return s, nil
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// splitSchema takes the schema=NAME parameter, ours rather than
// PostgreSQL's, out of a DSN (empty: pgstore's default schema).
func splitSchema(dsn string) (string, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("--db: not a PostgreSQL URL: %v", err)
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// redactDSN drops a password from a DSN before it is printed.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable PostgreSQL DSN)"
	}
	return u.Redacted()
}

// loadLogs reads a v3 log list, keeping logs usable for certificates
// expiring within a year.
func loadLogs(path string) ([]*ctsubmit.Log, error) {
	data, err := readFile("loglist", path)
	if err != nil {
		return nil, err
	}
	logs, err := ctsubmit.LoadLogList(data)
	if err != nil {
		return nil, fmt.Errorf("--loglist %s: %v", path, err)
	}
	return logs, nil
}

// parseSerial reads a serial in hex, with or without colons or 0x.
func parseSerial(s string) (*big.Int, error) {
	clean := strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x")
	n, ok := new(big.Int).SetString(clean, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("serial %q is not a positive hexadecimal number", s)
	}
	return n, nil
}
