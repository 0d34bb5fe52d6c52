package responder

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/certpipe/precert/ocspstate"
	"github.com/prometheus/client_golang/prometheus"
)

// outcome is why the handler answered as it did; each has a fixed
// responseStatus. It is the "outcome" label of
// precert_responder_responses_total.
type outcome uint8

const (
	outGood          outcome = iota // successful: a good response
	outRevoked                      // successful: a revoked response
	outNotModified                  // 304: the client's ETag matches
	outUnknownSerial                // unauthorized: no response stored for the serial
	outUnknownIssuer                // unauthorized: the CertID names no configured issuer
	outHashMismatch                 // unauthorized: the stored response uses another CertID hash
	outMalformed                    // malformedRequest: undecodable request
	outMethod                       // malformedRequest: method not allowed
	outTooLarge                     // malformedRequest: body over MaxRequestBytes
	outContentType                  // malformedRequest: Content-Type is not application/ocsp-request
	outSourceError                  // tryLater: the Source failed
	outCanceled                     // tryLater: the request's context ended during the lookup
	outInvalid                      // internalError: the stored response failed validation (labelled by problem)
	numOutcomes
)

var outcomeLabels = [numOutcomes][2]string{
	outGood:          {"successful", "good"},
	outRevoked:       {"successful", "revoked"},
	outNotModified:   {"successful", "not-modified"},
	outUnknownSerial: {"unauthorized", "unknown-serial"},
	outUnknownIssuer: {"unauthorized", "unknown-issuer"},
	outHashMismatch:  {"unauthorized", "certid-hash-mismatch"},
	outMalformed:     {"malformedRequest", "malformed"},
	outMethod:        {"malformedRequest", "method-not-allowed"},
	outTooLarge:      {"malformedRequest", "too-large"},
	outContentType:   {"malformedRequest", "content-type"},
	outSourceError:   {"tryLater", "source-error"},
	outCanceled:      {"tryLater", "canceled"},
	outInvalid:       {"internalError", "invalid"},
}

// metrics holds the handler's Prometheus counters, resolved once so that
// counting costs an atomic add. A nil *metrics counts nothing.
type metrics struct {
	responses *prometheus.CounterVec
	byOutcome [numOutcomes]prometheus.Counter
	byProblem sync.Map // ocspstate.Problem → prometheus.Counter
	cacheHit  prometheus.Counter
	cacheMiss prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "precert",
		Subsystem: "responder",
		Name:      "responses_total",
		Help: "OCSP responses sent, by responseStatus (successful, unauthorized, malformedRequest, internalError, tryLater) " +
			"and outcome (good, revoked, not-modified, unknown-serial, unknown-issuer, certid-hash-mismatch, malformed, " +
			"method-not-allowed, too-large, content-type, source-error, canceled, or invalid-<problem> for a stored response " +
			"that failed validation, the problem named as by ocspstate.Problem).",
	}, []string{"status", "outcome"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "precert",
		Subsystem: "responder",
		Name:      "validation_cache_total",
		Help:      "Lookups of stored responses in the handler's validation cache, by result (hit, miss). Misses verify a signature.",
	}, []string{"result"})
	var err error
	if responses, err = register(reg, responses); err != nil {
		return nil, err
	}
	if cache, err = register(reg, cache); err != nil {
		return nil, err
	}
	m := &metrics{responses: responses, cacheHit: cache.WithLabelValues("hit"), cacheMiss: cache.WithLabelValues("miss")}
	for o := range numOutcomes {
		if o != outInvalid {
			m.byOutcome[o] = responses.WithLabelValues(outcomeLabels[o][0], outcomeLabels[o][1])
		}
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description, so that several handlers can share a registry.
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, err
}

func (m *metrics) count(o outcome, p ocspstate.Problem) {
	if m == nil {
		return
	}
	if o != outInvalid {
		m.byOutcome[o].Inc()
		return
	}
	if c, ok := m.byProblem.Load(p); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.responses.WithLabelValues("internalError", "invalid-"+problemName(p))
	m.byProblem.Store(p, c)
	c.Inc()
}

func (m *metrics) cache(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

func problemName(p ocspstate.Problem) string {
	if p == 0 {
		return "unknown"
	}
	return p.String()
}

// logLimiter lets through at most one log line per key per interval, and
// says how many it held back, so that a broken stored response requested
// thousands of times a second, or a database outage, does not flood the
// logs.
type logLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]*limitState
}

type limitState struct {
	at         time.Time
	suppressed int
}

const maxLimiterKeys = 4096

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: make(map[string]*limitState)}
}

// allow reports whether to log for key at now, and how many lines were
// suppressed since the last one logged.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.last[key]
	if ok && now.Sub(st.at) < l.interval && now.Sub(st.at) >= 0 {
		st.suppressed++
		return false, 0
	}
	if !ok {
		if len(l.last) >= maxLimiterKeys {
			clear(l.last)
		}
		st = &limitState{}
		l.last[key] = st
	}
	n := st.suppressed
	st.at, st.suppressed = now, 0
	return true, n
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
