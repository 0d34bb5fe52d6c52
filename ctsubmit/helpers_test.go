package ctsubmit_test

import (
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
)

const day = 24 * time.Hour

// inProcess makes unstarted test logs, one per Options, and an HTTP
// client that reaches them without a network (for testing/synctest).
func inProcess(t testing.TB, opts ...ctlogtest.Options) ([]*ctlogtest.Log, []*ctsubmit.Log, *http.Client) {
	t.Helper()
	var (
		tl   []*ctlogtest.Log
		logs []*ctsubmit.Log
	)
	for _, o := range opts {
		l, err := ctlogtest.NewUnstarted(o)
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		tl = append(tl, l)
		logs = append(logs, l.Log())
	}
	return tl, logs, &http.Client{Transport: ctlogtest.Transport(tl...)}
}

// loopback starts test logs on loopback ports, one per Options.
func loopback(t testing.TB, opts ...ctlogtest.Options) ([]*ctlogtest.Log, []*ctsubmit.Log) {
	t.Helper()
	var (
		tl   []*ctlogtest.Log
		logs []*ctsubmit.Log
	)
	for _, o := range opts {
		l := ctlogtest.New(t, o)
		tl = append(tl, l)
		logs = append(logs, l.Log())
	}
	return tl, logs
}

// named returns Options for logs with these names (each its own operator)
// and otherwise the same settings as base.
func named(base ctlogtest.Options, names ...string) []ctlogtest.Options {
	var out []ctlogtest.Options
	for _, n := range names {
		o := base
		o.Name = n
		out = append(out, o)
	}
	return out
}

// precert issues a precertificate valid for lifetime from a fresh ECDSA
// hierarchy (made under the current clock: the fake one in a bubble).
func precert(t testing.TB, lifetime time.Duration, dnsNames ...string) *ctlogtest.Precert {
	t.Helper()
	ca, err := testpki.New(testpki.ECDSAP256)
	require.NoError(t, err)
	p, err := ctlogtest.NewPrecert(ca, lifetime, dnsNames...)
	require.NoError(t, err)
	return p
}

func newSubmitter(t testing.TB, cfg ctsubmit.Config) *ctsubmit.Submitter {
	t.Helper()
	s, err := ctsubmit.New(cfg)
	require.NoError(t, err)
	return s
}

// requireValid checks what Submit promises of every SCT it returns.
func requireValid(t testing.TB, p *ctlogtest.Precert, scts []ctsubmit.SCT) {
	t.Helper()
	seen := map[[32]byte]bool{}
	for _, s := range scts {
		require.NoError(t, ctsubmit.VerifySCT(s.Log, p.Chain, s.Parsed))
		id := s.Log.ID()
		require.False(t, seen[id], "two SCTs from log %s", s.Log.Name)
		seen[id] = true
		parsed, err := ctsubmit.ParseSCTList(mustExt(t, [][]byte{s.Raw}).Value)
		require.NoError(t, err)
		require.Equal(t, [][]byte{s.Raw}, parsed)
	}
}

func raws(scts []ctsubmit.SCT) [][]byte {
	var out [][]byte
	for _, s := range scts {
		out = append(out, s.Raw)
	}
	return out
}

func mustExt(t testing.TB, raws [][]byte) pkix.Extension {
	t.Helper()
	ext, err := ctsubmit.SCTListExtension(raws)
	require.NoError(t, err)
	return ext
}

// logError returns the cause listed for the log named name.
func logError(t testing.TB, e *ctsubmit.Error, name string) *ctsubmit.LogError {
	t.Helper()
	for _, le := range e.Logs {
		if le.Log.Name == name {
			return le
		}
	}
	t.Fatalf("no cause listed for log %q in %v", name, e)
	return nil
}

func names(scts []ctsubmit.SCT) []string {
	var out []string
	for _, s := range scts {
		out = append(out, s.Log.Name)
	}
	return out
}

// requireNoCertificate fails if out, what a logger wrote, holds any
// certificate of chain in a form a log line could carry it: base64 (PEM's
// first line is the base64 of the first 48 bytes), hex, slog's quoted
// text form of a []byte, or fmt's decimal form of a [][]byte. Invariant
// I1: no log line contains a certificate.
func requireNoCertificate(t testing.TB, out string, chain [][]byte) {
	t.Helper()
	for i, der := range chain {
		head := der[:48]
		quoted := strconv.Quote(string(der))
		decimal := fmt.Sprint(head)
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(head),
			hex.EncodeToString(head),
			quoted[1 : len(quoted)-1],
			decimal[1 : len(decimal)-1],
		} {
			require.NotContains(t, out, enc, "certificate %d of the chain is in the log", i)
		}
	}
}
