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

// LookPath returns the path of binary, or calls Missing with howToGet.
func LookPath(t testing.TB, binary, howToGet string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err != nil {
		Missing(t, binary, howToGet)
	}
	return path
}
