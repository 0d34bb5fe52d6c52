// Package ctlogtest runs in-process RFC 6962 CT logs for tests, benchmarks
// and the demo: each [Log] answers add-pre-chain (and add-chain) with a
// real SCT signed by its own ECDSA P-256 key, records every submission,
// and can be switched into the failure modes a CA meets in production —
// rejection, rate limiting, unavailability, hanging, garbage, SCTs with a
// bad signature or another log's ID, and delay.
//
// A Log serves HTTP on a loopback port ([Start], or [New] in a test), or
// without any listener through [Transport], for tests under
// testing/synctest where the network may not be used. It keeps no tree:
// it issues SCTs and nothing else of RFC 6962 (no get-sth, no proofs).
//
// Nothing here is fit for production.
package ctlogtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctenc"
)

// Mode is how a Log answers submissions.
type Mode int32

// The modes. Delay ([Log.SetDelay]) applies before any of them.
const (
	// Accept answers 200 with a valid SCT.
	Accept Mode = iota
	// Reject answers 400 with a short text body, as a log refusing a
	// chain does.
	Reject
	// RateLimit answers 429 with Retry-After ([Options.RetryAfter]).
	RateLimit
	// Unavailable answers 503 without Retry-After.
	Unavailable
	// Hang never answers: the handler waits until the client gives up
	// (its request context ends), or answers 503 when the Log is closed.
	Hang
	// Garbage answers 200 with a body that is not JSON.
	Garbage
	// BadSignature answers 200 with a well-formed SCT carrying the log's
	// ID whose signature, a valid ECDSA signature, covers another
	// timestamp: it does not verify.
	BadSignature
	// WrongLogID answers 200 with a correctly signed SCT whose LogID is
	// not the log's. The signature verifies (the LogID is not signed):
	// only a LogID check catches it.
	WrongLogID
)

var modeNames = [...]string{
	Accept: "accept", Reject: "reject", RateLimit: "ratelimit", Unavailable: "unavailable",
	Hang: "hang", Garbage: "garbage", BadSignature: "badsig", WrongLogID: "wronglogid",
}

// Modes lists every mode, for tables that cover them all.
var Modes = []Mode{Accept, Reject, RateLimit, Unavailable, Hang, Garbage, BadSignature, WrongLogID}

// String returns the mode's name: accept, reject, ratelimit, unavailable,
// hang, garbage, badsig or wronglogid.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode returns the mode named s, as [Mode.String] names it.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("ctlogtest: unknown mode %q (want one of %s)", s, strings.Join(modeNames[:], ", "))
}

// Options configure a Log. The zero value is a valid configuration.
type Options struct {
	// Name is the log's description. Empty means "ctlogtest".
	Name string
	// Operator is the log's operator. Empty means Name, so that logs
	// with distinct names have distinct operators.
	Operator string
	// Key signs the SCTs. Nil means a fresh P-256 key.
	Key *ecdsa.PrivateKey
	// Addr is where [Start] listens, as for [net.Listen]. Empty means
	// 127.0.0.1:0, a free loopback port.
	Addr string
	// Mode is the initial mode. The zero value is Accept.
	Mode Mode
	// Delay is waited before answering each submission. Zero means none.
	Delay time.Duration
	// RetryAfter is what RateLimit mode asks for, rounded up to whole
	// seconds. Zero means 1 second.
	RetryAfter time.Duration
	// Now is the clock for SCT timestamps. Nil means [time.Now]; a
	// skewed clock makes SCTs a client should refuse.
	Now func() time.Time
	// Tiled marks the [ctsubmit.Log] that [Log.Log] returns as a
	// static-ct-api log. The HTTP interface is the same.
	Tiled bool
	// TemporalStart and TemporalEnd are copied into [Log.Log].
	TemporalStart, TemporalEnd time.Time
}

// Submission is one request a Log received on its add-chain or
// add-pre-chain endpoint.
type Submission struct {
	// Chain is the submitted chain, leaf first, as DER.
	Chain [][]byte
	// Precert is true for add-pre-chain.
	Precert bool
	// Mode is the mode that answered.
	Mode Mode
	// Status is the HTTP status sent, or 0 if the client gave up first
	// (Hang, or during Delay).
	Status int
	// Received is when the request arrived, by the runtime clock.
	Received time.Time
	// Duration is how long the handler took, Delay included.
	Duration time.Duration
}

// Log is a running in-process CT log. Its methods are safe for concurrent
// use.
type Log struct {
	// URL is the log's base URL: http://127.0.0.1:PORT for a started
	// log, http://NAME-N.ctlogtest.invalid for one made by
	// [NewUnstarted].
	URL string

	opts    Options
	key     *ecdsa.PrivateKey
	spki    []byte
	id      [sha256.Size]byte
	mode    atomic.Int32
	delay   atomic.Int64
	pending atomic.Int64
	closed  chan struct{}

	mu          sync.Mutex
	submissions []Submission
	closing     bool
	handlers    sync.WaitGroup

	srv      *http.Server
	serveErr chan error
}

var seq atomic.Int64

// NewUnstarted returns a Log that does not listen: serve it through
// [Transport], or call its ServeHTTP. Its URL has a unique host under
// the reserved .invalid domain.
func NewUnstarted(opts Options) (*Log, error) {
	if opts.Name == "" {
		opts.Name = "ctlogtest"
	}
	if opts.Operator == "" {
		opts.Operator = opts.Name
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mode < 0 || int(opts.Mode) >= len(modeNames) {
		return nil, fmt.Errorf("ctlogtest: unknown mode %d", opts.Mode)
	}
	key := opts.Key
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("ctlogtest: generating key: %w", err)
		}
	}
	if key.Curve != elliptic.P256() {
		return nil, errors.New("ctlogtest: Key must be on P-256")
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ctlogtest: encoding key: %w", err)
	}
	l := &Log{
		URL:    fmt.Sprintf("http://%s-%d.ctlogtest.invalid", hostLabel(opts.Name), seq.Add(1)),
		opts:   opts,
		key:    key,
		spki:   spki,
		id:     sha256.Sum256(spki),
		closed: make(chan struct{}),
	}
	l.mode.Store(int32(opts.Mode))
	l.delay.Store(int64(opts.Delay))
	return l, nil
}

// Start returns a Log serving HTTP on opts.Addr (a free loopback port by
// default). Close it when done.
func Start(opts Options) (*Log, error) {
	l, err := NewUnstarted(opts)
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ctlogtest: %w", err)
	}
	l.URL = "http://" + ln.Addr().String()
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	l.serveErr = make(chan error, 1)
	go func() { l.serveErr <- l.srv.Serve(ln) }()
	return l, nil
}

// New starts a Log for a test and closes it when the test ends. It fails
// t on error.
func New(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// Close stops the log: hanging and delayed requests are answered 503, the
// listener and connections are closed, and Close returns once every
// handler has returned. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	close(l.closed)
	l.mu.Unlock()
	var err error
	if l.srv != nil {
		// Shutdown lets the released requests' answers reach their
		// clients; Close cuts whatever is left after a while.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err = l.srv.Shutdown(ctx); err != nil {
			err = l.srv.Close()
		}
		cancel()
		if serr := <-l.serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	l.handlers.Wait()
	return err
}

// Log returns a new [ctsubmit.Log] describing this log: its name,
// operator, URL, public key, tiled flag and temporal interval.
func (l *Log) Log() *ctsubmit.Log {
	return &ctsubmit.Log{
		Name:          l.opts.Name,
		Operator:      l.opts.Operator,
		URL:           l.URL,
		Key:           bytes.Clone(l.spki),
		Tiled:         l.opts.Tiled,
		TemporalStart: l.opts.TemporalStart,
		TemporalEnd:   l.opts.TemporalEnd,
	}
}

// Name returns the log's name.
func (l *Log) Name() string { return l.opts.Name }

// PublicKey returns the log's public key as a DER SubjectPublicKeyInfo.
func (l *Log) PublicKey() []byte { return bytes.Clone(l.spki) }

// ID returns the log's ID, the SHA-256 of its public key.
func (l *Log) ID() [sha256.Size]byte { return l.id }

// SetMode changes how the log answers from now on.
func (l *Log) SetMode(m Mode) { l.mode.Store(int32(m)) }

// Mode returns the current mode.
func (l *Log) Mode() Mode { return Mode(l.mode.Load()) }

// SetDelay changes the delay before each answer from now on.
func (l *Log) SetDelay(d time.Duration) { l.delay.Store(int64(d)) }

// Submissions returns a copy of the submissions received so far, oldest
// first.
func (l *Log) Submissions() []Submission {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Submission(nil), l.submissions...)
}

// Pending returns the number of requests being handled now: waiting out
// the delay, hanging, or being answered.
func (l *Log) Pending() int { return int(l.pending.Load()) }

// Reset forgets the submissions received so far.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.submissions = nil
}

// ServeHTTP answers POST /ct/v1/add-pre-chain and /ct/v1/add-chain
// according to the current mode, and 404 or 405 otherwise.
func (l *Log) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		http.Error(w, "ctlogtest: log closed", http.StatusServiceUnavailable)
		return
	}
	l.handlers.Add(1)
	l.pending.Add(1)
	l.mu.Unlock()
	defer l.handlers.Done()
	defer l.pending.Add(-1)

	var precert bool
	switch r.URL.Path {
	case ct.AddPreChainPath:
		precert = true
	case ct.AddChainPath:
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "ctlogtest: POST only", http.StatusMethodNotAllowed)
		return
	}
	sub := Submission{Precert: precert, Received: time.Now(), Mode: l.Mode()}
	defer func() {
		sub.Duration = time.Since(sub.Received)
		l.mu.Lock()
		l.submissions = append(l.submissions, sub)
		l.mu.Unlock()
	}()
	body, err := readBody(r)
	if err != nil {
		return // the client went away
	}
	chain, reqErr := decodeChain(body)
	if reqErr == nil {
		sub.Chain = chain
	}
	if d := time.Duration(l.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-l.closed:
			t.Stop()
			sub.Status = closedAnswer(w)
			return
		}
	}
	sub.Mode = l.Mode()
	sub.Status = l.answer(w, r, sub.Mode, chain, reqErr, precert)
}

// maxBody bounds what is read of a request.
const maxBody = 1 << 20

// readBody reads r's body, at most maxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}

// decodeChain decodes an add-chain request body (RFC 6962 §4.1).
func decodeChain(body []byte) ([][]byte, error) {
	var req ct.AddChainRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	return req.Chain, nil
}

// answer writes the response for mode to a request for chain (reqErr if
// the body did not decode) and returns its status, or 0 if none was
// written.
func (l *Log) answer(w http.ResponseWriter, r *http.Request, mode Mode, chain [][]byte, reqErr error, precert bool) int {
	fail := func(status int, msg string) int {
		http.Error(w, msg, status)
		return status
	}
	switch mode {
	case Reject:
		return fail(http.StatusBadRequest, "ctlogtest: submission rejected (mode reject)")
	case RateLimit:
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(l.opts.RetryAfter.Seconds())), 10))
		return fail(http.StatusTooManyRequests, "ctlogtest: too many requests (mode ratelimit)")
	case Unavailable:
		return fail(http.StatusServiceUnavailable, "ctlogtest: service unavailable (mode unavailable)")
	case Hang:
		select {
		case <-r.Context().Done():
			return 0
		case <-l.closed:
			return closedAnswer(w)
		}
	case Garbage:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1>\x00\xff</body></html>")
		return http.StatusOK
	}
	if reqErr != nil {
		return fail(http.StatusBadRequest, "ctlogtest: request is not JSON: "+reqErr.Error())
	}
	resp, err := l.sign(chain, precert, mode)
	if err != nil {
		return fail(http.StatusBadRequest, "ctlogtest: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}

// sign checks the chain and returns the add-chain response for it.
func (l *Log) sign(chain [][]byte, precert bool, mode Mode) (*ct.AddChainResponse, error) {
	ts := uint64(l.opts.Now().UnixMilli())
	leaf, err := leafFor(chain, precert, ts)
	if err != nil {
		return nil, err
	}
	signed := ts
	if mode == BadSignature {
		signed++ // a real signature, over another timestamp
	}
	entry, err := ctenc.LeafEntry(leaf)
	if err != nil {
		return nil, err
	}
	// The RFC 6962 §3.2 signature input, SHA-256, ECDSA: what
	// certificate-transparency-go's SerializeSCTSignatureInput and
	// tls.CreateSignature make (TestSCTVerifiesWithCTGo checks it).
	sig, err := ctenc.SignECDSA(rand.Reader, l.key, entry, signed, nil)
	if err != nil {
		return nil, err
	}
	id := l.id
	if mode == WrongLogID {
		id = sha256.Sum256(append([]byte("ctlogtest: not this log's key: "), l.spki...))
	}
	return &ct.AddChainResponse{SCTVersion: ct.V1, ID: id[:], Timestamp: ts, Signature: sig}, nil
}

// closedAnswer releases a request held by Hang or Delay when the log
// closes.
func closedAnswer(w http.ResponseWriter) int {
	http.Error(w, "ctlogtest: log closed", http.StatusServiceUnavailable)
	return http.StatusServiceUnavailable
}

// Transport returns an [http.RoundTripper] that hands each request to the
// log whose URL host matches, in the calling goroutine, without any
// network: what tests under testing/synctest need. Requests for other
// hosts fail. A hanging or delayed log returns when the request's context
// ends, with the context's error, as a real transport does.
func Transport(logs ...*Log) http.RoundTripper {
	t := transport{}
	for _, l := range logs {
		host := strings.TrimPrefix(l.URL, "http://")
		t[host] = l
	}
	return t
}

type transport map[string]*Log

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := t[req.URL.Host]
	if l == nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("ctlogtest: no log at %q", req.URL.Host)
	}
	rec := httptest.NewRecorder()
	// A shallow copy: the handler only reads the request.
	sreq := req.WithContext(req.Context())
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	l.ServeHTTP(rec, sreq)
	_ = sreq.Body.Close()
	if err := req.Context().Err(); err != nil {
		return nil, context.Cause(req.Context())
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// hostLabel makes a DNS label out of a log name.
func hostLabel(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "log"
	}
	return s
}

// leafFor builds the Merkle tree leaf for a submitted chain: for a
// precertificate, with ctsubmit.PrecertLeaf, which checks the chain as
// Submit does and is much cheaper than certificate-transparency-go's
// reflection-based parser (ctsubmit's tests and TestLeafMatchesCTGo keep
// them equal); for a certificate, with certificate-transparency-go.
func leafFor(chain [][]byte, precert bool, ts uint64) (*ct.MerkleTreeLeaf, error) {
	if len(chain) == 0 {
		return nil, errors.New("empty chain")
	}
	var leaf *ct.MerkleTreeLeaf
	if precert {
		var err error
		if leaf, err = ctsubmit.PrecertLeaf(chain); err != nil {
			return nil, fmt.Errorf("add-pre-chain: %w", err)
		}
	} else {
		cert, err := x509.ParseCertificate(chain[0])
		if err != nil {
			return nil, fmt.Errorf("chain[0]: %v", err)
		}
		if slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(ctsubmit.OIDPoison) }) {
			return nil, errors.New("add-chain: chain[0] is a precertificate")
		}
		raw := make([]ct.ASN1Cert, len(chain))
		for i, c := range chain {
			raw[i] = ct.ASN1Cert{Data: c}
		}
		if leaf, err = ct.MerkleTreeLeafFromRawChain(raw, ct.X509LogEntryType, ts); err != nil {
			return nil, err
		}
	}
	leaf.TimestampedEntry.Timestamp = ts
	return leaf, nil
}
