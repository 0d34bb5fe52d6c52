package perf

import (
	"crypto/sha1"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	RunLoadChild()
	os.Exit(m.Run())
}

// TestInterleave runs a real load (a child process of this test binary)
// against two fixed-body servers and checks the order of the rounds, the
// requests each got, and that every load ran inside around.
func TestInterleave(t *testing.T) {
	a := httptest.NewServer(FixedBody(100))
	defer a.Close()
	b := httptest.NewServer(FixedBody(100))
	defer b.Close()
	addrs := []string{strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")}
	hash := sha1.Sum(nil)
	spec := LoadSpec{Conns: 4, NameHash: hash[:], KeyHash: hash[:], SerialBase: "1000", Serials: 50}
	var order []int
	res, err := Interleave(spec, addrs, 400, 2, func(i int, run func() error) error {
		order = append(order, i)
		return run()
	})
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 1, 0, 0, 1, 1, 0}, order)
	require.Len(t, res, 2)
	for i, r := range res {
		require.Equal(t, 400, r.Requests, "address %d", i)
		require.Positive(t, r.Elapsed, "address %d", i)
		require.Positive(t, r.PerSecond(), "address %d", i)
		require.LessOrEqual(t, r.P50, r.P99, "address %d", i)
	}

	_, err = Interleave(spec, []string{"127.0.0.1:1"}, 10, 1, nil)
	require.ErrorContains(t, err, "load on 127.0.0.1:1")
}

// TestProcessCPUOf reads this process's CPU time from /proc and compares
// it with getrusage's, to the 10 ms granularity of /proc's clock ticks.
func TestProcessCPUOf(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	before := ProcessCPU()
	got, err := ProcessCPUOf(os.Getpid())
	require.NoError(t, err)
	after := ProcessCPU()
	require.Positive(t, got)
	require.InDelta(t, float64(before), float64(got), float64(20*time.Millisecond))
	require.LessOrEqual(t, got, after+10*time.Millisecond)

	_, err = ProcessCPUOf(-1)
	require.Error(t, err)
}

func TestCoresBusy(t *testing.T) {
	r := LoadResult{Elapsed: 2 * time.Second, ClientCPU: time.Second}
	require.InDelta(t, 1.5, CoresBusy(r, 2*time.Second), 1e-9)
	require.Zero(t, CoresBusy(LoadResult{}, time.Second))
}
