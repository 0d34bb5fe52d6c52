package ctsubmit

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is nil when Config.Registerer is nil; its methods accept that.
type metrics struct {
	submissions *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	submits     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	subs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "precert",
		Subsystem: "ctsubmit",
		Name:      "submissions_total",
		Help: "Precertificate submissions to one CT log, by log name and outcome (ok, or the failure kind: rejected, " +
			"rate-limited, server-error, timeout, transport, malformed-response, invalid-sct, cancelled).",
	}, []string{"log", "outcome"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "precert",
		Subsystem: "ctsubmit",
		Name:      "submission_duration_seconds",
		Help:      "Time from the start of a submission to one CT log to its verified SCT or its failure, retries included, by log name and outcome.",
		Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"log", "outcome"})
	submits := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "precert",
		Subsystem: "ctsubmit",
		Name:      "submit_duration_seconds",
		Help:      "Time one Submit call took, by result (ok: the policy was met; failed).",
		Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"result"})
	var err error
	if subs, err = register(reg, subs); err != nil {
		return nil, err
	}
	if lat, err = register(reg, lat); err != nil {
		return nil, err
	}
	if submits, err = register(reg, submits); err != nil {
		return nil, err
	}
	return &metrics{submissions: subs, latency: lat, submits: submits}, nil
}

// register registers c, or returns the collector already registered under
// the same description, so that several Submitters can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, err
}

func (m *metrics) logDone(log *Log, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.submissions.WithLabelValues(log.Name, outcome).Inc()
	m.latency.WithLabelValues(log.Name, outcome).Observe(d.Seconds())
}

func (m *metrics) submitDone(ok bool, d time.Duration) {
	if m == nil {
		return
	}
	r := "failed"
	if ok {
		r = "ok"
	}
	m.submits.WithLabelValues(r).Observe(d.Seconds())
}
