package perf

import (
	"crypto/sha1"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
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
// requests and connections each got, and that every load ran inside
// around.
func TestInterleave(t *testing.T) {
	addrs, conns := countingServers(t, 2)
	hash := sha1.Sum(nil)
	spec := LoadSpec{Conns: 9, NameHash: hash[:], KeyHash: hash[:], SerialBase: "1000", Serials: 50}
	var order []Target
	var cpuReads int
	clock := time.Duration(0)
	serverCPU := func() (time.Duration, error) {
		cpuReads++
		clock += time.Second // a server that spends a second on every load
		return clock, nil
	}
	targets := []Target{{addrs[0], 4}, {addrs[1], 3}}
	res, err := interleave(spec, targets, 400, 2, serverCPU, func(tg Target, run func() error) error {
		order = append(order, tg)
		return run()
	})
	require.NoError(t, err)
	a, b := targets[0], targets[1]
	require.Equal(t, []Target{a, b, b, a, a, b, b, a}, order)
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
	// Each of the four loads on a target opened its own connections.
	require.Equal(t, int64(4*4), conns[0].Load(), "connections to the first address")
	require.Equal(t, int64(4*3), conns[1].Load(), "connections to the second address")

	_, err = interleave(spec, []Target{{"127.0.0.1:1", 2}}, 10, 1, serverCPU, nil)
	require.ErrorContains(t, err, "load of 2 connections on 127.0.0.1:1")
	failing := func() (time.Duration, error) { return 0, errors.New("no such process") }
	_, err = interleave(spec, targets, 10, 1, failing, nil)
	require.ErrorContains(t, err, "no such process")

	require.NoError(t, WarmUp(spec, addrs))
	require.ErrorContains(t, WarmUp(spec, []string{"127.0.0.1:1"}), "warming 127.0.0.1:1")
}

// countingServers starts n fixed-body servers and counts the connections
// each accepts.
func countingServers(t *testing.T, n int) ([]string, []*atomic.Int64) {
	addrs := make([]string, n)
	conns := make([]*atomic.Int64, n)
	for i := range n {
		c := new(atomic.Int64)
		srv := httptest.NewUnstartedServer(FixedBody(100))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				c.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		addrs[i], conns[i] = strings.TrimPrefix(srv.URL, "http://"), c
	}
	return addrs, conns
}

// TestSweep applies two loads to two servers and checks that every
// result sits where Sweep says: each target's requests, and its
// connections, counted by its server.
func TestSweep(t *testing.T) {
	addrs, conns := countingServers(t, 2)
	hash := sha1.Sum(nil)
	spec := LoadSpec{NameHash: hash[:], KeyHash: hash[:], SerialBase: "1000", Serials: 50}
	loads := []int{1, 3}
	var seen []Target
	// A server CPU clock that marks each load with its target: a load of
	// c connections on addrs[a] spends 10c+a ms.
	var clock, step time.Duration
	serverCPU := func() (time.Duration, error) {
		clock += step
		return clock, nil
	}
	res, err := Sweep(spec, addrs, loads, 200, 1, serverCPU, func(tg Target, run func() error) error {
		seen = append(seen, tg)
		step = time.Duration(10*tg.Conns+slices.Index(addrs, tg.Addr)) * time.Millisecond
		return run()
	})
	require.NoError(t, err)
	require.Len(t, res, len(loads))
	for l := range loads {
		require.Len(t, res[l], len(addrs))
		for a := range addrs {
			require.Equal(t, 200, res[l][a].Requests, "load %d, address %d", loads[l], a)
			require.Equal(t, 2*time.Duration(10*loads[l]+a)*time.Millisecond, res[l][a].ServerCPU,
				"load %d, address %d: the result of another target", loads[l], a)
		}
	}
	want := []Target{
		{addrs[0], 1}, {addrs[1], 1}, {addrs[0], 3}, {addrs[1], 3},
		{addrs[1], 3}, {addrs[0], 3}, {addrs[1], 1}, {addrs[0], 1},
	}
	require.Equal(t, want, seen)
	for a := range addrs {
		require.Equal(t, int64(2*(1+3)), conns[a].Load(), "connections to address %d", a)
	}
}

// TestLoads holds Loads to what the benchmarks read from it: LatencyConns
// first, then increasing.
func TestLoads(t *testing.T) {
	require.Equal(t, LatencyConns, Loads[0])
	require.True(t, slices.IsSorted(Loads) && len(slices.Compact(slices.Clone(Loads))) == len(Loads), "Loads %v: increasing", Loads)
}

// TestCapacity picks, for each column, the load with the highest rate.
func TestCapacity(t *testing.T) {
	r := func(perSecond int) LoadResult { return LoadResult{Requests: perSecond, Elapsed: time.Second} }
	res := [][]LoadResult{
		{r(100), r(50)},
		{r(300), r(40)},
		{r(200), r(60)},
	}
	require.Equal(t, 1, Capacity(res, 0))
	require.Equal(t, 2, Capacity(res, 1))
	require.Equal(t, 0, Capacity(res[:1], 1))
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
