package recovery

import "github.com/prometheus/client_golang/prometheus"

type sweepMetrics struct {
	runs      prometheus.Counter
	duration  prometheus.Histogram
	due       prometheus.Gauge
	stalled   prometheus.Gauge
	actions   *prometheus.CounterVec
	oldestAge prometheus.Gauge
}

func newSweepMetrics(reg prometheus.Registerer) (*sweepMetrics, error) {
	m := &sweepMetrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "precert", Subsystem: "sweep", Name: "runs_total",
			Help: "Sweeps run."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "precert", Subsystem: "sweep", Name: "duration_seconds",
			Help: "Duration of each sweep.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		due: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "precert", Subsystem: "sweep", Name: "records_due",
			Help: "Records due in the last sweep."}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "precert", Subsystem: "sweep", Name: "records_stalled",
			Help: "In-flight records whose lease had expired, in the last sweep."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "precert", Subsystem: "sweep", Name: "records_total",
			Help: "Records handled by sweeps, by action."}, []string{"action"}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "precert", Subsystem: "sweep", Name: "oldest_response_age_seconds",
			Help: "Age (now - thisUpdate) of the oldest response among the records due in the last sweep; 0 when none were due."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.duration, m.due, m.stalled, m.actions, m.oldestAge} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *sweepMetrics) observe(r *Report) {
	m.runs.Inc()
	m.duration.Observe(r.Total.Seconds())
	m.due.Set(float64(r.Due))
	m.stalled.Set(float64(r.Actions[ActionAbandoned] + r.Actions[ActionIssued] + r.Actions[ActionCTFailed] + r.Actions[ActionSetAside] + r.Actions[ActionBusy]))
	for a, n := range r.Actions {
		m.actions.WithLabelValues(string(a)).Add(float64(n))
	}
	m.oldestAge.Set(r.OldestResponse.Seconds())
}
