package responder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/integration"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
)

// These tests run OCSP clients nobody here wrote against the handler on
// loopback: openssl ocsp, GnuTLS ocsptool and NSS ocspclnt. Each covers a
// good final certificate, a revoked one, a precertificate whose CT
// submission failed (still good, invariant I2), an unknown serial
// (unauthorized) and a response signed by a delegated responder (under a
// second, RSA, issuer served by the same handler). Each also runs a
// negative control: a server that answers with a response signed by the
// wrong key, which the client must reject, so that the assertions are
// known to catch a failed verification and not only a missing "good".

// clientCase is one certificate a client asks about.
type clientCase struct {
	name   string
	cert   *x509.Certificate
	issuer *x509.Certificate
	root   *x509.Certificate
	want   string // "good", "revoked" or "unauthorized"
}

func (f *fixture) clientCases() []clientCase {
	return []clientCase{
		{"good", f.good, f.caA.Intermediate, f.caA.Root, "good"},
		{"revoked", f.revoked, f.caA.Intermediate, f.caA.Root, "revoked"},
		{"ct-failed-precert", f.ctFailed, f.caA.Intermediate, f.caA.Root, "good"},
		{"unknown-serial", f.unknown, f.caA.Intermediate, f.caA.Root, "unauthorized"},
		{"delegated-responder", f.delegated, f.caB.Intermediate, f.caB.Root, "good"},
	}
}

// clientEnv starts the handler on the fixture's AIA URL, behind a
// recorder of request methods, and writes every certificate as PEM and DER
// into a temporary directory.
type clientEnv struct {
	f      *fixture
	url    string
	badURL string // the negative control: f.good's serial, signed by the wrong key
	dir    string

	mu      sync.Mutex
	methods []string
}

func newClientEnv(t *testing.T) *clientEnv {
	t.Helper()
	f := newFixture(t)
	e := &clientEnv{f: f, dir: t.TempDir()}
	h := f.handler(t, Options{})
	e.url = f.serveAIA(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.methods = append(e.methods, r.Method)
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	bad := wrongKeyResponse(t, f.caA, f.good)
	e.badURL = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(bad)
	})) + "/"
	for _, c := range append(f.clientCases(), clientCase{name: "sha256", cert: f.sha256}) {
		e.write(t, c.name, c.cert)
	}
	for name, c := range map[string]*x509.Certificate{
		"rootA": f.caA.Root, "interA": f.caA.Intermediate, "rootB": f.caB.Root, "interB": f.caB.Intermediate,
	} {
		e.write(t, name, c)
	}
	return e
}

func (e *clientEnv) write(t *testing.T, name string, c *x509.Certificate) {
	t.Helper()
	require.NoError(t, os.WriteFile(e.path(name, "pem"), testpki.PEM(c), 0o644))
	require.NoError(t, os.WriteFile(e.path(name, "der"), c.Raw, 0o644))
}

func (e *clientEnv) path(name, ext string) string { return filepath.Join(e.dir, name+"."+ext) }

// pemOf names the PEM file of an issuer or root certificate.
func (e *clientEnv) pemOf(c *x509.Certificate) string {
	switch c {
	case e.f.caA.Root:
		return e.path("rootA", "pem")
	case e.f.caA.Intermediate:
		return e.path("interA", "pem")
	case e.f.caB.Root:
		return e.path("rootB", "pem")
	case e.f.caB.Intermediate:
		return e.path("interB", "pem")
	}
	panic("unknown certificate")
}

func (e *clientEnv) sawMethod(m string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, got := range e.methods {
		if got == m {
			return true
		}
	}
	return false
}

// wrongKeyResponse is a good response for cert's serial with ca's CertID
// and responder name, signed by a key that is not ca's.
func wrongKeyResponse(t testing.TB, ca *testpki.CA, cert *x509.Certificate) []byte {
	t.Helper()
	key, err := testpki.NewKey(ca.KeyType)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	der, err := ocsp.CreateResponse(ca.Intermediate, ca.Intermediate, ocsp.Response{
		Status: ocsp.Good, SerialNumber: cert.SerialNumber, IssuerHash: crypto.SHA1,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(48 * time.Hour),
	}, key)
	require.NoError(t, err)
	return der
}

// run runs a client with a deadline and returns its output and exit code.
func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s timed out", bin)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("%s %s\nexit %d\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), code, o.String(), e.String())
	return o.String(), e.String(), code
}

func TestClientOpenSSL(t *testing.T) {
	bin := integration.LookPath(t, "openssl", "install it with apt-get install openssl")
	e := newClientEnv(t)
	// openssl prints the status even when verification fails: the exit
	// code, "Response verify OK" and the absence of WARNING (which it
	// prints, for instance, for a response outside its validity) are
	// what say the response was accepted.
	ask := func(t *testing.T, url, name string, issuer, root *x509.Certificate, extra ...string) (string, string, int) {
		t.Helper()
		// A CertID digest option (-sha256) must come before -cert.
		args := append(append([]string{"ocsp"}, extra...), "-issuer", e.pemOf(issuer), "-cert", e.path(name, "pem"),
			"-url", url, "-CAfile", e.pemOf(root), "-no_nonce", "-timeout", "30")
		return run(t, bin, args...)
	}
	for _, c := range e.f.clientCases() {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := ask(t, e.url, c.name, c.issuer, c.root)
			if c.want == "unauthorized" {
				require.NotEqual(t, 0, code)
				require.Contains(t, stdout+stderr, "Responder Error: unauthorized (6)")
				return
			}
			require.Equal(t, 0, code)
			require.Contains(t, stderr, "Response verify OK")
			require.NotContains(t, stdout+stderr, "WARNING")
			require.Contains(t, stdout, e.path(c.name, "pem")+": "+c.want+"\n")
			if c.want == "revoked" {
				require.Contains(t, stdout, "Reason: keyCompromise")
			}
		})
	}
	t.Run("sha256-certid", func(t *testing.T) {
		stdout, stderr, code := ask(t, e.url, "sha256", e.f.caA.Intermediate, e.f.caA.Root, "-sha256")
		require.Equal(t, 0, code)
		require.Contains(t, stderr, "Response verify OK")
		require.NotContains(t, stdout+stderr, "WARNING")
		require.Contains(t, stdout, e.path("sha256", "pem")+": good\n")
	})
	t.Run("negative-control-wrong-key", func(t *testing.T) {
		stdout, stderr, code := ask(t, e.badURL, "good", e.f.caA.Intermediate, e.f.caA.Root)
		require.NotEqual(t, 0, code)
		require.NotContains(t, stderr, "Response verify OK")
		require.Contains(t, stdout+stderr, "Response Verify Failure")
	})
}

func TestClientGnuTLS(t *testing.T) {
	bin := integration.LookPath(t, "ocsptool", "install it with apt-get install gnutls-bin")
	e := newClientEnv(t)
	// ocsptool --ask verifies the response against the issuer (directly,
	// or through a delegated responder certificate the issuer signed). It
	// exits 0 when verification succeeds, whatever the status, and prints
	// "Verifying OCSP Response: Success." only then.
	ask := func(t *testing.T, url, name string, issuer *x509.Certificate) (string, int) {
		t.Helper()
		stdout, stderr, code := run(t, bin, "--ask="+url, "--load-issuer", e.pemOf(issuer), "--load-cert", e.path(name, "pem"))
		return stdout + stderr, code
	}
	for _, c := range e.f.clientCases() {
		t.Run(c.name, func(t *testing.T) {
			out, code := ask(t, e.url, c.name, c.issuer)
			if c.want == "unauthorized" {
				require.NotEqual(t, 0, code)
				require.Contains(t, out, "Response Status: unauthorized")
				require.NotContains(t, out, "Verifying OCSP Response: Success")
				return
			}
			require.Equal(t, 0, code)
			require.Contains(t, out, "Verifying OCSP Response: Success.")
			require.Contains(t, out, "Serial Number: ")
			require.Contains(t, out, ocspstate.SerialHex(c.cert.SerialNumber)+"\n")
			require.Contains(t, out, "Certificate Status: "+c.want+"\n")
		})
	}
	t.Run("negative-control-wrong-key", func(t *testing.T) {
		out, code := ask(t, e.badURL, "good", e.f.caA.Intermediate)
		require.NotEqual(t, 0, code)
		require.NotContains(t, out, "Verifying OCSP Response: Success")
		require.Contains(t, out, "Verifying OCSP Response: Failure")
	})
}

func TestClientNSS(t *testing.T) {
	bin := integration.LookPath(t, "ocspclnt", "install it with apt-get install libnss3-tools")
	certutil := integration.LookPath(t, "certutil", "install it with apt-get install libnss3-tools")
	e := newClientEnv(t)
	// An NSS database trusting both roots; the intermediates are there
	// for NSS to find the signer of issuer-signed responses by name.
	db := "sql:" + filepath.Join(e.dir, "nssdb")
	require.NoError(t, os.Mkdir(filepath.Join(e.dir, "nssdb"), 0o700))
	certutilRun := func(args ...string) {
		t.Helper()
		_, _, code := run(t, certutil, args...)
		require.Equal(t, 0, code)
	}
	certutilRun("-N", "-d", db, "--empty-password")
	for _, imp := range []struct{ nick, trust, file string }{
		{"rootA", "C,,", "rootA"}, {"interA", ",,", "interA"}, {"rootB", "C,,", "rootB"}, {"interB", ",,", "interB"},
	} {
		certutilRun("-A", "-d", db, "-n", imp.nick, "-t", imp.trust, "-i", e.path(imp.file, "der"))
	}
	// ocspclnt exits 0 whatever the outcome (and 254 when it cannot open
	// the database): only its output tells. Its -d must come before the
	// command, and it reads DER (its usage mentions -a for PEM, which its
	// option parser does not accept).
	ask := func(t *testing.T, name string, extra ...string) string {
		t.Helper()
		args := append([]string{"-d", db}, extra...)
		args = append(args, "-S", e.path(name, "der"))
		stdout, stderr, code := run(t, bin, args...)
		require.Equal(t, 0, code, "ocspclnt failed to run")
		return stdout + stderr
	}
	check := func(t *testing.T, c clientCase, out string) {
		t.Helper()
		subject := `Check of certificate "` + e.path(c.name, "der") + `" `
		switch c.want {
		case "good":
			require.Contains(t, out, subject+"succeeded.")
		case "revoked":
			require.Contains(t, out, subject+"failed.")
			require.Contains(t, out, "Peer's Certificate has been revoked.")
		case "unauthorized":
			require.Contains(t, out, subject+"failed.")
			require.Contains(t, out, "The OCSP server has refused this request as unauthorized.")
		}
	}
	// With no default responder, NSS follows each certificate's AIA (the
	// fixture's loopback URL) and sends GET first.
	t.Run("aia", func(t *testing.T) {
		for _, c := range e.f.clientCases() {
			t.Run(c.name, func(t *testing.T) { check(t, c, ask(t, c.name)) })
		}
		require.True(t, e.sawMethod(http.MethodGet), "NSS never sent GET")
	})
	// With a default responder (-l, -t naming the issuer), NSS adds a
	// service locator extension, which makes the request large enough to
	// be POSTed.
	t.Run("default-responder", func(t *testing.T) {
		for _, c := range e.f.clientCases() {
			t.Run(c.name, func(t *testing.T) {
				nick := "interA"
				if c.issuer == e.f.caB.Intermediate {
					nick = "interB"
				}
				check(t, c, ask(t, c.name, "-l", e.url, "-t", nick))
			})
		}
		require.True(t, e.sawMethod(http.MethodPost), "NSS never sent POST")
	})
	t.Run("negative-control-wrong-key", func(t *testing.T) {
		out := ask(t, "good", "-l", e.badURL, "-t", "interA")
		require.NotContains(t, out, "succeeded")
		require.Contains(t, out, "OCSP response has an invalid signature.")
	})
}
