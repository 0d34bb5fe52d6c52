// Package realct runs real RFC 6962 Certificate Transparency logs for
// integration tests: two Trillian trees on the local MariaDB behind
// certificate-transparency-go's CTFE (ct_server), started by the
// scripts/ctlogs script at the module root.
//
// Unlike the in-process log of internal/ctlogtest and Let's Encrypt's
// ct-test-srv, these logs check what a production log checks — the chain
// ends at one of their roots, the precertificate's poison extension — and
// publish what they accept: entries appear in get-entries and the tree
// grows within the logs' maximum merge delay.
//
// # What to call
//
// [Start] installs nothing: it finds the binaries that `scripts/ctlogs
// install` put in the tools directory — running that install itself only
// when PRECERT_INTEGRATION=1 is set — starts the logs for the roots given,
// and stops them (by PID, dropping their database) when the test ends.
// Without the binaries, bash, openssl, jq, curl, the MariaDB client or
// server, the test is skipped with a message saying what to install, or
// fails under PRECERT_INTEGRATION=1 (see internal/integration).
package realct

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/integration"
)

// Logs is a running pair of logs.
type Logs struct {
	// Dir holds the logs' state: config, keys, process logs.
	Dir string
	// LogListPath is the v3 log list naming both logs, as two operators.
	LogListPath string
	// LogList is its content.
	LogList []byte
	// Logs are the logs as ctsubmit sees them, loaded from LogList.
	Logs []*ctsubmit.Log
	// URLs are the logs' RFC 6962 base URLs, in LogList order.
	URLs []string
	// MMD is the logs' maximum merge delay.
	MMD time.Duration
	// Tools is the directory with the binaries scripts/ctlogs installed
	// (ct_server, sctcheck, zlint, the Trillian servers).
	Tools string
}

// Tool returns the path of one of the installed binaries.
func (l *Logs) Tool(name string) string { return filepath.Join(l.Tools, name) }

// InstallCommand is how to install the binaries by hand.
const InstallCommand = "scripts/ctlogs install"

// Script returns the path of scripts/ctlogs, found from the working
// directory up to the module root.
func Script(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "scripts", "ctlogs")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("module root %s has no scripts/ctlogs: %v", dir, err)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// run runs the script with args under a deadline and returns its combined
// output.
func run(ctx context.Context, script string, timeout time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (after %s)", ctx.Err(), timeout)
	}
	return string(out), err
}

// Tools returns the directory of the installed binaries. If they are
// missing it runs `scripts/ctlogs install` under PRECERT_INTEGRATION=1, and
// otherwise skips t naming the install command.
func Tools(t testing.TB) string {
	t.Helper()
	script := Script(t)
	for _, bin := range []string{"bash", "go"} {
		integration.LookPath(t, bin, "install it")
	}
	out, err := run(context.Background(), script, time.Minute, nil, "bin")
	if err == nil {
		return strings.TrimSpace(out)
	}
	if !integration.Enabled() {
		integration.Missing(t, "the real CT log tool set (Trillian, CTFE, sctcheck, zlint)",
			"build them once, about two minutes, with: "+InstallCommand)
	}
	t.Logf("CT log binaries missing (%s); running %s", strings.TrimSpace(out), InstallCommand)
	out, err = run(context.Background(), script, 30*time.Minute, nil, "install")
	if err != nil {
		t.Fatalf("%s: %v\n%s", InstallCommand, err, out)
	}
	out, err = run(context.Background(), script, time.Minute, nil, "bin")
	if err != nil {
		t.Fatalf("after %s: %v\n%s", InstallCommand, err, out)
	}
	return strings.TrimSpace(out)
}

// Start starts two logs whose roots file holds rootsPEM, and stops them
// when t ends. See the package documentation for what it needs.
func Start(t testing.TB, rootsPEM []byte) *Logs {
	t.Helper()
	tools := Tools(t)
	for _, bin := range []string{"openssl", "jq", "curl", "mariadb"} {
		integration.LookPath(t, bin, "install it (Debian: apt-get install openssl jq curl mariadb-client)")
	}
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil && !mariaDBUp() {
		integration.Missing(t, "MariaDB on 127.0.0.1:3306", "install it (Debian: apt-get install mariadb-server)")
	}
	script := Script(t)
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, rootsPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "ctlogs")
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, filepath.Join(state, "logs"))
		}
		out, err := run(context.Background(), script, 2*time.Minute, nil, "stop", state)
		if err != nil {
			t.Errorf("scripts/ctlogs stop: %v\n%s", err, out)
		}
	})
	// CTLOGS_WATCH_PID: if this test binary dies without cleaning up
	// (a test timeout, SIGKILL), the script's watchdog stops the logs.
	watch := []string{"CTLOGS_WATCH_PID=" + strconv.Itoa(os.Getpid())}
	out, err := run(context.Background(), script, 3*time.Minute, watch, "start", state, roots)
	if err != nil {
		t.Fatalf("scripts/ctlogs start: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out))

	env, err := readEnv(filepath.Join(state, "env"))
	if err != nil {
		t.Fatal(err)
	}
	l := &Logs{Dir: state, LogListPath: env["CTLOGS_LOGLIST"], Tools: tools}
	mmd, err := strconv.Atoi(env["CTLOGS_MMD"])
	if err != nil {
		t.Fatalf("CTLOGS_MMD in %s/env: %v", state, err)
	}
	l.MMD = time.Duration(mmd) * time.Second
	if l.LogList, err = os.ReadFile(l.LogListPath); err != nil {
		t.Fatal(err)
	}
	if l.Logs, err = ctsubmit.LoadLogList(l.LogList); err != nil {
		t.Fatalf("loading the generated log list: %v", err)
	}
	for i := range l.Logs {
		u := env[fmt.Sprintf("CTLOGS_URL_%d", i+1)]
		if u == "" || strings.TrimRight(l.Logs[i].URL, "/") != u {
			t.Fatalf("log list URL %q of log %d does not match CTLOGS_URL_%d=%q", l.Logs[i].URL, i+1, i+1, u)
		}
		l.URLs = append(l.URLs, u)
	}
	return l
}

// logTails logs the end of each server's output, for a failed test.
func logTails(t testing.TB, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-40):]
		t.Logf("tail of %s:\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}

// readEnv reads the KEY=value lines the script writes.
func readEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			return nil, fmt.Errorf("%s: line %q is not KEY=value", path, sc.Text())
		}
		env[k] = v
	}
	if len(env) == 0 {
		return nil, errors.New(path + " is empty")
	}
	return env, sc.Err()
}

func mariaDBUp() bool {
	return exec.Command("mariadb", "--protocol=tcp", "-h127.0.0.1", "-P3306", "-uroot", "--connect-timeout=3", "-e", "SELECT 1").Run() == nil
}
