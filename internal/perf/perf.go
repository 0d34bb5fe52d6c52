// Package perf holds the measurements behind the module's benchmarks and
// `precert bench`: each runs a fixed amount of work and returns how long it
// took, so that a Go benchmark (b.N operations) and the CLI (a calibrated
// count) measure with the same code. Every goal is a ratio to a baseline
// measured in the same run on the same machine; absolute figures on shared
// machines mean little.
package perf

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/recovery"
)

// Parallel runs fn(0..n-1) on workers goroutines and returns the elapsed
// time and the first error.
func Parallel(n, workers int, fn func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n) && first.Load() == nil; i = next.Add(1) - 1 {
				if err := fn(int(i)); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return time.Since(start), *p
	}
	return time.Since(start), nil
}

// RawIssuanceSigning signs what n issuances need — a P-256 precertificate
// (x509.CreateCertificate), its OCSP response (ocsp.CreateResponse) and
// the final certificate (x509.CreateCertificate) — on all cores, with no
// storage, no CT and no checks beyond what those functions do: the bound
// an issuance pipeline is measured against.
func RawIssuanceSigning(ca *testpki.CA, n int) (time.Duration, error) {
	leafKey, err := testpki.NewKey(ca.KeyType)
	if err != nil {
		return 0, err
	}
	sctExt := pkix.Extension{Id: issuance.OIDSCTList, Value: make([]byte, 240)}
	return Parallel(n, runtime.GOMAXPROCS(0), func(i int) error {
		serial := big.NewInt(int64(i + 1))
		tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com")
		tmpl.SerialNumber = serial
		tmpl.ExtraExtensions = []pkix.Extension{ctsubmit.PoisonExtension()}
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, leafKey.Public(), ca.IntermediateKey); err != nil {
			return err
		}
		now := time.Now()
		if _, err := ocsp.CreateResponse(ca.Intermediate, ca.Intermediate, ocsp.Response{Status: ocsp.Good, SerialNumber: serial, ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour)}, ca.IntermediateKey); err != nil {
			return err
		}
		tmpl.ExtraExtensions = []pkix.Extension{sctExt}
		_, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, leafKey.Public(), ca.IntermediateKey)
		return err
	})
}

// RawResponseSigning signs n OCSP responses with ocsp.CreateResponse on
// all cores. Like SweepEnv.Sweep, it starts from a collected heap.
func RawResponseSigning(ca *testpki.CA, n int) (time.Duration, error) {
	runtime.GC()
	return Parallel(n, runtime.GOMAXPROCS(0), func(i int) error {
		now := time.Now()
		_, err := ocsp.CreateResponse(ca.Intermediate, ca.Intermediate, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(int64(i + 1)),
			ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour)}, ca.IntermediateKey)
		return err
	})
}

// StoreOpener opens a fresh, empty store that validates the responses of
// issuers. Each benchmark that compares backends takes one per backend:
// [BoltOpener], [PostgresOpener].
type StoreOpener func(issuers []*x509.Certificate) (ocspstate.Store, error)

// BoltOpener opens the bbolt file at path with the given MaxBatch (zero
// for the default).
func BoltOpener(path string, maxBatch int) StoreOpener {
	return func(issuers []*x509.Certificate) (ocspstate.Store, error) {
		return ocspstate.Open(path, ocspstate.Options{Issuers: issuers, MaxBatch: maxBatch})
	}
}

// PostgresOpener opens a pgstore in schema of the database at dsn, with
// at most maxConns connections (zero for the default). The schema should
// be new: the caller drops it when done.
func PostgresOpener(dsn, schema string, maxConns int32) StoreOpener {
	return func(issuers []*x509.Certificate) (ocspstate.Store, error) {
		return pgstore.Open(context.Background(), dsn, pgstore.Options{Issuers: issuers, Schema: schema, MaxConns: maxConns})
	}
}

// IssueEnv is a pipeline on a store with two in-process CT logs reached
// without sockets.
type IssueEnv struct {
	Store    ocspstate.Store
	Pipeline *issuance.Pipeline
	req      *issuance.Request
	logs     []*ctlogtest.Log
}

// NewIssueEnv builds an IssueEnv on a bbolt store in dir.
func NewIssueEnv(ca *testpki.CA, dir string, lint bool) (*IssueEnv, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return NewIssueEnvWith(ca, BoltOpener(filepath.Join(dir, "issue.db"), 0), lint)
}

// NewIssueEnvWith builds an IssueEnv on the store open returns.
func NewIssueEnvWith(ca *testpki.CA, open StoreOpener, lint bool) (*IssueEnv, error) {
	store, err := open([]*x509.Certificate{ca.Intermediate})
	if err != nil {
		return nil, err
	}
	e := &IssueEnv{Store: store}
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	if err != nil {
		e.Close()
		return nil, err
	}
	var ctLogs []*ctsubmit.Log
	for _, name := range []string{"perf-a", "perf-b"} {
		l, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: name})
		if err != nil {
			e.Close()
			return nil, err
		}
		e.logs = append(e.logs, l)
		ctLogs = append(ctLogs, l.Log())
	}
	sub, err := ctsubmit.New(ctsubmit.Config{Logs: ctLogs, HTTPClient: &http.Client{Transport: ctlogtest.Transport(e.logs...)}})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Pipeline, err = issuance.New(issuance.Config{Store: store, Issuer: ca.Intermediate, IssuerKey: ca.IntermediateKey,
		Responses: signer, CT: sub, DisableLint: !lint})
	if err != nil {
		e.Close()
		return nil, err
	}
	key, err := testpki.NewKey(ca.KeyType)
	if err != nil {
		e.Close()
		return nil, err
	}
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com")
	e.req = &issuance.Request{
		PublicKey: key.Public(), Subject: tmpl.Subject, DNSNames: tmpl.DNSNames,
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, KeyUsage: tmpl.KeyUsage,
		ExtKeyUsage: tmpl.ExtKeyUsage, Policies: tmpl.Policies, OCSPServer: tmpl.OCSPServer,
		IssuingCertificateURL: tmpl.IssuingCertificateURL, CRLDistributionPoints: tmpl.CRLDistributionPoints,
	}
	return e, nil
}

// Issue runs n issuances on workers goroutines.
func (e *IssueEnv) Issue(ctx context.Context, n, workers int) (time.Duration, error) {
	return Parallel(n, workers, func(int) error {
		_, err := e.Pipeline.Issue(ctx, e.req)
		return err
	})
}

// Close releases the store and the logs.
func (e *IssueEnv) Close() {
	for _, l := range e.logs {
		l.Close()
	}
	e.Store.Close()
}

// StoreUpdates opens a bbolt store in dir with the given MaxBatch, reserves
// one record per writer, and has each writer renew its record's lease
// n/writers times. It returns the elapsed time and the commits made.
func StoreUpdates(ca *testpki.CA, dir string, writers, maxBatch, n int) (time.Duration, uint64, error) {
	open := BoltOpener(filepath.Join(dir, fmt.Sprintf("updates-%d-%d.db", writers, maxBatch)), maxBatch)
	var before ocspstate.BoltStats
	var bolt *ocspstate.BoltStore
	elapsed, err := storeUpdates(ca, open, writers, n, func(s ocspstate.Store) {
		bolt = s.(*ocspstate.BoltStore)
		before = bolt.Stats()
	})
	if err != nil {
		return elapsed, 0, err
	}
	after := bolt.Stats()
	if got := after.Writes - before.Writes; got != uint64(n) {
		return elapsed, 0, fmt.Errorf("perf: %d updates written, want %d", got, n)
	}
	return elapsed, after.Commits - before.Commits, nil
}

// StoreUpdatesWith is StoreUpdates on the store open returns, for any
// backend: it checks afterwards, from the records' versions, that exactly
// n updates were committed.
func StoreUpdatesWith(ca *testpki.CA, open StoreOpener, writers, n int) (time.Duration, error) {
	return storeUpdates(ca, open, writers, n, nil)
}

// storeUpdates runs the workload; started, if set, is called on the store
// just before the clock starts (the store is still open then).
func storeUpdates(ca *testpki.CA, open StoreOpener, writers, n int, started func(ocspstate.Store)) (time.Duration, error) {
	s, err := open([]*x509.Certificate{ca.Intermediate})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	ctx := context.Background()
	recs := make([]*ocspstate.Record, writers)
	now := time.Now()
	for i := range recs {
		recs[i] = &ocspstate.Record{
			Issuer: ocspstate.IssuerIDOf(ca.Intermediate), Serial: big.NewInt(int64(i + 1)), State: ocspstate.Reserved,
			IntentDER: make([]byte, 900), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "perf", Expires: now.Add(time.Hour)},
		}
		if err := s.Reserve(ctx, recs[i]); err != nil {
			return 0, err
		}
	}
	if started != nil {
		started(s)
	}
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	start := time.Now()
	for w := 0; w < writers; w++ {
		count := n / writers
		if w < n%writers {
			count++
		}
		wg.Add(1)
		go func(r *ocspstate.Record, count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				_, err := s.Update(ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
					r.Lease.Expires = r.Lease.Expires.Add(time.Millisecond)
					return nil
				})
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}(recs[w], count)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := first.Load(); p != nil {
		return elapsed, *p
	}
	var written uint64
	for _, r := range recs {
		got, err := s.Get(ctx, r.Issuer, r.Serial)
		if err != nil {
			return elapsed, err
		}
		written += got.Version - 1
	}
	if written != uint64(n) {
		return elapsed, fmt.Errorf("perf: %d updates committed, want %d", written, n)
	}
	return elapsed, nil
}

// SweepEnv is a store of CTFailed precertificates with real responses, for
// measuring sweeps.
type SweepEnv struct {
	Store   *ocspstate.BoltStore
	signer  *ocspstate.ResponseSigner
	ca      *testpki.CA
	sweeper *recovery.Sweeper
	total   int
	next    int
}

// NewSweepEnv opens (or builds, if it holds fewer) a store of total
// records in dir, with its own CA kept beside it so that the store can be
// reused by later runs.
func NewSweepEnv(dir string, total int) (*SweepEnv, error) {
	caDir := SweepCADir(dir)
	ca, err := testpki.Load(caDir)
	if err != nil {
		if ca, err = testpki.New(testpki.ECDSAP256); err != nil {
			return nil, err
		}
		os.RemoveAll(caDir)
		if err := os.MkdirAll(caDir, 0o700); err != nil {
			return nil, err
		}
		if err := ca.Save(caDir); err != nil {
			return nil, err
		}
		os.Remove(SweepStorePath(dir, total))
	}
	path := SweepStorePath(dir, total)
	opts := ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}}
	store, err := ocspstate.Open(path, opts)
	if err != nil {
		return nil, err
	}
	// A store kept from a run days ago has responses due, or expired: the
	// sweeps measured would find more than MakeDue made due. Build afresh.
	if due, err := store.Due(context.Background(), time.Now().Add(2*time.Hour), 1); err != nil || len(due) > 0 {
		store.Close()
		if err := os.Remove(path); err != nil {
			return nil, err
		}
		if store, err = ocspstate.Open(path, opts); err != nil {
			return nil, err
		}
	}
	e := &SweepEnv{Store: store, ca: ca, total: total}
	if e.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey}); err != nil {
		store.Close()
		return nil, err
	}
	counts, err := store.Counts(context.Background())
	if err == nil && counts[ocspstate.CTFailed] < total {
		err = e.fill(counts[ocspstate.CTFailed])
	}
	if err == nil {
		e.sweeper, err = recovery.New(recovery.Config{Store: store, Signers: []*ocspstate.ResponseSigner{e.signer}})
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	return e, nil
}

func (e *SweepEnv) fill(from int) error {
	ctx := context.Background()
	intent, precert := make([]byte, 600), make([]byte, 700)
	now := time.Now()
	_, err := Parallel(e.total-from, 64*runtime.GOMAXPROCS(0), func(j int) error {
		serial := big.NewInt(int64(from + j + 1))
		r := &ocspstate.Record{
			Issuer: e.signer.IssuerID(), Serial: serial, State: ocspstate.Reserved, IntentDER: intent,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "perf", Expires: now.Add(time.Hour)},
		}
		if err := e.Store.Reserve(ctx, r); err != nil {
			return err
		}
		resp, err := e.signer.SignRecord(r)
		if err != nil {
			return err
		}
		if _, err := e.Store.Update(ctx, r.Issuer, serial, func(r *ocspstate.Record) error {
			r.State, r.PrecertDER = ocspstate.Precert, precert
			r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
			r.SetResponse(resp)
			return nil
		}); err != nil {
			return err
		}
		_, err = e.Store.Update(ctx, r.Issuer, serial, func(r *ocspstate.Record) error {
			r.State, r.Lease = ocspstate.CTFailed, ocspstate.Lease{}
			return nil
		})
		return err
	})
	return err
}

// MakeDue re-signs n records as of 70 hours ago, so that they are due for
// re-signing now (and still valid); successive calls take successive
// records.
func (e *SweepEnv) MakeDue(n int) error {
	old, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey,
		Now: func() time.Time { return time.Now().Add(-70 * time.Hour) }})
	if err != nil {
		return err
	}
	start := e.next
	e.next = (e.next + n) % (e.total - n + 1)
	_, err = Parallel(n, 64*runtime.GOMAXPROCS(0), func(j int) error {
		_, err := e.Store.Update(context.Background(), e.signer.IssuerID(), big.NewInt(int64(start+j+1)), func(r *ocspstate.Record) error {
			resp, err := old.SignRecord(r)
			if err != nil {
				return err
			}
			r.SetResponse(resp)
			return nil
		})
		return err
	})
	return err
}

// Sweep runs one sweep and checks it refreshed exactly want records. It
// collects the heap first, as RawResponseSigning does, so that neither
// timed part pays for the garbage of the untimed setup (MakeDue, the other
// part): a collection still running when the sweep starts took a core from
// its first read of the index, doubling the time to find the due set.
func (e *SweepEnv) Sweep(ctx context.Context, want int) (*recovery.Report, error) {
	runtime.GC()
	rep, err := e.sweeper.Sweep(ctx)
	if err != nil {
		return nil, err
	}
	if rep.Due != want || rep.Count(recovery.ActionRefreshed) != want || len(rep.Errors) > 0 {
		return rep, fmt.Errorf("perf: sweep %s with %d errors, want %d refreshed", rep, len(rep.Errors), want)
	}
	return rep, nil
}

// WarmUp makes due records due and sweeps them, untimed: the state of a
// sweeper in service, which reads the index into the memory of its last
// read (recovery.Sweeper keeps it). A process's first sweep reads into
// fresh memory, a page fault per 4 KB: about 1 ms more per 10,000 due
// records here.
func (e *SweepEnv) WarmUp(ctx context.Context, due int) error {
	if err := e.MakeDue(due); err != nil {
		return err
	}
	_, err := e.Sweep(ctx, due)
	return err
}

// CA returns the environment's CA.
func (e *SweepEnv) CA() *testpki.CA { return e.ca }

// Close closes the store.
func (e *SweepEnv) Close() { e.Store.Close() }
