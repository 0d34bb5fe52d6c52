package ctsubmit_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/derw"
	"github.com/certpipe/precert/internal/tbs"
)

func TestNew(t *testing.T) {
	good := func() *ctsubmit.Log {
		return &ctsubmit.Log{Name: "good", Operator: "Op", URL: "https://ct.example/log/", Key: spki(t)}
	}
	with := func(f func(*ctsubmit.Log)) *ctsubmit.Log { l := good(); f(l); return l }
	second := good()
	second.Name = "second"
	sameKey := *second
	sameKey.Name = "same key"
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "precert_ctsubmit_submissions_total", Help: "x"}))
	for _, tc := range []struct {
		name string
		cfg  ctsubmit.Config
		want string // "" means New succeeds
	}{
		{"minimal", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}}, ""},
		{"no logs", ctsubmit.Config{}, "Config.Logs is empty"},
		{"nil log", ctsubmit.Config{Logs: []*ctsubmit.Log{good(), nil}}, "Config.Logs[1] is nil"},
		{"no name", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.Name = "" })}}, "has no Name"},
		{"no operator", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.Operator = "" })}}, "has no Operator"},
		{"no URL", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.URL = "" })}}, "not an absolute http or https URL"},
		{"ftp URL", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.URL = "ftp://ct.example/" })}}, "not an absolute http or https URL"},
		{"URL with query", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.URL = "https://ct.example/?a=b" })}}, "query"},
		{"no key", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.Key = nil })}}, "has no Key"},
		{"bad key", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) { l.Key = []byte{1, 2} })}}, "parsing Key"},
		{"empty interval", ctsubmit.Config{Logs: []*ctsubmit.Log{with(func(l *ctsubmit.Log) {
			l.TemporalStart = time.Unix(100, 0)
			l.TemporalEnd = time.Unix(100, 0)
		})}}, "empty temporal interval"},
		{"same name", ctsubmit.Config{Logs: []*ctsubmit.Log{good(), good()}}, `both named "good"`},
		{"same key", ctsubmit.Config{Logs: []*ctsubmit.Log{second, &sameKey}}, "have the same key"},
		{"negative stagger", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, Stagger: -1}, "Config.Stagger is negative"},
		{"negative per-log timeout", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, PerLogTimeout: -1}, "Config.PerLogTimeout is negative"},
		{"negative overall timeout", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, OverallTimeout: -1}, "Config.OverallTimeout is negative"},
		{"negative skew", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, MaxSkew: -1}, "Config.MaxSkew is negative"},
		{"per-log longer than overall", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, PerLogTimeout: 20 * time.Second, OverallTimeout: 10 * time.Second},
			"PerLogTimeout (20s) exceeds Config.OverallTimeout (10s)"},
		{"short overall shortens the default per-log", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, OverallTimeout: time.Second}, ""},
		{"per-log longer than the default overall", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, PerLogTimeout: 31 * time.Second}, "exceeds"},
		{"registry clash", ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, Registerer: clash}, "Config.Registerer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ctsubmit.New(tc.cfg)
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, s)
		})
	}
	// Two Submitters may share a registry.
	reg := prometheus.NewRegistry()
	_ = newSubmitter(t, ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, Registerer: reg})
	_ = newSubmitter(t, ctsubmit.Config{Logs: []*ctsubmit.Log{good()}, Registerer: reg})
}

// TestSubmit goes through real HTTP on loopback: the SCTs verify, embed
// in a final certificate and verify there, and the metrics count them.
func TestSubmit(t *testing.T) {
	p := precert(t, 90*day)
	tl, logs := loopback(t, named(ctlogtest.Options{}, "alpha", "beta", "gamma")...)
	reg := prometheus.NewRegistry()
	var logBuf bytes.Buffer
	s := newSubmitter(t, ctsubmit.Config{
		Logs:       logs,
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "beta"}, names(scts), "two logs of two operators, in preference order")
	requireValid(t, p, scts)
	require.Same(t, logs[0], scts[0].Log)
	require.Len(t, tl[0].Submissions(), 1)
	require.True(t, tl[0].Submissions()[0].Precert)
	require.Equal(t, p.Chain, tl[0].Submissions()[0].Chain)
	require.Empty(t, tl[2].Submissions())

	final, err := p.Final(mustExt(t, raws(scts)))
	require.NoError(t, err)
	embedded, err := ctsubmit.VerifyEmbedded(final, p.CA.Intermediate, logs)
	require.NoError(t, err)
	require.Equal(t, raws(scts), raws(embedded))
	require.NoError(t, ctsubmit.DefaultPolicy().Check(
		ctsubmit.Validity{NotBefore: final.NotBefore, NotAfter: final.NotAfter}, embedded, time.Now()))

	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "precert_ctsubmit_submissions_total" {
			require.Len(t, mf.GetMetric(), 2)
		}
	}
	require.Equal(t, 1.0, counter(t, reg, "precert_ctsubmit_submissions_total", "alpha", "ok"))
	require.Equal(t, 1.0, counter(t, reg, "precert_ctsubmit_submissions_total", "beta", "ok"))
	require.Contains(t, logBuf.String(), "SCT verified")
	require.NotContains(t, logBuf.String(), "MII", "no certificate in the log")
	requireNoCertificate(t, logBuf.String(), p.Chain)
}

// counter returns the value of the counter name{log, outcome}.
func counter(t *testing.T, reg *prometheus.Registry, name, log, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["log"] == log && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSubmitFailureModes puts two logs in each failure mode of the test
// log and checks the cause listed for each.
func TestSubmitFailureModes(t *testing.T) {
	for _, tc := range []struct {
		mode       ctlogtest.Mode
		retryAfter time.Duration
		kind       ctsubmit.Kind
		status     int
		attempts   int
		elapsed    time.Duration // on the bubble's clock
		contains   string        // in the LogError's message
	}{
		{ctlogtest.Reject, 0, ctsubmit.KindRejected, 400, 1, 0, `body: "ctlogtest: submission rejected (mode reject)"`},
		{ctlogtest.RateLimit, time.Second, ctsubmit.KindRateLimited, 429, 3, 2 * time.Second, "HTTP 429 (Retry-After 1s) after 3 attempts"},
		{ctlogtest.RateLimit, time.Minute, ctsubmit.KindRateLimited, 429, 1, 0, "not retrying: the wait of 1m0s outlasts the deadline"},
		{ctlogtest.Unavailable, 0, ctsubmit.KindServerError, 503, 3, 750 * time.Millisecond, "HTTP 503 after 3 attempts"},
		{ctlogtest.Hang, 0, ctsubmit.KindTimeout, 0, 1, 4 * time.Second, "no SCT within the per-log timeout of 4s"},
		{ctlogtest.Garbage, 0, ctsubmit.KindMalformed, 200, 1, 0, "not a JSON add-chain response"},
		{ctlogtest.BadSignature, 0, ctsubmit.KindInvalidSCT, 200, 1, 0, "signature does not verify"},
		{ctlogtest.WrongLogID, 0, ctsubmit.KindInvalidSCT, 200, 1, 0, "is not the log's ID"},
	} {
		name := tc.mode.String()
		if tc.retryAfter > 0 {
			name += "/retry-after-" + tc.retryAfter.String()
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := precert(t, 90*day)
				tl, logs, client := inProcess(t, named(ctlogtest.Options{Mode: tc.mode, RetryAfter: tc.retryAfter}, "one", "two")...)
				reg := prometheus.NewRegistry()
				s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, PerLogTimeout: 4 * time.Second, Stagger: time.Hour, Registerer: reg})
				start := time.Now()
				scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
				require.Nil(t, scts)
				require.Equal(t, tc.elapsed, time.Since(start))
				var e *ctsubmit.Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, 2, e.Needed)
				require.Equal(t, 0, e.Got)
				require.ErrorContains(t, e.Policy, "Chrome CT policy not met")
				require.Len(t, e.Logs, 2)
				for i, le := range e.Logs {
					require.Same(t, logs[i], le.Log)
					require.Equal(t, tc.kind, le.Kind, "%v", le)
					require.Equal(t, tc.status, le.Status)
					require.Equal(t, tc.attempts, le.Attempts)
					require.Len(t, tl[i].Submissions(), tc.attempts)
					require.Contains(t, le.Error(), tc.contains)
					require.Contains(t, err.Error(), le.Error(), "the summary lists every cause")
					require.Equal(t, 1.0, counter(t, reg, "precert_ctsubmit_submissions_total", logs[i].Name, tc.kind.String()))
				}
				var le *ctsubmit.LogError
				require.ErrorAs(t, err, &le, "Unwrap exposes the per-log causes")
			})
		})
	}
}

// TestSubmitFailureModesLoopback runs the modes whose transport matters
// over real HTTP.
func TestSubmitFailureModesLoopback(t *testing.T) {
	for _, tc := range []struct {
		mode ctlogtest.Mode
		kind ctsubmit.Kind
	}{
		{ctlogtest.Reject, ctsubmit.KindRejected},
		{ctlogtest.Garbage, ctsubmit.KindMalformed},
		{ctlogtest.WrongLogID, ctsubmit.KindInvalidSCT},
		{ctlogtest.Hang, ctsubmit.KindTimeout},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			p := precert(t, 90*day)
			_, logs := loopback(t, named(ctlogtest.Options{Mode: tc.mode}, "one", "two")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, PerLogTimeout: 200 * time.Millisecond})
			_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			var e *ctsubmit.Error
			require.ErrorAs(t, err, &e)
			for _, le := range e.Logs {
				require.Equal(t, tc.kind, le.Kind, "%v", le)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		p := precert(t, 90*day)
		tl, logs := loopback(t, named(ctlogtest.Options{}, "one", "two")...)
		require.NoError(t, tl[0].Close())
		// 400 ms leaves room for one retry, 250 ms later, not two (or
		// none, on a machine slow enough).
		s := newSubmitter(t, ctsubmit.Config{Logs: logs, PerLogTimeout: 400 * time.Millisecond})
		_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
		var e *ctsubmit.Error
		require.ErrorAs(t, err, &e)
		le := logError(t, e, "one")
		require.Equal(t, ctsubmit.KindTransport, le.Kind)
		require.Contains(t, []int{1, 2}, le.Attempts)
		require.ErrorContains(t, le, "connection refused")
		require.ErrorContains(t, le, "outlasts the deadline")
	})
}

// TestSubmitTimestamps checks the skew rules on SCT timestamps.
func TestSubmitTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset time.Duration // of the log's clock from ours
		want   string        // "" means accepted
	}{
		{"on time", 0, ""},
		{"within skew ahead", 4 * time.Minute, ""},
		{"too far ahead", 6 * time.Minute, "ahead of now, more than MaxSkew (5m0s)"},
		// An SCT older than now but not than the precertificate: a log
		// answering a repeated submission with its first SCT.
		{"from before now, after NotBefore", -50 * time.Minute, ""},
		{"before NotBefore", -66 * time.Minute, "precedes the precertificate's NotBefore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := precert(t, 90*day) // NotBefore is an hour ago
				skewed := func() time.Time { return time.Now().Add(tc.offset) }
				_, logs, client := inProcess(t, named(ctlogtest.Options{Now: skewed}, "one", "two")...)
				s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
				scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
				if tc.want == "" {
					require.NoError(t, err)
					requireValid(t, p, scts)
					return
				}
				var e *ctsubmit.Error
				require.ErrorAs(t, err, &e)
				for _, le := range e.Logs {
					require.Equal(t, ctsubmit.KindInvalidSCT, le.Kind)
					require.ErrorContains(t, le, tc.want)
				}
			})
		})
	}
}

// TestSubmitStagger follows the race on the bubble's clock.
func TestSubmitStagger(t *testing.T) {
	received := func(l *ctlogtest.Log, start time.Time) []time.Duration {
		var out []time.Duration
		for _, s := range l.Submissions() {
			out = append(out, s.Received.Sub(start))
		}
		return out
	}
	t.Run("one more each stagger, stop when met", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			tl, logs, client := inProcess(t, named(ctlogtest.Options{Delay: 5 * time.Second}, "a", "b", "c", "d", "e")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: 2 * time.Second})
			start := time.Now()
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.Equal(t, 5*time.Second, time.Since(start))
			require.Equal(t, []string{"a", "b"}, names(scts))
			require.Equal(t, []time.Duration{0}, received(tl[0], start))
			require.Equal(t, []time.Duration{0}, received(tl[1], start))
			require.Equal(t, []time.Duration{2 * time.Second}, received(tl[2], start))
			require.Equal(t, []time.Duration{4 * time.Second}, received(tl[3], start))
			require.Empty(t, tl[4].Submissions())
			// The two still running were cancelled when the policy was met.
			synctest.Wait()
			require.Equal(t, 0, tl[2].Submissions()[0].Status)
			require.Equal(t, 0, tl[3].Submissions()[0].Status)
		})
	})
	t.Run("a failure is replaced at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			tl, logs, client := inProcess(t, named(ctlogtest.Options{Delay: time.Second}, "a", "b", "c")...)
			tl[0].SetMode(ctlogtest.Reject)
			tl[0].SetDelay(300 * time.Millisecond)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Hour})
			start := time.Now()
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.Equal(t, []string{"b", "c"}, names(scts))
			require.Equal(t, []time.Duration{300 * time.Millisecond}, received(tl[2], start))
			require.Equal(t, 1300*time.Millisecond, time.Since(start))
		})
	})
	t.Run("a hung log is replaced at its per-log timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			tl, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b", "c")...)
			tl[0].SetMode(ctlogtest.Hang)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Hour, PerLogTimeout: 3 * time.Second})
			start := time.Now()
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.Equal(t, []string{"b", "c"}, names(scts))
			require.Equal(t, 3*time.Second, time.Since(start))
		})
	})
	t.Run("operators are covered first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			opts := named(ctlogtest.Options{}, "a1", "a2", "b1")
			opts[0].Operator, opts[1].Operator, opts[2].Operator = "A", "A", "B"
			tl, logs, client := inProcess(t, opts...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.Equal(t, []string{"a1", "b1"}, names(scts))
			require.Empty(t, tl[1].Submissions())
		})
	})
	t.Run("an RFC 6962 log comes before tiled ones", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			opts := named(ctlogtest.Options{}, "t1", "t2", "rfc")
			opts[0].Tiled, opts[1].Tiled = true, true
			_, logs, client := inProcess(t, opts...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"t1", "rfc"}, names(scts))
		})
	})
	t.Run("same operator twice asks for one more at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			opts := named(ctlogtest.Options{}, "a1", "b1", "a2")
			opts[0].Operator, opts[1].Operator, opts[2].Operator = "A", "B", "A"
			tl, logs, client := inProcess(t, opts...)
			tl[1].SetMode(ctlogtest.Reject)
			tl[1].SetDelay(time.Second)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Hour})
			_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			// a1 and a2 answer, b1 rejects: two SCTs, one operator.
			var e *ctsubmit.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, 2, e.Got)
			require.ErrorContains(t, e.Policy, "SCTs from 1 log operators")
			require.Len(t, e.Logs, 1)
			require.Equal(t, ctsubmit.KindRejected, e.Logs[0].Kind)
		})
	})
	t.Run("Retry-After is honoured", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			tl, logs, client := inProcess(t, named(ctlogtest.Options{Mode: ctlogtest.RateLimit, RetryAfter: 2 * time.Second}, "a", "b")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
			start := time.Now()
			_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.Error(t, err)
			require.Equal(t, []time.Duration{0, 2 * time.Second, 4 * time.Second}, received(tl[0], start))
		})
	})
	t.Run("a log that recovers on retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			tl, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b")...)
			tl[0].SetMode(ctlogtest.Unavailable)
			time.AfterFunc(100*time.Millisecond, func() { tl[0].SetMode(ctlogtest.Accept) })
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"a", "b"}, names(scts))
			require.Len(t, tl[0].Submissions(), 2)
		})
	})
}

func TestSubmitDeadlines(t *testing.T) {
	t.Run("overall timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			_, logs, client := inProcess(t, named(ctlogtest.Options{Mode: ctlogtest.Hang}, "a", "b", "c", "d", "e")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Second, PerLogTimeout: 2 * time.Second, OverallTimeout: 2500 * time.Millisecond})
			start := time.Now()
			_, err := s.Submit(context.Background(), p.Chain, p.Cert.NotAfter)
			require.Equal(t, 2500*time.Millisecond, time.Since(start))
			require.ErrorIs(t, err, ctsubmit.ErrOverallTimeout)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var e *ctsubmit.Error
			require.ErrorAs(t, err, &e)
			require.Len(t, e.Logs, 5)
			overall := 0
			for _, le := range e.Logs {
				// Whether the fifth log was started depends on which of
				// the events due at 2s Submit handled first.
				require.Contains(t, []ctsubmit.Kind{ctsubmit.KindTimeout, ctsubmit.KindNotTried}, le.Kind, "%v", le)
				if errors.Is(le.Err, ctsubmit.ErrOverallTimeout) {
					overall++
				}
			}
			require.Positive(t, overall)
		})
	})
	t.Run("caller cancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			_, logs, client := inProcess(t, named(ctlogtest.Options{Mode: ctlogtest.Hang}, "a", "b", "c")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Hour})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			_, err := s.Submit(ctx, p.Chain, p.Cert.NotAfter)
			require.ErrorIs(t, err, context.Canceled)
			var e *ctsubmit.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, ctsubmit.KindCancelled, logError(t, e, "a").Kind)
			require.Equal(t, ctsubmit.KindCancelled, logError(t, e, "b").Kind)
			require.Equal(t, ctsubmit.KindNotTried, logError(t, e, "c").Kind)
		})
	})
	t.Run("caller's deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := precert(t, 90*day)
			_, logs, client := inProcess(t, named(ctlogtest.Options{Mode: ctlogtest.Hang}, "a", "b")...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			start := time.Now()
			_, err := s.Submit(ctx, p.Chain, p.Cert.NotAfter)
			require.Equal(t, time.Second, time.Since(start))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NotErrorIs(t, err, ctsubmit.ErrOverallTimeout)
		})
	})
}

func TestSubmitUnsatisfiable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(logs []*ctsubmit.Log, p *ctlogtest.Precert)
		lifetime time.Duration
		causes   map[string]string
	}{
		{"one log", func(logs []*ctsubmit.Log, p *ctlogtest.Precert) {
			logs[1].TemporalStart = p.Cert.NotAfter.Add(-day)
			logs[1].TemporalEnd = p.Cert.NotAfter // end is exclusive
			logs[2].Retired = time.Now().Add(-time.Second)
		}, 90 * day, map[string]string{
			"a": "not submitted",
			"b": "temporal interval",
			"c": "retired since",
		}},
		{"one operator", func(logs []*ctsubmit.Log, _ *ctlogtest.Precert) {
			for _, l := range logs {
				l.Operator = "Same"
			}
		}, 90 * day, map[string]string{"a": "not submitted", "b": "not submitted", "c": "not submitted"}},
		{"lifetime Apple refuses", func([]*ctsubmit.Log, *ctlogtest.Precert) {}, 400 * day,
			map[string]string{"a": "cannot be met", "b": "cannot be met", "c": "cannot be met"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := precert(t, tc.lifetime)
				tl, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b", "c")...)
				tc.edit(logs, p)
				s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
				_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
				require.ErrorIs(t, err, ctsubmit.ErrUnsatisfiable)
				var e *ctsubmit.Error
				require.ErrorAs(t, err, &e)
				for name, want := range tc.causes {
					le := logError(t, e, name)
					require.Equal(t, ctsubmit.KindNotTried, le.Kind)
					require.ErrorContains(t, le, want)
				}
				for _, l := range tl {
					require.Empty(t, l.Submissions(), "nothing is submitted")
				}
			})
		})
	}
}

func TestSubmitBadInput(t *testing.T) {
	p := precert(t, 90*day)
	_, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b")...)
	s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
	plain, err := p.CA.IssueLeaf(p.CA.LeafTemplate(90*day), p.Key.Public())
	require.NoError(t, err)
	tmpl := p.CA.LeafTemplate(90 * day)
	tmpl.ExtraExtensions = []pkix.Extension{{Id: ctsubmit.OIDPoison, Value: []byte{0x05, 0x00}}}
	softPoison, err := p.CA.IssueLeaf(tmpl, p.Key.Public())
	require.NoError(t, err)
	// The precertificate with an outer signature algorithm other than its
	// TBS's.
	tbsDER, _, sig, err := tbs.SplitCertificate(p.Chain[0])
	require.NoError(t, err)
	sha384, ok := derw.SignatureAlgorithmIdentifier(x509.ECDSAWithSHA384)
	require.True(t, ok)
	otherAlg, err := tbs.JoinCertificate(tbsDER, sha384, sig)
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		chain    [][]byte
		notAfter time.Time
		want     string
	}{
		{"no chain", nil, p.Cert.NotAfter, "chain has 0 certificates"},
		{"no issuer", p.Chain[:1], p.Cert.NotAfter, "chain has 1 certificates"},
		{"garbage", [][]byte{[]byte("x"), p.Chain[1]}, p.Cert.NotAfter, "parsing chain[0]"},
		{"not a precertificate", [][]byte{plain.Raw, p.Chain[1]}, plain.NotAfter, "no poison extension"},
		{"notAfter differs", p.Chain, p.Cert.NotAfter.Add(time.Second), "is not the precertificate's NotAfter"},
		{"poison not critical", [][]byte{softPoison.Raw, p.Chain[1]}, softPoison.NotAfter, "not critical"},
		{"outer algorithm differs", [][]byte{otherAlg, p.Chain[1]}, p.Cert.NotAfter, "signature algorithm differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Submit(t.Context(), tc.chain, tc.notAfter)
			require.ErrorContains(t, err, tc.want)
			var e *ctsubmit.Error
			require.False(t, errors.As(err, &e), "bad input is not a CT failure")
		})
	}
}

// TestSubmitNeverReturnsBadSCT races logs in random modes many times: every
// SCT returned verifies, whatever the mix.
func TestSubmitNeverReturnsBadSCT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := precert(t, 90*day)
		tl, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b", "c", "d", "e")...)
		s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, PerLogTimeout: 2 * time.Second, Stagger: 500 * time.Millisecond})
		ok := 0
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			for _, l := range tl {
				m := ctlogtest.Accept
				if rng.IntN(2) == 0 {
					m = ctlogtest.Modes[rng.IntN(len(ctlogtest.Modes))]
				}
				l.SetMode(m)
				l.SetDelay(time.Duration(rng.IntN(4)) * 300 * time.Millisecond)
			}
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			if err != nil {
				var e *ctsubmit.Error
				require.ErrorAs(t, err, &e)
				continue
			}
			ok++
			requireValid(t, p, scts)
			require.NoError(t, ctsubmit.DefaultPolicy().Check(ctsubmit.Validity{NotBefore: p.Cert.NotBefore, NotAfter: p.Cert.NotAfter}, scts, time.Now()))
		}
		require.Positive(t, ok)
		t.Logf("%d of 200 submissions met the policy", ok)
	})
}

// TestSubmitNoGoroutineOutlivesSubmit checks, with goleak, that Submit
// leaves nothing running: not the winners, not the cancelled, not the
// hung.
func TestSubmitNoGoroutineOutlivesSubmit(t *testing.T) {
	p := precert(t, 90*day)
	for _, tc := range []struct {
		name  string
		modes []ctlogtest.Mode
		delay time.Duration
		ok    bool
	}{
		{"winners and a hung log", []ctlogtest.Mode{ctlogtest.Accept, ctlogtest.Hang, ctlogtest.Accept, ctlogtest.Hang}, 0, true},
		{"slow losers cancelled", []ctlogtest.Mode{ctlogtest.Accept, ctlogtest.Accept, ctlogtest.Accept, ctlogtest.Accept}, 20 * time.Millisecond, true},
		{"everything hangs", []ctlogtest.Mode{ctlogtest.Hang, ctlogtest.Hang, ctlogtest.Hang}, 0, false},
		{"everything fails", []ctlogtest.Mode{ctlogtest.Reject, ctlogtest.Garbage, ctlogtest.BadSignature}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []ctlogtest.Options
			for i, m := range tc.modes {
				opts = append(opts, ctlogtest.Options{Name: string(rune('a' + i)), Mode: m, Delay: time.Duration(i) * tc.delay})
			}
			_, logs, client := inProcess(t, opts...)
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: time.Millisecond, OverallTimeout: 300 * time.Millisecond})
			ignore := goleak.IgnoreCurrent()
			_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			require.Equal(t, tc.ok, err == nil, "%v", err)
			goleak.VerifyNone(t, ignore)
		})
	}
}

func TestSubmitLogsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := precert(t, 90*day)
		_, logs, client := inProcess(t, named(ctlogtest.Options{Mode: ctlogtest.Reject}, "a", "b")...)
		var buf bytes.Buffer
		s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		_, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
		require.Error(t, err)
		out := buf.String()
		require.Equal(t, 2, strings.Count(out, `msg="ctsubmit: log gave no SCT"`), out)
		require.Contains(t, out, "kind=rejected")
		require.Contains(t, out, `msg="ctsubmit: CT submission failed"`)
		requireNoCertificate(t, out, p.Chain)
	})
}

func TestKindString(t *testing.T) {
	require.Equal(t, "invalid-sct", ctsubmit.KindInvalidSCT.String())
	require.Equal(t, "Kind(42)", ctsubmit.Kind(42).String())
	require.Equal(t, "Kind(0)", ctsubmit.Kind(0).String())
}

// Real HTTP also works through a caller's client.
func TestSubmitCustomClient(t *testing.T) {
	p := precert(t, 90*day)
	_, logs := loopback(t, named(ctlogtest.Options{}, "a", "b")...)
	s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: &http.Client{}})
	scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
	require.NoError(t, err)
	requireValid(t, p, scts)
}
