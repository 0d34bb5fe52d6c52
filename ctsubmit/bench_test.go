package ctsubmit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
)

// BenchmarkSubmit measures what Submit adds to the slowest log it needed:
// for each call, the wall time of Submit minus the longest time a log
// whose SCT was returned spent in its handler (delay and signing
// included). Reported per op: overhead-µs (the difference), slowest-µs
// (that handler time) and ratio (wall / slowest).
//
// Three logs of three operators answer after 1, 2 and 5 ms; a 90-day
// precertificate needs two SCTs. With a 1 ms stagger the third log is
// started too and cancelled when the first two answer, so the figure
// includes a hedge and its cancellation.
func BenchmarkSubmit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		delays  []time.Duration
		network bool
		stagger time.Duration
	}{
		{"loopback/hedged", []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}, true, time.Millisecond},
		{"loopback/no-delay", []time.Duration{0, 0, 0}, true, time.Hour},
		{"in-process/hedged", []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}, false, time.Millisecond},
		{"in-process/no-delay", []time.Duration{0, 0, 0}, false, time.Hour},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := precert(b, 90*day)
			var (
				tl     []*ctlogtest.Log
				logs   []*ctsubmit.Log
				client *http.Client
			)
			opts := named(ctlogtest.Options{}, "a", "b", "c")
			for i := range opts {
				opts[i].Delay = bc.delays[i]
			}
			if bc.network {
				tl, logs = loopback(b, opts...)
			} else {
				tl, logs, client = inProcess(b, opts...)
			}
			s := newSubmitter(b, ctsubmit.Config{Logs: logs, HTTPClient: client, Stagger: bc.stagger})
			byName := map[string]*ctlogtest.Log{}
			for _, l := range tl {
				byName[l.Name()] = l
			}
			var overhead, slowest time.Duration
			n := 0
			for b.Loop() {
				for _, l := range tl {
					l.Reset()
				}
				start := time.Now()
				scts, err := s.Submit(b.Context(), p.Chain, p.Cert.NotAfter)
				elapsed := time.Since(start)
				require.NoError(b, err)
				var slow time.Duration
				for _, sct := range scts {
					subs := byName[sct.Log.Name].Submissions()
					require.NotEmpty(b, subs)
					slow = max(slow, subs[len(subs)-1].Duration)
				}
				overhead += elapsed - slow
				slowest += slow
				n++
			}
			b.ReportMetric(float64(overhead.Microseconds())/float64(n), "overhead-µs/op")
			b.ReportMetric(float64(slowest.Microseconds())/float64(n), "slowest-µs/op")
			b.ReportMetric(float64(overhead+slowest)/float64(slowest), "ratio")
		})
	}
}
