package responder

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/perf"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"golang.org/x/crypto/ocsp"
)

// The benchmark store: set up once per process, only when a benchmark
// needs it.
var bench struct {
	once    sync.Once
	err     error
	tmp     string // a temporary directory TestMain removes
	ca      *testpki.CA
	store   *ocspstate.BoltStore
	h       *Handler
	n       int
	base    *big.Int  // serials are base+0 … base+n-1
	size    int       // bytes of a stored response
	nameKey [2][]byte // SHA-1 issuer name and key hashes
}

func TestMain(m *testing.M) {
	perf.RunLoadChild() // BenchmarkResponder's load generator process
	code := m.Run()
	if bench.store != nil {
		bench.store.Close()
	}
	if bench.tmp != "" {
		os.RemoveAll(bench.tmp)
	}
	os.Exit(code)
}

// benchRecords is the store size: PRECERT_BENCH_RECORDS, default 1,000,000.
func benchRecords() (int, error) {
	s := os.Getenv("PRECERT_BENCH_RECORDS")
	if s == "" {
		return 1_000_000, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("PRECERT_BENCH_RECORDS=%q is not a positive integer", s)
	}
	return n, nil
}

// benchSetup opens the benchmark store (with CacheResponses), building it
// if needed, creates the Handler and has it validate every response once,
// which leaves its verdicts in the memos beside the responses: the steady
// state of a responder that has been up for a while (a response without
// one costs a signature verification; see BenchmarkServeHTTP/verify).
//
// The store lives in a temporary directory, or, when PRECERT_BENCH_DIR is
// set, in that directory together with its CA, and is reused by later runs
// while its responses stay valid (96 hours): building a million records
// takes minutes.
func benchSetup(b *testing.B) {
	bench.once.Do(func() { bench.err = setUpBench(b) })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
}

func setUpBench(b *testing.B) error {
	n, err := benchRecords()
	if err != nil {
		return err
	}
	bench.n = n
	bench.base = new(big.Int).Lsh(big.NewInt(1), 120)
	dir := os.Getenv("PRECERT_BENCH_DIR")
	if dir == "" {
		if bench.tmp, err = os.MkdirTemp("", "precert-responder-bench-"); err != nil {
			return err
		}
		dir = bench.tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, fmt.Sprintf("responder-%d.db", n))
	caDir := filepath.Join(dir, "responder-ca")
	if bench.ca, err = testpki.Load(caDir); err != nil {
		if bench.ca, err = testpki.New(testpki.ECDSAP256); err != nil {
			return err
		}
		os.RemoveAll(caDir)
		os.Remove(path)
		if err := os.MkdirAll(caDir, 0o700); err != nil {
			return err
		}
		if err := bench.ca.Save(caDir); err != nil {
			return err
		}
	}
	issuer := bench.ca.Intermediate
	if bench.nameKey[0], bench.nameKey[1], err = ocspstate.IssuerHashes(issuer, crypto.SHA1); err != nil {
		return err
	}
	open := func() (err error) {
		bench.store, err = ocspstate.Open(path, ocspstate.Options{Issuers: []*x509.Certificate{issuer}, CacheResponses: true})
		return err
	}
	if err := open(); err != nil {
		return err
	}
	if !benchStoreUsable() {
		bench.store.Close()
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := open(); err != nil {
			return err
		}
		start := time.Now()
		if err := fillStore(bench.store, bench.ca, bench.base, bench.n); err != nil {
			return err
		}
		b.Logf("built a %d-record bbolt store in %s", n, time.Since(start).Round(time.Second))
	}
	der, err := bench.store.Response(context.Background(), ocspstate.IssuerIDOf(issuer), bench.base)
	if err != nil {
		return err
	}
	bench.size = len(der)

	start := time.Now()
	if bench.h, err = New(bench.store, Options{Issuers: []*x509.Certificate{issuer}}); err != nil {
		return err
	}
	// Every response validated once, through the Handler, as in a
	// responder that has been up for a while: the verdicts are kept
	// beside the responses.
	err = perf.Warm(bench.h, bench.nameKey[0], bench.nameKey[1], bench.base, n)
	b.Logf("validated %d responses in %s", n, time.Since(start).Round(time.Second))
	return err
}

// benchStoreUsable reports whether the open store holds the n records,
// with responses valid for at least another two hours.
func benchStoreUsable() bool {
	ctx := context.Background()
	counts, err := bench.store.Counts(ctx)
	if err != nil || counts[ocspstate.Precert] != bench.n {
		return false
	}
	last := new(big.Int).Add(bench.base, big.NewInt(int64(bench.n-1)))
	for _, serial := range []*big.Int{bench.base, last} {
		der, err := bench.store.Response(ctx, ocspstate.IssuerIDOf(bench.ca.Intermediate), serial)
		if err != nil {
			return false
		}
		if _, err := ocspstate.Validate(der, bench.ca.Intermediate, ocspstate.Expect{Serial: serial, Now: time.Now().Add(2 * time.Hour)}); err != nil {
			return false
		}
	}
	return true
}

// fillStore takes the n records base … base+n-1 of ca's intermediate
// through Reserve and an Update to Precert with a real signed P-256
// response each, through the store's public API (so every response is
// validated on commit), with enough concurrent writers to fill the store's
// group commits. Intent and precertificate are small dummies: the store
// checks them for presence, and the responder never reads them. Serials
// are consecutive so that bbolt appends rather than splits pages at
// random.
func fillStore(store *ocspstate.BoltStore, ca *testpki.CA, base *big.Int, n int) error {
	issuer := ca.Intermediate
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: issuer, Key: ca.IntermediateKey})
	if err != nil {
		return err
	}
	id := ocspstate.IssuerIDOf(issuer)
	notBefore := time.Now().Add(-time.Hour).Truncate(time.Second)
	ctx := context.Background()
	_, err = perf.Parallel(n, 64, func(i int) error {
		serial := new(big.Int).Add(base, big.NewInt(int64(i)))
		err := store.Reserve(ctx, &ocspstate.Record{
			Issuer: id, Serial: serial, State: ocspstate.Reserved,
			IntentDER: []byte{0x30, 0x00}, NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "bench", Expires: time.Now().Add(time.Hour)},
		})
		if err != nil {
			return err
		}
		resp, err := signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
		if err != nil {
			return err
		}
		_, err = store.Update(ctx, id, serial, func(r *ocspstate.Record) error {
			r.State = ocspstate.Precert
			r.PrecertDER = []byte{0x30, 0x00}
			r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
			r.SetResponse(resp)
			return nil
		})
		return err
	})
	return err
}

// listen serves h on a fresh loopback listener with net/http defaults.
func listen(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// BenchmarkResponder measures GET requests for random serials over
// loopback against the Handler over a bbolt store of
// PRECERT_BENCH_RECORDS records (default 1,000,000; building it takes
// minutes: set PRECERT_BENCH_DIR to keep it for later runs, see
// benchSetup), and, in the same run, against a handler that writes a
// fixed body of the same size, and against a bare lookup (decode,
// Source.Response, write: the store's share). All face the same load
// generator (perf.LoadProcess: a separate process, as in precert bench)
// under every load of perf.Loads (16 to 512 keep-alive connections), all
// interleaved in the same rounds, b.N requests in all to each server
// under each load, and at least 100,000 (-benchtime 400000x is what
// BENCHMARKS.md reports; the default runs b.N=1, and so 100,000). It
// reports:
//
//   - capacity, each server's highest request rate over those loads:
//     req/s and fixed-req/s, their ratio (ratio, the ratio the issue's
//     goal names), the loads that gave them (conns, fixed-conns), the
//     bare lookup's (lookup-ratio), and, under the Handler's best load,
//     the cores kept busy by server and load generator together
//     (cores-busy, fixed-cores-busy) and the CPU per request of the
//     servers and of the load generator;
//   - the ratio of the two rates under each load (ratio-16c to
//     ratio-512c), which rises with the load until the Handler too keeps
//     the cores busy;
//   - latency, at 16 connections, below saturation: the 99th percentile
//     of each (p99-µs, fixed-p99-µs) and their ratio (p99-ratio).
//
// ns/op is the Handler's time per request at its capacity.
func BenchmarkResponder(b *testing.B) {
	benchSetup(b)
	fixed := perf.FixedBody(bench.size)
	// The store's share, for reference: decode the request, look the
	// response up in the same cache the Handler reads, write it; no
	// validation, no caching headers. Nothing that reads this store can
	// beat it.
	id := ocspstate.IssuerIDOf(bench.ca.Intermediate)
	lookup := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		err := decodeGET(escapedPath(r.URL), &req)
		var der []byte
		if err == nil {
			var ok bool
			if der, _, ok = bench.store.CachedResponse(id, &req.serial); !ok {
				err = fmt.Errorf("serial %s not cached", &req.serial)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Header().Set("Content-Length", strconv.Itoa(len(der)))
		w.Write(der)
	})
	const (
		handler = iota
		lookupOnly
		fixedBody
	)
	addrs := []string{handler: listen(b, bench.h), lookupOnly: listen(b, lookup), fixedBody: listen(b, fixed)}
	spec := perf.LoadSpec{NameHash: bench.nameKey[0], KeyHash: bench.nameKey[1],
		SerialBase: bench.base.String(), Serials: bench.n}
	if err := perf.WarmUp(spec, addrs); err != nil {
		b.Fatal(err)
	}
	selfCPU := func() (time.Duration, error) { return perf.ProcessCPU(), nil }
	// At least minRequests to each server under each load, whatever b.N:
	// fewer measure the start of the load generator's processes more than
	// the servers. The timer runs over the whole sweep, so that a
	// time-based -benchtime stops at the first b.N; ns/op is then set from
	// the Handler's capacity.
	const minRequests = 100_000
	n := max(b.N, minRequests)
	b.ResetTimer()
	res, err := perf.Sweep(spec, addrs, perf.Loads, n, min(max(n/40000, 1), 64), selfCPU, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	best, fixedBest := perf.Capacity(res, handler), perf.Capacity(res, fixedBody)
	ours, store, theirs := &res[best][handler], &res[perf.Capacity(res, lookupOnly)][lookupOnly], &res[fixedBest][fixedBody]
	b.ReportMetric(1e9/ours.PerSecond(), "ns/op")
	b.ReportMetric(ours.PerSecond(), "req/s")
	b.ReportMetric(theirs.PerSecond(), "fixed-req/s")
	b.ReportMetric(ours.PerSecond()/theirs.PerSecond(), "ratio")
	b.ReportMetric(float64(perf.Loads[best]), "conns")
	b.ReportMetric(float64(perf.Loads[fixedBest]), "fixed-conns")
	b.ReportMetric(store.PerSecond()/theirs.PerSecond(), "lookup-ratio")
	// Where the cores went, per request, under the Handler's best load:
	// this process (the servers) and the load generator's.
	theirs = &res[best][fixedBody]
	b.ReportMetric(ours.CoresBusy(), "cores-busy")
	b.ReportMetric(theirs.CoresBusy(), "fixed-cores-busy")
	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	client, server := ours.CPUPerRequest()
	b.ReportMetric(µs(server), "server-cpu-µs/req")
	b.ReportMetric(µs(client), "client-cpu-µs/req")
	client, server = theirs.CPUPerRequest()
	b.ReportMetric(µs(server), "fixed-server-cpu-µs/req")
	b.ReportMetric(µs(client), "fixed-client-cpu-µs/req")

	for l, conns := range perf.Loads {
		b.ReportMetric(res[l][handler].PerSecond()/res[l][fixedBody].PerSecond(), fmt.Sprintf("ratio-%dc", conns))
	}
	ours, theirs = &res[0][handler], &res[0][fixedBody] // perf.LatencyConns

	b.ReportMetric(float64(ours.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(theirs.P99.Microseconds()), "fixed-p99-µs")
	b.ReportMetric(float64(ours.P99)/float64(theirs.P99), "p99-ratio")
}

// BenchmarkServeHTTP measures the handler in process, without the
// network: the hot path (validation cache hit), and the extra work of a
// cache miss (signature verification).
func BenchmarkServeHTTP(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		b.Fatal(err)
	}
	src := &fakeSource{m: map[ocspstate.Key][]byte{}}
	const n = 1024
	urls := make([]*url.URL, n)
	for i := range n {
		serial := testpki.RandomSerial()
		resp, err := signer.Sign(serial, ocspstate.Good, time.Time{}, 0)
		if err != nil {
			b.Fatal(err)
		}
		src.put(ca.Intermediate, serial, resp.DER)
		escaped := "/" + b64Escaped(ocspRequest(b, serialCert(serial), ca.Intermediate, crypto.SHA1))
		if urls[i], err = url.ParseRequestURI(escaped); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("hit", func(b *testing.B) {
		h, err := New(src, Options{Issuers: []*x509.Certificate{ca.Intermediate}})
		if err != nil {
			b.Fatal(err)
		}
		serveGETs(b, h, urls)
	})
	b.Run("hit-bbolt", func(b *testing.B) {
		// The hot path a responder in service takes: a bbolt store with
		// CacheResponses, whose verdicts the Handler keeps beside the
		// responses (MemoSource).
		const n = 1024
		base := new(big.Int).Lsh(big.NewInt(1), 100)
		store, err := ocspstate.Open(filepath.Join(b.TempDir(), "hit.db"),
			ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}, CacheResponses: true})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if err := fillStore(store, ca, base, n); err != nil {
			b.Fatal(err)
		}
		h, err := New(store, Options{Issuers: []*x509.Certificate{ca.Intermediate}})
		if err != nil {
			b.Fatal(err)
		}
		nameHash, keyHash, err := ocspstate.IssuerHashes(ca.Intermediate, crypto.SHA1)
		if err != nil {
			b.Fatal(err)
		}
		if err := perf.Warm(h, nameHash, keyHash, base, n); err != nil {
			b.Fatal(err)
		}
		urls := make([]*url.URL, n)
		for i := range urls {
			der := perf.OCSPRequest(nameHash, keyHash, new(big.Int).Add(base, big.NewInt(int64(i))))
			if urls[i], err = url.ParseRequestURI("/" + b64Escaped(der)); err != nil {
				b.Fatal(err)
			}
		}
		serveGETs(b, h, urls)
	})
	b.Run("verify", func(b *testing.B) {
		// What a validation cache miss adds: the first request for a
		// response after a restart, or any request when the cache is
		// smaller than the responses in service, verifies its signature.
		var ders [][]byte
		for _, der := range src.m {
			ders = append(ders, der)
		}
		for i := 0; b.Loop(); i++ {
			der := ders[i%len(ders)]
			if _, err := ocspstate.Validate(der, ca.Intermediate, ocspstate.Expect{Serial: mustParseSerial(b, der)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// serveGETs has h answer GETs for urls in turn, on all cores, b.N in all,
// each of which must be 200.
func serveGETs(b *testing.B, h http.Handler, urls []*url.URL) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var w perf.DiscardWriter
		for pb.Next() {
			w.Reset()
			h.ServeHTTP(&w, &http.Request{Method: http.MethodGet, URL: urls[i%len(urls)], Header: http.Header{}})
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
			i++
		}
	})
}

func mustParseSerial(b *testing.B, der []byte) *big.Int {
	resp, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		b.Fatal(err)
	}
	return resp.SerialNumber
}

// BenchmarkDecodeGET measures the GET path decoder, one pass over the
// URL-encoded base64, against the two-pass reference FuzzBase64Segment
// holds it to (undo the quirks, then the standard library's decoder).
func BenchmarkDecodeGET(b *testing.B) {
	ca := testpki.Shared(b, testpki.ECDSAP256)
	segments := make([]string, 64)
	for i := range segments {
		segments[i] = b64Escaped(ocspRequest(b, serialCert(testpki.RandomSerial()), ca.Intermediate, crypto.SHA1))
	}
	for _, c := range []struct {
		name   string
		decode func(string) ([]byte, error)
	}{{"one-pass", decodeBase64Segment}, {"reference", referenceBase64Segment}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := c.decode(segments[i%len(segments)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
