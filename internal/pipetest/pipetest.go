// Package pipetest wires a complete issuance environment for tests and
// benchmarks: a throwaway CA, a bbolt store on a temporary file, in-process
// CT logs, a CT submitter that reaches them without sockets, a response
// signer and pipelines, all on one settable clock.
package pipetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/storetest"
)

// CountingSigner counts the signatures a key makes.
type CountingSigner struct {
	crypto.Signer
	n atomic.Int64
}

// Sign implements crypto.Signer.
func (c *CountingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(rand, digest, opts)
}

// Count returns how many signatures were made.
func (c *CountingSigner) Count() int64 { return c.n.Load() }

// Options configure an Env. The zero value gives ECDSA P-256, two
// accepting logs of distinct operators, and a store in t.TempDir().
type Options struct {
	KeyType testpki.KeyType
	// Logs is the number of CT logs. Zero means 2.
	Logs int
	// Modes are the logs' initial modes, by index; missing ones accept.
	Modes []ctlogtest.Mode
	// Path is the bbolt file. Empty means a file in t.TempDir().
	Path string
	// Clock is shared by everything. Nil means a clock at now.
	Clock *storetest.Clock
	// CA is the hierarchy. Nil means testpki.Shared(KeyType).
	CA *testpki.CA
	// LogKeys, if set, are the logs' keys (to keep log IDs across
	// processes).
	LogKeys []*ecdsa.PrivateKey
	// CTTimeout bounds each Submit. Zero means 5 seconds; each log gets
	// at most this too.
	CTTimeout time.Duration
}

// Env is a wired issuance environment.
type Env struct {
	T      testing.TB
	CA     *testpki.CA
	Clock  *storetest.Clock
	Path   string
	Store  *ocspstate.BoltStore
	Signer *ocspstate.ResponseSigner
	Logs   []*ctlogtest.Log
	CT     *ctsubmit.Submitter
	Key    *CountingSigner
	Ctx    context.Context

	mu           sync.Mutex
	beforeSubmit func(serial *big.Int)
}

// New builds an Env; everything is closed when t ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Logs == 0 {
		o.Logs = 2
	}
	if o.Clock == nil {
		o.Clock = storetest.NewClock(time.Now().UTC().Truncate(time.Second))
	}
	if o.CA == nil {
		o.CA = testpki.Shared(t, o.KeyType)
	}
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "ocsp.db")
	}
	e := &Env{T: t, CA: o.CA, Clock: o.Clock, Path: o.Path, Ctx: context.Background()}
	e.Key = &CountingSigner{Signer: e.CA.IntermediateKey}
	e.Store = e.OpenStore()
	t.Cleanup(func() { e.Store.Close() })
	var err error
	e.Signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.CA.Intermediate, Key: e.CA.IntermediateKey, Now: e.Clock.Now})
	require.NoError(t, err)

	var logs []*ctsubmit.Log
	for i := 0; i < o.Logs; i++ {
		opts := ctlogtest.Options{Name: "log-" + string(rune('a'+i)), Now: e.Clock.Now}
		if i < len(o.Modes) {
			opts.Mode = o.Modes[i]
		}
		if i < len(o.LogKeys) {
			opts.Key = o.LogKeys[i]
		}
		l := ctlogtest.New(t, opts)
		e.Logs = append(e.Logs, l)
		logs = append(logs, l.Log())
	}
	if o.CTTimeout == 0 {
		o.CTTimeout = 5 * time.Second
	}
	e.CT, err = ctsubmit.New(ctsubmit.Config{
		Logs:           logs,
		Now:            e.Clock.Now,
		Stagger:        50 * time.Millisecond,
		PerLogTimeout:  min(2*time.Second, o.CTTimeout),
		OverallTimeout: o.CTTimeout,
		HTTPClient:     &http.Client{Transport: e.watch(ctlogtest.Transport(e.Logs...))},
	})
	require.NoError(t, err)
	return e
}

// OpenStore opens the Env's bbolt file with the Env's issuer and clock.
func (e *Env) OpenStore() *ocspstate.BoltStore {
	e.T.Helper()
	s, err := ocspstate.Open(e.Path, ocspstate.Options{Issuers: []*x509.Certificate{e.CA.Intermediate}, Now: e.Clock.Now})
	require.NoError(e.T, err)
	return s
}

// BeforeSubmit sets a hook that runs for every CT submission before the log
// answers, with the serial of the submitted precertificate. Nil removes it.
func (e *Env) BeforeSubmit(hook func(serial *big.Int)) {
	e.mu.Lock()
	e.beforeSubmit = hook
	e.mu.Unlock()
}

// RequireCommittedBeforeCT asserts invariant I1 at the moment each
// precertificate reaches a log: its record is durable in a published state
// with OCSP enabled and a stored response that validates. It returns a
// counter of the submissions checked.
func (e *Env) RequireCommittedBeforeCT() *atomic.Int64 {
	var checked atomic.Int64
	e.BeforeSubmit(func(serial *big.Int) {
		CheckCommitted(e.T, e.Store, e.CA.Intermediate, serial, e.Clock.Now())
		checked.Add(1)
	})
	return &checked
}

// CheckCommitted reports through t any breach of invariant I1 for serial,
// whose precertificate is about to reach a CT log at now: its record must
// be durable in store, in a published state with OCSP enabled and a
// stored response that validates against issuer.
func CheckCommitted(t testing.TB, store ocspstate.Store, issuer *x509.Certificate, serial *big.Int, now time.Time) {
	t.Helper()
	r, err := store.Get(context.Background(), ocspstate.IssuerIDOf(issuer), serial)
	if err != nil {
		t.Errorf("I1: serial %x submitted to CT before any record exists: %v", serial, err)
		return
	}
	if !r.State.Published() || !r.OCSP.Enabled {
		t.Errorf("I1: serial %x submitted to CT in state %s, OCSP enabled %v", serial, r.State, r.OCSP.Enabled)
	}
	if _, err := ocspstate.Validate(r.OCSP.ResponseDER, issuer, ocspstate.ExpectRecord(r, now, time.Minute)); err != nil {
		t.Errorf("I1: serial %x submitted to CT without a valid stored response: %v", serial, err)
	}
}

func (e *Env) watch(rt http.RoundTripper) http.RoundTripper {
	return WatchSubmissions(rt, func(serial *big.Int) {
		e.mu.Lock()
		hook := e.beforeSubmit
		e.mu.Unlock()
		if hook != nil {
			hook(serial)
		}
	})
}

// WatchSubmissions wraps rt so that hook sees the serial of the
// certificate every CT submission (a POST to add-chain or add-pre-chain)
// carries, before the request leaves. A submission whose certificate
// cannot be read fails with an error, rather than pass unseen; other
// requests pass untouched.
func WatchSubmissions(rt http.RoundTripper, hook func(serial *big.Int)) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		path := req.URL.Path
		if req.Method != http.MethodPost || !strings.HasSuffix(path, "/add-pre-chain") && !strings.HasSuffix(path, "/add-chain") {
			return rt.RoundTrip(req)
		}
		if req.Body == nil {
			return nil, fmt.Errorf("pipetest: CT submission to %s without a body", path)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		var sub struct {
			Chain [][]byte `json:"chain"`
		}
		if err := json.Unmarshal(body, &sub); err != nil || len(sub.Chain) == 0 {
			return nil, fmt.Errorf("pipetest: CT submission to %s without a chain to watch: %v", path, err)
		}
		c, err := x509.ParseCertificate(sub.Chain[0])
		if err != nil {
			return nil, fmt.Errorf("pipetest: CT submission to %s: chain[0]: %w", path, err)
		}
		hook(c.SerialNumber)
		req.Body = io.NopCloser(bytes.NewReader(body))
		return rt.RoundTrip(req)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Config returns a pipeline configuration on the Env, with the counting
// signer as issuer key.
func (e *Env) Config() issuance.Config {
	return issuance.Config{
		Store:     e.Store,
		Issuer:    e.CA.Intermediate,
		IssuerKey: e.Key,
		Chain:     []*x509.Certificate{e.CA.Intermediate, e.CA.Root},
		Responses: e.Signer,
		CT:        e.CT,
		Now:       e.Clock.Now,
	}
}

// Pipeline returns a pipeline on the Env, after applying mut to its config.
func (e *Env) Pipeline(mut ...func(*issuance.Config)) *issuance.Pipeline {
	e.T.Helper()
	cfg := e.Config()
	for _, m := range mut {
		m(&cfg)
	}
	p, err := issuance.New(cfg)
	require.NoError(e.T, err)
	return p
}

// Request returns a 90-day DV request for a fresh key.
func (e *Env) Request() *issuance.Request {
	e.T.Helper()
	key, err := testpki.NewKey(e.CA.KeyType)
	require.NoError(e.T, err)
	return RequestFor(e.CA, key.Public(), e.Clock.Now())
}

// RequestFor returns a 90-day DV request for pub, starting an hour before
// now.
func RequestFor(ca *testpki.CA, pub crypto.PublicKey, now time.Time) *issuance.Request {
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com", "example.com")
	return &issuance.Request{
		PublicKey:             pub,
		Subject:               tmpl.Subject,
		DNSNames:              tmpl.DNSNames,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(-time.Hour).Add(90*24*time.Hour - time.Second),
		KeyUsage:              tmpl.KeyUsage,
		ExtKeyUsage:           tmpl.ExtKeyUsage,
		Policies:              tmpl.Policies,
		OCSPServer:            tmpl.OCSPServer,
		IssuingCertificateURL: tmpl.IssuingCertificateURL,
		CRLDistributionPoints: tmpl.CRLDistributionPoints,
	}
}

// IssuerID is the ID of the Env's issuer.
func (e *Env) IssuerID() ocspstate.IssuerID { return ocspstate.IssuerIDOf(e.CA.Intermediate) }

// Record returns the stored record for serial.
func (e *Env) Record(serial *big.Int) *ocspstate.Record {
	e.T.Helper()
	r, err := e.Store.Get(e.Ctx, e.IssuerID(), serial)
	require.NoError(e.T, err)
	return r
}

// Submissions counts the CT submissions all logs received.
func (e *Env) Submissions() int {
	n := 0
	for _, l := range e.Logs {
		n += len(l.Submissions())
	}
	return n
}

// SetModes puts every log in mode m.
func (e *Env) SetModes(m ctlogtest.Mode) {
	for _, l := range e.Logs {
		l.SetMode(m)
	}
}

// CTLogs returns the logs as ctsubmit sees them.
func (e *Env) CTLogs() []*ctsubmit.Log {
	out := make([]*ctsubmit.Log, len(e.Logs))
	for i, l := range e.Logs {
		out[i] = l.Log()
	}
	return out
}

// RequireStatus checks that serial's stored response validates now with
// status want, and returns the record.
func (e *Env) RequireStatus(serial *big.Int, want ocspstate.Status) *ocspstate.Record {
	e.T.Helper()
	r := e.Record(serial)
	require.True(e.T, r.OCSP.Enabled)
	info, err := ocspstate.Validate(r.OCSP.ResponseDER, e.CA.Intermediate, ocspstate.ExpectRecord(r, e.Clock.Now(), time.Minute))
	require.NoError(e.T, err)
	require.Equal(e.T, want, info.Status)
	return r
}

// RequireCTFailed asserts that err is what Issue returns when every log
// rejected the precertificate: ErrCTFailed at the CT step, naming the
// serial, with a *ctsubmit.Error listing n logs, each rejected. It returns
// both typed errors for further checks.
func RequireCTFailed(t testing.TB, err error, n int) (*issuance.Error, *ctsubmit.Error) {
	t.Helper()
	require.ErrorIs(t, err, issuance.ErrCTFailed)
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	require.Equal(t, issuance.StepCT, ie.Step)
	require.NotNil(t, ie.Serial)
	var ce *ctsubmit.Error
	require.ErrorAs(t, err, &ce, "per-log causes reach the caller")
	require.Len(t, ce.Logs, n, "%v", err)
	for _, le := range ce.Logs {
		require.Equal(t, ctsubmit.KindRejected, le.Kind, "%v", le)
	}
	return ie, ce
}
