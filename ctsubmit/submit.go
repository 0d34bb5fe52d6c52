package ctsubmit

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the zero values of [Config].
const (
	DefaultStagger        = 2 * time.Second
	DefaultPerLogTimeout  = 10 * time.Second
	DefaultOverallTimeout = 30 * time.Second
	DefaultMaxSkew        = 5 * time.Minute
)

// Config configures a [Submitter]. Only Logs is required.
type Config struct {
	// Logs are the logs to submit to and whose SCTs are accepted, in
	// order of preference (ties in operator diversity go to the earlier
	// log). Required: at least one, each valid (see [Log]), with unique
	// names and keys. The Submitter keeps the pointers: do not modify
	// the logs afterwards.
	Logs []*Log
	// Policy decides when the SCTs collected are enough. Nil means
	// [DefaultPolicy]: Chrome's and Apple's policies together.
	Policy Policy
	// Stagger is how long Submit waits, while the policy is unmet,
	// before starting one more submission beyond those it needs. Zero
	// means [DefaultStagger]; negative is an error.
	Stagger time.Duration
	// PerLogTimeout bounds each log's submission, retries included.
	// Zero means [DefaultPerLogTimeout], or OverallTimeout if that is
	// shorter; negative, or longer than OverallTimeout, is an error.
	PerLogTimeout time.Duration
	// OverallTimeout bounds a whole Submit call, whatever the caller's
	// context says. Zero means [DefaultOverallTimeout]; negative is an
	// error.
	OverallTimeout time.Duration
	// MaxSkew is how far an SCT's timestamp may lie in the future of
	// Now, and before the precertificate's NotBefore (or before Now, if
	// NotBefore is later). Zero means [DefaultMaxSkew]; negative is an
	// error.
	MaxSkew time.Duration
	// Now is the clock against which SCT timestamps, log retirement and
	// the policy are judged. Nil means [time.Now]. Deadlines always use
	// the runtime clock.
	Now func() time.Time
	// HTTPClient sends the submissions. Nil means a client of its own
	// that does not follow redirects, on a clone of
	// [http.DefaultTransport]. A client's Timeout, if set, should not be
	// shorter than PerLogTimeout: Submit sets deadlines through the
	// request context.
	HTTPClient *http.Client
	// Logger receives one line per log submission (debug when it
	// succeeds or was not needed, warn when it fails) and one per
	// failed Submit. Certificates are never logged. Nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics precert_ctsubmit_submissions_total
	// {log, outcome}, precert_ctsubmit_submission_duration_seconds {log,
	// outcome} and precert_ctsubmit_submit_duration_seconds {result}.
	// Submitters sharing a registry share the collectors. Nil means no
	// metrics.
	Registerer prometheus.Registerer
}

// Submitter submits precertificates to CT logs until the SCTs it has
// verified satisfy its policy. It is safe for concurrent use.
type Submitter struct {
	logs    []*logEntry
	order   map[*Log]int // index in logs, to return SCTs in that order
	policy  Policy
	stagger time.Duration
	perLog  time.Duration
	overall time.Duration
	maxSkew time.Duration
	now     func() time.Time
	client  *http.Client
	logger  *slog.Logger
	metrics *metrics
}

// logEntry is a configured log with what Submit needs precomputed.
type logEntry struct {
	log *Log
	id  [32]byte
	pub crypto.PublicKey
	url string
}

// New validates cfg, applies its defaults and returns a Submitter. Each
// error names the field at fault.
func New(cfg Config) (*Submitter, error) {
	s := &Submitter{
		policy:  cfg.Policy,
		stagger: cfg.Stagger,
		perLog:  cfg.PerLogTimeout,
		overall: cfg.OverallTimeout,
		maxSkew: cfg.MaxSkew,
		now:     cfg.Now,
		client:  cfg.HTTPClient,
		logger:  cfg.Logger,
		order:   make(map[*Log]int, len(cfg.Logs)),
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("ctsubmit: Config.Logs is empty: at least one log is required")
	}
	names := map[string]int{}
	ids := map[[32]byte]int{}
	for i, l := range cfg.Logs {
		if l == nil {
			return nil, fmt.Errorf("ctsubmit: Config.Logs[%d] is nil", i)
		}
		pub, err := l.check()
		if err != nil {
			return nil, fmt.Errorf("ctsubmit: Config.Logs[%d]: %w", i, err)
		}
		if j, dup := names[l.Name]; dup {
			return nil, fmt.Errorf("ctsubmit: Config.Logs[%d] and [%d] are both named %q", j, i, l.Name)
		}
		names[l.Name] = i
		id := l.ID()
		if j, dup := ids[id]; dup {
			return nil, fmt.Errorf("ctsubmit: Config.Logs[%d] (%q) and [%d] (%q) have the same key", j, cfg.Logs[j].Name, i, l.Name)
		}
		ids[id] = i
		s.order[l] = i
		s.logs = append(s.logs, &logEntry{log: l, id: id, pub: pub, url: l.submitURL()})
	}
	if s.policy == nil {
		s.policy = DefaultPolicy()
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Stagger", s.stagger}, {"PerLogTimeout", s.perLog}, {"OverallTimeout", s.overall}, {"MaxSkew", s.maxSkew}} {
		if d.v < 0 {
			return nil, fmt.Errorf("ctsubmit: Config.%s is negative (%s)", d.name, d.v)
		}
	}
	if s.stagger == 0 {
		s.stagger = DefaultStagger
	}
	if s.overall == 0 {
		s.overall = DefaultOverallTimeout
	}
	if s.perLog == 0 {
		s.perLog = min(DefaultPerLogTimeout, s.overall)
	}
	if s.maxSkew == 0 {
		s.maxSkew = DefaultMaxSkew
	}
	if s.perLog > s.overall {
		return nil, fmt.Errorf("ctsubmit: Config.PerLogTimeout (%s) exceeds Config.OverallTimeout (%s)", s.perLog, s.overall)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		var rt http.RoundTripper = http.DefaultTransport
		if t, ok := rt.(*http.Transport); ok {
			rt = t.Clone()
		}
		s.client = &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: Config.Registerer: %w", err)
	}
	s.metrics = m
	return s, nil
}

// Submit submits chain — the DER precertificate, then its issuer chain
// up to a root the logs accept — to the configured logs, and returns SCTs
// that satisfy the policy for a certificate valid from the
// precertificate's NotBefore to notAfter, which must equal the
// precertificate's NotAfter. Each SCT returned has been verified: its
// LogID is its log's, its signature covers the precertificate, its
// timestamp is within MaxSkew (see [Config.MaxSkew]), and no two come
// from one log. They are returned in [Config.Logs] order.
//
// Eligible logs are those not retired now whose temporal interval holds
// notAfter. Submit starts as many submissions as the policy needs
// ([Policy.Needed]), favouring operators not yet covered, then one more
// every [Config.Stagger] while the policy is unmet; a failed submission
// is replaced at once. As soon as the verified SCTs satisfy the policy,
// the other submissions are cancelled. Each log gets at most
// [Config.PerLogTimeout], with up to 3 attempts when it answers 408, 429
// or 503 (honouring Retry-After if it fits) or the connection fails; the
// whole call gets at most [Config.OverallTimeout]. No goroutine started
// by Submit outlives it.
//
// Of chain[0], Submit checks the DER structure of the certificate and its
// TBSCertificate, the poison extension (critical, NULL) and the validity;
// it does not run crypto/x509's full parse, which the CA that signed the
// precertificate has, and logs check what they accept. chain[1] is parsed
// with crypto/x509.
//
// If the policy is not met, the error is an [*Error] listing each log's
// cause; it wraps [ErrUnsatisfiable] when no submission was even worth
// making, [ErrOverallTimeout] on the overall deadline, and the context's
// cause when ctx ends. Any other error means the chain or notAfter is
// unusable, and trying again will not help. Either way the
// precertificate may have reached a log.
func (s *Submitter) Submit(ctx context.Context, chain [][]byte, notAfter time.Time) ([]SCT, error) {
	begin := time.Now()
	scts, err := s.submit(ctx, chain, notAfter)
	s.metrics.submitDone(err == nil, time.Since(begin))
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "ctsubmit: CT submission failed", slog.Any("error", err))
	}
	return scts, err
}

func (s *Submitter) submit(ctx context.Context, chain [][]byte, notAfter time.Time) ([]SCT, error) {
	pc, err := parsePrecertChain(chain)
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: %w", err)
	}
	if !pc.notAfter.Equal(notAfter) {
		return nil, fmt.Errorf("ctsubmit: notAfter %s is not the precertificate's NotAfter %s",
			notAfter.UTC().Format(time.RFC3339), pc.notAfter.UTC().Format(time.RFC3339))
	}
	v := Validity{NotBefore: pc.notBefore, NotAfter: pc.notAfter}
	now := s.now()
	causes := map[*logEntry]*LogError{}
	needed, err := s.policy.Needed(v)
	if err != nil {
		for _, e := range s.logs {
			causes[e] = &LogError{Log: e.log, Kind: KindNotTried, Err: errors.New("the policy cannot be met for this certificate")}
		}
		return nil, s.failure(needed, nil, nil, fmt.Errorf("%w: %w", ErrUnsatisfiable, err), causes)
	}
	if needed < 1 {
		return nil, fmt.Errorf("ctsubmit: the policy's Needed returned %d, it must be at least 1", needed)
	}

	var cands []*logEntry
	for _, e := range s.logs {
		switch {
		case e.log.RetiredAt(now):
			causes[e] = &LogError{Log: e.log, Kind: KindNotTried, Err: fmt.Errorf("retired since %s", e.log.Retired.UTC().Format(time.RFC3339))}
		case !e.log.Accepts(notAfter):
			causes[e] = &LogError{Log: e.log, Kind: KindNotTried, Err: fmt.Errorf("its temporal interval [%s, %s) excludes NotAfter %s",
				fmtTime(e.log.TemporalStart), fmtTime(e.log.TemporalEnd), fmtTime(notAfter))}
		default:
			cands = append(cands, e)
		}
	}
	// Would SCTs from every eligible log do? If not, submit nothing.
	hypothetical := make([]SCT, len(cands))
	for i, e := range cands {
		hypothetical[i] = SCT{Log: e.log, Parsed: &ct.SignedCertificateTimestamp{Timestamp: uint64(now.UnixMilli())}}
	}
	if err := quickCheck(s.policy, v, hypothetical, now, false); err != nil {
		err = explained(err, s.policy, v, hypothetical, now)
		for _, e := range cands {
			causes[e] = &LogError{Log: e.log, Kind: KindNotTried, Err: errors.New("not submitted: SCTs from every eligible log would not meet the policy")}
		}
		return nil, s.failure(needed, nil, nil, fmt.Errorf("%w: %w", ErrUnsatisfiable, err), causes)
	}
	return s.race(ctx, pc, v, needed, cands, addChainBody(chain), causes)
}

// race runs the staggered submissions described on Submit.
func (s *Submitter) race(ctx context.Context, pc *precertChain, v Validity, needed int, cands []*logEntry, body []byte, causes map[*logEntry]*LogError) ([]SCT, error) {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, s.overall, ErrOverallTimeout)
	defer cancelTimeout()

	type outcome struct {
		e   *logEntry
		sct *SCT
		err *LogError
	}
	// Buffered to the number of candidates: a submission finishing after
	// Submit stopped listening never blocks.
	results := make(chan outcome, len(cands))
	var wg sync.WaitGroup
	started := make([]bool, len(cands))
	inflight := 0
	// Logs in flight or whose SCT was collected, per operator, and how
	// many of them are RFC 6962 (non-tiled) logs: the next log started
	// is one that adds an operator, and an RFC 6962 log if none is there.
	perOperator := map[string]int{}
	rfc6962 := 0
	load := func(e *logEntry, d int) {
		perOperator[e.log.Operator] += d
		if !e.log.Tiled {
			rfc6962 += d
		}
	}
	rank := func(e *logEntry) (int, int) {
		penalty := 0
		if e.log.Tiled && rfc6962 == 0 {
			penalty = 1
		}
		return perOperator[e.log.Operator], penalty
	}
	start := func() bool {
		best := -1
		for i, e := range cands {
			if started[i] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			a1, a2 := rank(e)
			b1, b2 := rank(cands[best])
			if a1 < b1 || (a1 == b1 && a2 < b2) {
				best = i
			}
		}
		if best < 0 {
			return false
		}
		started[best] = true
		inflight++
		e := cands[best]
		load(e, +1)
		wg.Go(func() {
			sct, err := s.submitOne(ctx, e, pc, body)
			results <- outcome{e, sct, err}
		})
		return true
	}

	// The policy is checked as SCTs arrive without building its
	// explanation, which only a failure needs (see explained, below).
	var got []SCT
	checkedAt := s.now()
	policyErr := quickCheck(s.policy, v, nil, checkedAt, false)
	timer := time.NewTimer(s.stagger)
	defer timer.Stop()
	var ended error
loop:
	for policyErr != nil {
		// Keep enough in flight to meet Needed if all succeed, and at
		// least one while the policy is unmet.
		for inflight < max(needed-len(got), 1) && start() {
		}
		if inflight == 0 {
			break // every eligible log has answered
		}
		select {
		case o := <-results:
			inflight--
			if o.sct != nil {
				got = append(got, *o.sct)
				checkedAt = s.now()
				policyErr = quickCheck(s.policy, v, got, checkedAt, false)
				continue
			}
			causes[o.e] = o.err
			load(o.e, -1)
		case <-timer.C:
			if start() {
				timer.Reset(s.stagger)
			}
		case <-ctx.Done():
			ended = context.Cause(ctx)
			break loop
		}
	}
	if policyErr == nil {
		stop(errNotNeeded)
	} else {
		stop(ended)
	}
	wg.Wait()
	close(results)
	for o := range results {
		if o.sct == nil {
			causes[o.e] = o.err
			continue
		}
		if policyErr != nil { // a late SCT may still complete the set
			got = append(got, *o.sct)
			checkedAt = s.now()
			policyErr = quickCheck(s.policy, v, got, checkedAt, false)
		}
	}
	if policyErr == nil {
		// Return them in configuration order, not arrival order, so that
		// the same answers embed the same way.
		slices.SortStableFunc(got, func(a, b SCT) int { return s.order[a.Log] - s.order[b.Log] })
		return got, nil
	}
	policyErr = explained(policyErr, s.policy, v, got, checkedAt)
	for i, e := range cands {
		if !started[i] {
			causes[e] = &LogError{Log: e.log, Kind: KindNotTried, Err: fmt.Errorf("not reached before Submit ended: %w", ended)}
		}
	}
	return nil, s.failure(needed, got, policyErr, ended, causes)
}

// failure builds the *Error, listing causes in Config.Logs order.
func (s *Submitter) failure(needed int, got []SCT, policyErr, err error, causes map[*logEntry]*LogError) *Error {
	e := &Error{Needed: needed, Got: len(got), Policy: policyErr, Err: err}
	for _, le := range s.logs {
		if c := causes[le]; c != nil {
			e.Logs = append(e.Logs, c)
		}
	}
	return e
}

// submitOne submits to one log under the per-log deadline, and records
// the outcome in the metrics and the log.
func (s *Submitter) submitOne(ctx context.Context, e *logEntry, pc *precertChain, body []byte) (*SCT, *LogError) {
	begin := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, s.perLog, errPerLogTimeout)
	defer cancel()
	sct, le := s.attempt(ctx, e, pc, body)
	elapsed := time.Since(begin)
	if le == nil {
		s.metrics.logDone(e.log, "ok", elapsed)
		s.logger.LogAttrs(ctx, slog.LevelDebug, "ctsubmit: SCT verified",
			slog.String("log", e.log.Name), slog.Duration("elapsed", elapsed), slog.Time("timestamp", sct.Timestamp()))
		return sct, nil
	}
	s.metrics.logDone(e.log, le.Kind.String(), elapsed)
	level := slog.LevelWarn
	if le.Kind == KindCancelled && errors.Is(le.Err, errNotNeeded) {
		level = slog.LevelDebug
	}
	s.logger.LogAttrs(ctx, level, "ctsubmit: log gave no SCT",
		slog.String("log", e.log.Name), slog.String("kind", le.Kind.String()), slog.Int("status", le.Status),
		slog.Int("attempts", le.Attempts), slog.Duration("elapsed", elapsed), slog.Any("error", le.Err))
	return nil, le
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// addChainBody returns the add-(pre-)chain request body for chain (RFC
// 6962 §4.1): the bytes json.Marshal(ct.AddChainRequest{Chain: chain})
// returns, written directly. Base64 needs no JSON escaping.
func addChainBody(chain [][]byte) []byte {
	if chain == nil {
		return []byte(`{"chain":null}`)
	}
	n := len(`{"chain":[]}`) + len(chain)
	for _, c := range chain {
		n += base64.StdEncoding.EncodedLen(len(c)) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, `{"chain":[`...)
	for i, c := range chain {
		if i > 0 {
			b = append(b, ',')
		}
		if c == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, c)
		b = append(b, '"')
	}
	return append(b, `]}`...)
}
