package perf

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// LoadSpec describes an OCSP GET load: N requests over Conns keep-alive
// connections to Addr, one request in flight per connection (like wrk),
// each for a serial drawn at random from [SerialBase, SerialBase+Serials),
// with a SHA-1 CertID naming the issuer by NameHash and KeyHash.
type LoadSpec struct {
	Addr       string `json:"addr"`
	N          int    `json:"n"`
	Conns      int    `json:"conns"`
	NameHash   []byte `json:"name_hash"`
	KeyHash    []byte `json:"key_hash"`
	SerialBase string `json:"serial_base"` // decimal
	Serials    int    `json:"serials"`
}

// LoadResult is what one load measured.
type LoadResult struct {
	Requests int           `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	// ClientCPU is the load generator's CPU time (user and system), when
	// it ran in a process of its own (LoadProcess).
	ClientCPU time.Duration `json:"client_cpu_ns"`
	// ServerCPU is the server's CPU time over the load, when Sweep
	// measured it.
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
}

// PerSecond is the request rate.
func (r LoadResult) PerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Add merges o into r: requests and time add up, and the percentiles
// become the request-weighted means of the two (close enough for runs of
// the same load).
func (r *LoadResult) Add(o LoadResult) {
	if r.Requests+o.Requests > 0 {
		w := func(a, b time.Duration) time.Duration {
			return time.Duration((float64(a)*float64(r.Requests) + float64(b)*float64(o.Requests)) / float64(r.Requests+o.Requests))
		}
		r.P50, r.P99 = w(r.P50, o.P50), w(r.P99, o.P99)
	}
	r.Requests += o.Requests
	r.Elapsed += o.Elapsed
	r.ClientCPU += o.ClientCPU
	r.ServerCPU += o.ServerCPU
}

// LatencyConns is the load a responder benchmark reads latency at, as
// keep-alive connections with one request in flight each. Neither the
// server nor the load generator keeps the cores busy there: each waits on
// the other's round trips, so the request rate is set by latency
// (wake-ups included) as much as by work, and the 99th percentile is the
// latency of an answer rather than time spent queueing.
const LatencyConns = 16

// Loads are the loads a responder benchmark applies to every server, in
// increasing order from LatencyConns, which is first. A server's capacity
// is its highest request rate over all of them ([Capacity]): on these
// 2-core machines the fixed-body handler comes close to it from 16
// connections on, the Handler, whose answers take longer, only from about
// 128 or 256 (BENCHMARKS.md), so no single load measures both.
var Loads = []int{LatencyConns, 64, 128, 256, 512}

// WarmUp sends every address in addrs a short load over the largest of
// Loads, so that the servers' code, heap and goroutines have been through
// a load before anything is measured.
func WarmUp(spec LoadSpec, addrs []string) error {
	spec.Conns = Loads[len(Loads)-1]
	spec.N = 4 * spec.Conns
	for _, addr := range addrs {
		spec.Addr = addr
		if _, err := LoadProcess(spec); err != nil {
			return fmt.Errorf("warming %s: %w", addr, err)
		}
	}
	return nil
}

// Target is one load on one server.
type Target struct {
	Addr  string
	Conns int
}

// interleave applies spec's load to every target (setting spec's Addr
// and Conns for each), about perTarget requests to each in all, in rounds
// that visit them forward and then backward (a, b, c, c, b, a), so that
// all of them see the same machine: whatever else runs on these cores
// affects them alike. It returns each target's results merged
// ([LoadResult.Add]), with ServerCPU filled in from serverCPU, the
// server's CPU time so far ([ProcessCPU], or [ProcessCPUOf] for a server
// in another process), read before and after every load. If around is
// not nil, every load runs inside it: around(t, run) must call run once,
// for target t (to check for cancellation between loads, say).
func interleave(spec LoadSpec, targets []Target, perTarget, rounds int, serverCPU func() (time.Duration, error), around func(t Target, run func() error) error) ([]LoadResult, error) {
	rounds = max(rounds, 1)
	spec.N = max(perTarget/(2*rounds), 1)
	order := make([]int, 0, 2*len(targets))
	for i := range targets {
		order = append(order, i)
	}
	for i := range targets {
		order = append(order, len(targets)-1-i)
	}
	results := make([]LoadResult, len(targets))
	for range rounds {
		for _, i := range order {
			run := func() error {
				spec.Addr, spec.Conns = targets[i].Addr, targets[i].Conns
				cpu0, err := serverCPU()
				if err != nil {
					return err
				}
				res, err := LoadProcess(spec)
				if err != nil {
					return err
				}
				cpu1, err := serverCPU()
				res.ServerCPU = cpu1 - cpu0
				results[i].Add(res)
				return err
			}
			var err error
			if around != nil {
				err = around(targets[i], run)
			} else {
				err = run()
			}
			if err != nil {
				return nil, fmt.Errorf("load of %d connections on %s: %w", targets[i].Conns, targets[i].Addr, err)
			}
		}
	}
	return results, nil
}

// Sweep applies every one of loads (connection counts) to every address
// in addrs, about perTarget requests to each address under each load, all
// interleaved in the same rounds (see interleave: each (address, load)
// target is visited forward, then backward, every round, and its server
// CPU read from serverCPU around every load; around, if not nil, wraps
// every load and must call run once). It returns res[l][a], the result of
// loads[l] on addrs[a].
func Sweep(spec LoadSpec, addrs []string, loads []int, perTarget, rounds int, serverCPU func() (time.Duration, error), around func(t Target, run func() error) error) ([][]LoadResult, error) {
	targets := make([]Target, 0, len(loads)*len(addrs))
	for _, conns := range loads {
		for _, addr := range addrs {
			targets = append(targets, Target{Addr: addr, Conns: conns})
		}
	}
	flat, err := interleave(spec, targets, perTarget, rounds, serverCPU, around)
	if err != nil {
		return nil, err
	}
	res := make([][]LoadResult, len(loads))
	for l := range loads {
		res[l] = flat[l*len(addrs) : (l+1)*len(addrs)]
	}
	return res, nil
}

// Capacity returns the index of the load under which the server at
// column a of a [Sweep]'s results answered fastest: that rate is the
// server's capacity.
func Capacity(res [][]LoadResult, a int) int {
	best := 0
	for l := range res {
		if res[l][a].PerSecond() > res[best][a].PerSecond() {
			best = l
		}
	}
	return best
}

// CoresBusy is the CPU time the load generator and the server spent on
// the load, per second of its elapsed time: how many of the machine's
// cores the two kept busy.
func (r LoadResult) CoresBusy() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return (r.ClientCPU + r.ServerCPU).Seconds() / r.Elapsed.Seconds()
}

// CPUPerRequest is the CPU time per request of the load generator and of
// the server.
func (r LoadResult) CPUPerRequest() (client, server time.Duration) {
	n := time.Duration(max(r.Requests, 1))
	return r.ClientCPU / n, r.ServerCPU / n
}

// ProcessCPUOf returns the CPU time (user and system) of another process,
// read from /proc/PID/stat.
func ProcessCPUOf(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields after its closing parenthesis. utime and stime are
	// fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

// envLoad carries a LoadSpec to a child process started by LoadProcess.
const envLoad = "PRECERT_PERF_LOAD"

// RunLoadChild makes this process a load generator if LoadProcess started
// it: it runs the load in its environment, writes the LoadResult as JSON
// to stdout and exits. Otherwise it returns at once. Call it first thing
// in main (or TestMain) of any program that calls LoadProcess.
func RunLoadChild() {
	spec := os.Getenv(envLoad)
	if spec == "" {
		return
	}
	var s LoadSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "load generator: %s: %v\n", envLoad, err)
		os.Exit(2)
	}
	res, err := Load(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load generator: %v\n", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

// LoadProcess runs the load in a separate process (this executable again,
// which must call RunLoadChild first), so that client and server do not
// share a Go scheduler or garbage collector; they still share the
// machine's cores.
func LoadProcess(s LoadSpec) (LoadResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return LoadResult{}, err
	}
	spec, err := json.Marshal(s)
	if err != nil {
		return LoadResult{}, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envLoad+"="+string(spec))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return LoadResult{}, fmt.Errorf("load generator process: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var res LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return LoadResult{}, fmt.Errorf("load generator process printed %q: %v", stdout.Bytes(), err)
	}
	res.ClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, nil
}

// Load runs the load in this process. It speaks HTTP/1.1 over raw TCP so
// that the generator costs little, and the same for every server; every
// answer must be 200 with a body.
func Load(s LoadSpec) (LoadResult, error) {
	base, ok := new(big.Int).SetString(s.SerialBase, 10)
	if !ok || s.Serials < 1 || s.N < 1 || s.Conns < 1 {
		return LoadResult{}, fmt.Errorf("bad load spec: serial base %q, %d serials, %d requests, %d connections", s.SerialBase, s.Serials, s.N, s.Conns)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, s.Conns)
	errs := make([]error, s.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range s.Conns {
		wg.Go(func() { lat[c], errs[c] = loadConn(s, base, &next) })
	}
	wg.Wait()
	res := LoadResult{Elapsed: time.Since(start)}
	var all []time.Duration
	for c := range s.Conns {
		if errs[c] != nil {
			return res, errs[c]
		}
		all = append(all, lat[c]...)
	}
	res.Requests = len(all)
	slices.Sort(all)
	if len(all) > 0 {
		res.P50 = all[len(all)/2]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res, nil
}

func loadConn(s LoadSpec, base *big.Int, next *atomic.Int64) ([]time.Duration, error) {
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var lat []time.Duration
	serial := new(big.Int)
	for next.Add(1) <= int64(s.N) {
		serial.Add(base, big.NewInt(int64(rng.IntN(s.Serials))))
		path := "/" + url.QueryEscape(base64.StdEncoding.EncodeToString(OCSPRequest(s.NameHash, s.KeyHash, serial)))
		t0 := time.Now()
		w.WriteString("GET ")
		w.WriteString(path)
		w.WriteString(" HTTP/1.1\r\nHost: bench\r\n\r\n")
		if err := w.Flush(); err != nil {
			return nil, err
		}
		if err := readResponse(r); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// readResponse reads one HTTP/1.1 response that must be 200 with a
// Content-Length body, and discards it.
func readResponse(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		if line, err = r.ReadSlice('\n'); err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length <= 0 {
		return errors.New("response without a Content-Length body")
	}
	_, err = r.Discard(length)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

var oidSHA1 = []byte{0x2b, 0x0e, 0x03, 0x02, 0x1a} // 1.3.14.3.2.26, DER contents

// OCSPRequest is the DER OCSP request for one serial with a SHA-1 CertID,
// built by hand so that a load generator stays cheap.
func OCSPRequest(nameHash, keyHash []byte, serial *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(oidSHA1) })
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(nameHash)
						b.AddASN1OctetString(keyHash)
						b.AddASN1BigInt(serial)
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// ProcessCPU returns this process's CPU time so far, user and system.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
