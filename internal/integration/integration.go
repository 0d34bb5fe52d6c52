// Package integration gates tests that need something outside the Go
// toolchain: a binary (openssl, ocsptool, ct-test-srv) or a service
// (PostgreSQL, MariaDB).
//
// Run by hand without the dependency, such a test skips and says what is
// missing and how to get it. With PRECERT_INTEGRATION=1 in the environment,
// which .ci/run sets, it fails instead: CI never skips silently.
package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Enabled reports whether PRECERT_INTEGRATION=1 is set.
func Enabled() bool { return os.Getenv("PRECERT_INTEGRATION") == "1" }

// Missing skips t with a message naming what is missing and how to install
// it, or fails t if integration tests are required.
func Missing(t testing.TB, what, howToGet string) {
	t.Helper()
	if Enabled() {
		t.Fatalf("%s is required (PRECERT_INTEGRATION=1) but unavailable; %s", what, howToGet)
	}
	t.Skipf("skipping: %s is unavailable; %s (set PRECERT_INTEGRATION=1 to make this a failure)", what, howToGet)
}

// LookPath returns the path of binary, found on PATH or, for tools put
// there by `go install`, in the bin directory of each GOPATH entry; or it
// calls Missing with howToGet.
func LookPath(t testing.TB, binary, howToGet string) string {
	t.Helper()
	if path, err := exec.LookPath(binary); err == nil {
		return path
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", binary)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
		}
	}
	Missing(t, binary, howToGet)
	return ""
}
