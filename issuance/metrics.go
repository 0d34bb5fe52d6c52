package issuance

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	issuances *prometheus.CounterVec
	steps     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		issuances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "precert", Subsystem: "issuance", Name: "total",
			Help: "Issue calls by outcome: issued, ct_failed, error.",
		}, []string{"outcome"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "precert", Subsystem: "issuance", Name: "step_seconds",
			Help:    "Latency of each pipeline step.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"step"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.issuances, m.steps} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) outcome(err error, _ time.Duration) {
	switch {
	case err == nil:
		m.issuances.WithLabelValues("issued").Inc()
	case errors.Is(err, ErrCTFailed):
		m.issuances.WithLabelValues("ct_failed").Inc()
	default:
		m.issuances.WithLabelValues("error").Inc()
	}
}

func (m *metrics) step(s Step, d time.Duration) {
	m.steps.WithLabelValues(string(s)).Observe(d.Seconds())
}
