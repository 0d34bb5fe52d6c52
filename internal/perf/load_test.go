package perf

import (
	"crypto/sha1"
	"errors"
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
	var cpuReads int
	clock := time.Duration(0)
	serverCPU := func() (time.Duration, error) {
		cpuReads++
		clock += time.Second // a server that spends a second on every load
		return clock, nil
	}
	res, err := Interleave(spec, addrs, 400, 2, serverCPU, func(i int, run func() error) error {
		order = append(order, i)
		return run()
	})
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 1, 0, 0, 1, 1, 0}, order)
	require.Equal(t, 2*len(order), cpuReads, "server CPU read before and after every load")
	require.Len(t, res, 2)
	for i, r := range res {
		require.Equal(t, 400, r.Requests, "address %d", i)
		require.Positive(t, r.Elapsed, "address %d", i)
		require.Positive(t, r.PerSecond(), "address %d", i)
		require.LessOrEqual(t, r.P50, r.P99, "address %d", i)
		require.Equal(t, 4*time.Second, r.ServerCPU, "address %d: four loads of a second each", i)
		require.Positive(t, r.ClientCPU, "address %d", i)
		_, server := r.CPUPerRequest()
		require.Equal(t, 4*time.Second/400, server, "address %d", i)
	}

	_, err = Interleave(spec, []string{"127.0.0.1:1"}, 10, 1, serverCPU, nil)
	require.ErrorContains(t, err, "load on 127.0.0.1:1")
	failing := func() (time.Duration, error) { return 0, errors.New("no such process") }
	_, err = Interleave(spec, addrs, 10, 1, failing, nil)
	require.ErrorContains(t, err, "no such process")

	require.NoError(t, WarmUp(spec, addrs))
	require.ErrorContains(t, WarmUp(spec, []string{"127.0.0.1:1"}), "warming 127.0.0.1:1")
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
	r := LoadResult{Elapsed: 2 * time.Second, ClientCPU: time.Second, ServerCPU: 2 * time.Second}
	require.InDelta(t, 1.5, r.CoresBusy(), 1e-9)
	require.Zero(t, LoadResult{ServerCPU: time.Second}.CoresBusy())
}
