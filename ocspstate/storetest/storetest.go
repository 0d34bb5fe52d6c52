// Package storetest is the conformance suite every [ocspstate.Store] must
// pass. A backend's own test calls [Run] with a [Factory]:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts ocspstate.Options) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "ocsp.db")
//			return func() (ocspstate.Store, error) { return ocspstate.Open(path, opts) }
//		})
//	}
//
// The suite covers: concurrent duplicate reservations (exactly one wins);
// every legal and every illegal transition; a closure error writing
// nothing; the due index's order and its upkeep on every write; response
// lookup by issuer and serial, including two issuers sharing a serial;
// 1,000 concurrent updates with no lost write (run it with -race); close and
// reopen keeping everything; cancelled contexts; [ocspstate.RefreshResponses]
// (through the store's own path when it is an [ocspstate.ResponseRefresher]);
// and, for an [ocspstate.DueReader], reading the index on from a record.
package storetest

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
)

// Opener opens the backing storage a Factory prepared. The suite calls it
// again after closing the store, and expects to find the same data.
type Opener func() (ocspstate.Store, error)

// Factory prepares fresh, empty backing storage for one test, configured
// with opts (issuers, clock, due policy, skew), and returns its Opener.
type Factory func(t *testing.T, opts ocspstate.Options) Opener

// Run runs the conformance suite against the stores f makes.
func Run(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ReserveAndGet", testReserveAndGet},
		{"ReserveRefusesInvalid", testReserveRefusesInvalid},
		{"ConcurrentDuplicateReserve", testConcurrentDuplicateReserve},
		{"NotFound", testNotFound},
		{"LegalTransitions", testLegalTransitions},
		{"IllegalTransitions", testIllegalTransitions},
		{"ClosureErrorWritesNothing", testClosureErrorWritesNothing},
		{"UnchangedWritesNothing", testUnchangedWritesNothing},
		{"StoreOwnsVersionAndTimes", testStoreOwnsVersionAndTimes},
		{"Leases", testLeases},
		{"DueIndex", testDueIndex},
		{"DueAfter", testDueAfter},
		{"RetireExpired", testRetireExpired},
		{"RefreshResponses", testRefreshResponses},
		{"ConcurrentRefreshes", testConcurrentRefreshes},
		{"RefreshChains", testRefreshChains},
		{"ConcurrentRefreshBatches", testConcurrentRefreshBatches},
		{"ResponseLookup", testResponseLookup},
		{"Counts", testCounts},
		{"Scan", testScan},
		{"ConcurrentUpdatesNoLostWrite", testConcurrentUpdates},
		{"CloseAndReopen", testCloseAndReopen},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newEnv(t, f))
		})
	}
}

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	clock  *Clock
	ca     *testpki.CA
	other  *testpki.CA // a second issuer
	signer *ocspstate.ResponseSigner
	otherS *ocspstate.ResponseSigner
	opener Opener
	store  ocspstate.Store
	ctx    context.Context
	serial atomic.Int64
}

const leaseOwner = "storetest-owner"

func newEnv(t *testing.T, f Factory) *env {
	t.Helper()
	e := &env{
		t:     t,
		clock: NewClock(time.Now().UTC().Truncate(time.Second)),
		ca:    testpki.Shared(t, testpki.ECDSAP256),
		other: testpki.Shared(t, testpki.RSA2048),
		ctx:   context.Background(),
	}
	e.serial.Store(1000)
	var err error
	e.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey, Now: e.clock.Now})
	require.NoError(t, err)
	e.otherS, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.other.Intermediate, Responder: e.other.Responder, Key: e.other.ResponderKey, Now: e.clock.Now})
	require.NoError(t, err)
	e.opener = f(t, ocspstate.Options{
		Issuers: []*x509.Certificate{e.ca.Intermediate, e.other.Intermediate},
		Now:     e.clock.Now,
	})
	e.open()
	t.Cleanup(func() {
		if e.store != nil {
			e.store.Close()
		}
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	s, err := e.opener()
	require.NoError(e.t, err, "opening the store")
	e.store = s
}

func (e *env) reopen() {
	e.t.Helper()
	require.NoError(e.t, e.store.Close())
	e.store = nil
	e.open()
}

func (e *env) issuer() ocspstate.IssuerID { return e.signer.IssuerID() }

func (e *env) nextSerial() *big.Int { return big.NewInt(e.serial.Add(1)) }

// reserved returns a valid Reserved record for a fresh serial.
func (e *env) reserved() *ocspstate.Record {
	now := e.clock.Now()
	serial := e.nextSerial()
	return &ocspstate.Record{
		Issuer:    e.issuer(),
		Serial:    serial,
		State:     ocspstate.Reserved,
		IntentDER: []byte("intent-" + serial.String()),
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(90 * 24 * time.Hour),
		Lease:     ocspstate.Lease{Owner: leaseOwner, Expires: now.Add(time.Minute)},
	}
}

func (e *env) reserve() *ocspstate.Record {
	e.t.Helper()
	r := e.reserved()
	require.NoError(e.t, e.store.Reserve(e.ctx, r))
	got, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
	require.NoError(e.t, err)
	return got
}

func (e *env) sign(r *ocspstate.Record, s *ocspstate.ResponseSigner) *ocspstate.Response {
	e.t.Helper()
	resp, err := s.SignRecord(r)
	require.NoError(e.t, err)
	return resp
}

// toPrecert is the closure the pipeline's step 5 runs: precert, OCSP
// enabled, a good response, state Precert.
func (e *env) toPrecert(resp *ocspstate.Response) func(*ocspstate.Record) error {
	return func(r *ocspstate.Record) error {
		r.State = ocspstate.Precert
		r.PrecertDER = []byte("precert-" + r.Serial.String())
		r.OCSP.Enabled = true
		r.OCSP.Status = ocspstate.Good
		r.SetResponse(resp)
		return nil
	}
}

func (e *env) goodResponse(r *ocspstate.Record) *ocspstate.Response {
	e.t.Helper()
	resp, err := e.signer.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(e.t, err)
	return resp
}

func (e *env) update(r *ocspstate.Record, fn func(*ocspstate.Record) error) *ocspstate.Record {
	e.t.Helper()
	got, err := e.store.Update(e.ctx, r.Issuer, r.Serial, fn)
	require.NoError(e.t, err)
	return got
}

// inState makes a record and drives it into st along legal transitions.
func (e *env) inState(st ocspstate.State) *ocspstate.Record {
	e.t.Helper()
	r := e.reserve()
	switch st {
	case ocspstate.Reserved:
		return r
	case ocspstate.Abandoned:
		return e.update(r, func(r *ocspstate.Record) error { r.State = ocspstate.Abandoned; return nil })
	}
	r = e.update(r, e.toPrecert(e.goodResponse(r)))
	switch st {
	case ocspstate.Precert:
		return r
	case ocspstate.CTFailed:
		return e.update(r, func(r *ocspstate.Record) error { r.State = ocspstate.CTFailed; r.Lease = ocspstate.Lease{}; return nil })
	}
	r = e.update(r, func(r *ocspstate.Record) error {
		r.State = ocspstate.SCTs
		r.SCTs = [][]byte{[]byte("sct-a"), []byte("sct-b")}
		return nil
	})
	if st == ocspstate.SCTs {
		return r
	}
	return e.update(r, func(r *ocspstate.Record) error {
		r.State = ocspstate.Issued
		r.FinalDER = []byte("final-" + r.Serial.String())
		r.Lease = ocspstate.Lease{}
		return nil
	})
}

func (e *env) requireUnchanged(before *ocspstate.Record) {
	e.t.Helper()
	after, err := e.store.Get(e.ctx, before.Issuer, before.Serial)
	require.NoError(e.t, err)
	require.True(e.t, before.Equal(after), "record changed:\nbefore %+v\nafter  %+v", before, after)
	// What is served, too: a store with a response cache answers Response
	// from it, and a refused write must not reach it either.
	served, err := e.store.Response(e.ctx, before.Issuer, before.Serial)
	if len(before.OCSP.ResponseDER) == 0 {
		require.ErrorIs(e.t, err, ocspstate.ErrNotFound, "no response stored, yet one is served")
		return
	}
	require.NoError(e.t, err)
	require.Equal(e.t, before.OCSP.ResponseDER, served, "the response served changed")
}

func testReserveAndGet(t *testing.T, e *env) {
	r := e.reserved()
	require.NoError(t, e.store.Reserve(e.ctx, r))
	got, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Version)
	require.Equal(t, ocspstate.Reserved, got.State)
	require.Equal(t, r.IntentDER, got.IntentDER)
	require.Equal(t, 0, got.Serial.Cmp(r.Serial))
	require.True(t, got.NotAfter.Equal(r.NotAfter))
	require.True(t, got.Created.Equal(e.clock.Now()), "Created %v, want %v", got.Created, e.clock.Now())
	require.True(t, got.Due.Equal(r.Lease.Expires), "a reservation is due when its lease expires: due %v, lease %v", got.Due, r.Lease.Expires)
	require.Equal(t, leaseOwner, got.Lease.Owner)

	// The caller's record is not aliased.
	got.IntentDER[0] ^= 0xff
	again, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, r.IntentDER, again.IntentDER)
}

func testReserveRefusesInvalid(t *testing.T, e *env) {
	for _, tc := range []struct {
		name string
		mut  func(*ocspstate.Record)
	}{
		{"nil serial", func(r *ocspstate.Record) { r.Serial = nil }},
		{"zero serial", func(r *ocspstate.Record) { r.Serial = big.NewInt(0) }},
		{"negative serial", func(r *ocspstate.Record) { r.Serial = big.NewInt(-5) }},
		{"21-octet serial", func(r *ocspstate.Record) { r.Serial = new(big.Int).Lsh(big.NewInt(1), 160) }},
		{"wrong state", func(r *ocspstate.Record) { r.State = ocspstate.Precert }},
		{"no intent", func(r *ocspstate.Record) { r.IntentDER = nil }},
		{"empty validity", func(r *ocspstate.Record) { r.NotAfter = r.NotBefore }},
		{"no lease", func(r *ocspstate.Record) { r.Lease = ocspstate.Lease{} }},
		{"precert before reservation", func(r *ocspstate.Record) { r.PrecertDER = []byte{1} }},
		{"OCSP before precert", func(r *ocspstate.Record) { r.OCSP.Enabled = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.reserved()
			tc.mut(r)
			err := e.store.Reserve(e.ctx, r)
			require.ErrorIs(t, err, ocspstate.ErrInvalidRecord)
			if r.Serial != nil && r.Serial.Sign() > 0 {
				_, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
				require.ErrorIs(t, err, ocspstate.ErrNotFound, "a refused reservation must write nothing")
			}
		})
	}
	// A 20-octet serial (159 bits, top bit clear) is the largest allowed.
	r := e.reserved()
	r.Serial = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))
	require.NoError(t, e.store.Reserve(e.ctx, r))
}

func testConcurrentDuplicateReserve(t *testing.T, e *env) {
	const racers = 32
	for round := 0; round < 5; round++ {
		r := e.reserved()
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				mine := r.Clone()
				mine.Lease.Owner = fmt.Sprintf("racer-%d", i)
				switch err := e.store.Reserve(e.ctx, mine); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ocspstate.ErrSerialExists):
					exists.Add(1)
				default:
					t.Errorf("racer %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "exactly one reservation wins")
		require.Equal(t, int32(racers-1), exists.Load())
	}
	// A serial stays used whatever happens to it: abandoned serials are
	// never reserved again (I3).
	a := e.inState(ocspstate.Abandoned)
	again := e.reserved()
	again.Serial = a.Serial
	require.ErrorIs(t, e.store.Reserve(e.ctx, again), ocspstate.ErrSerialExists)
}

func testNotFound(t *testing.T, e *env) {
	serial := e.nextSerial()
	_, err := e.store.Get(e.ctx, e.issuer(), serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	_, err = e.store.Update(e.ctx, e.issuer(), serial, func(*ocspstate.Record) error {
		t.Error("closure must not run for a missing record")
		return nil
	})
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	_, err = e.store.Response(e.ctx, e.issuer(), serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)

	// A negative serial never finds its positive twin.
	r := e.inState(ocspstate.Issued)
	neg := new(big.Int).Neg(r.Serial)
	_, err = e.store.Get(e.ctx, r.Issuer, neg)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	_, err = e.store.Response(e.ctx, r.Issuer, neg)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	_, err = e.store.Update(e.ctx, r.Issuer, neg, func(*ocspstate.Record) error { return nil })
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	_, err = e.store.Response(e.ctx, r.Issuer, big.NewInt(0))
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
}

func testLegalTransitions(t *testing.T, e *env) {
	for _, st := range ocspstate.States {
		t.Run("reach "+st.String(), func(t *testing.T) {
			r := e.inState(st)
			require.Equal(t, st, r.State)
			got, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
			require.NoError(t, err)
			require.True(t, r.Equal(got), "Update must return the record as stored")
			require.Equal(t, st.Published(), got.OCSP.Enabled)
		})
	}
	for _, st := range []ocspstate.State{ocspstate.Precert, ocspstate.SCTs, ocspstate.Issued, ocspstate.CTFailed} {
		t.Run("revoke in "+st.String(), func(t *testing.T) {
			r := e.inState(st)
			at := e.clock.Now().Add(-time.Minute)
			resp, err := e.signer.Sign(r.Serial, ocspstate.Revoked, at, ocspstate.ReasonKeyCompromise)
			require.NoError(t, err)
			got := e.update(r, func(r *ocspstate.Record) error {
				r.OCSP.Status = ocspstate.Revoked
				r.OCSP.RevokedAt = at
				r.OCSP.Reason = ocspstate.ReasonKeyCompromise
				r.SetResponse(resp)
				return nil
			})
			require.Equal(t, ocspstate.Revoked, got.OCSP.Status)
			stored, err := e.store.Response(e.ctx, r.Issuer, r.Serial)
			require.NoError(t, err)
			require.Equal(t, resp.DER, stored)
			// Refreshing a revoked response keeps it revoked.
			e.clock.Advance(time.Hour)
			again := e.sign(got, e.signer)
			got = e.update(got, func(r *ocspstate.Record) error { r.SetResponse(again); return nil })
			require.Equal(t, again.DER, got.OCSP.ResponseDER)
		})
	}
	t.Run("refresh response", func(t *testing.T) {
		r := e.inState(ocspstate.Issued)
		e.clock.Advance(2 * time.Hour)
		resp := e.sign(r, e.signer)
		got := e.update(r, func(r *ocspstate.Record) error { r.SetResponse(resp); return nil })
		require.True(t, got.OCSP.ThisUpdate.After(r.OCSP.ThisUpdate))
		require.Equal(t, r.Version+1, got.Version)
	})
	t.Run("renew lease", func(t *testing.T) {
		r := e.inState(ocspstate.Precert)
		exp := e.clock.Now().Add(10 * time.Minute)
		got := e.update(r, func(r *ocspstate.Record) error { r.Lease.Expires = exp; return nil })
		require.True(t, got.Lease.Expires.Equal(exp))
	})
	t.Run("delegated responder", func(t *testing.T) {
		r := e.reserved()
		r.Issuer = e.otherS.IssuerID()
		require.NoError(t, e.store.Reserve(e.ctx, r))
		resp, err := e.otherS.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
		require.NoError(t, err)
		got := e.update(r, e.toPrecert(resp))
		require.Equal(t, ocspstate.Precert, got.State)
	})
}

func testIllegalTransitions(t *testing.T, e *env) {
	type tc struct {
		name string
		from ocspstate.State
		mut  func(t *testing.T, r *ocspstate.Record)
		want error
	}
	var cases []tc
	// Every state pair the graph forbids.
	for _, from := range ocspstate.States {
		for _, to := range ocspstate.States {
			if ocspstate.CanTransition(from, to) {
				continue
			}
			cases = append(cases, tc{
				name: fmt.Sprintf("%s to %s", from, to),
				from: from,
				mut: func(t *testing.T, r *ocspstate.Record) {
					// Give the target state what it would need, so only
					// the graph can refuse it.
					r.State = to
				},
				want: ocspstate.ErrIllegalTransition,
			})
		}
	}
	signGood := func(t *testing.T, r *ocspstate.Record) *ocspstate.Response {
		resp, err := e.signer.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
		require.NoError(t, err)
		return resp
	}
	cases = append(cases, []tc{
		{"Precert without response", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
		}, ocspstate.ErrIllegalTransition},
		{"Precert without OCSPEnabled", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			resp := signGood(t, r)
			r.State, r.PrecertDER, r.OCSP.Status = ocspstate.Precert, []byte("p"), ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrIllegalTransition},
		{"Precert without precertificate", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			resp := signGood(t, r)
			r.State, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, true, ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrIllegalTransition},
		{"Precert with a response for another serial", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			resp, err := e.signer.Sign(new(big.Int).Add(r.Serial, big.NewInt(1)), ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrInvalidResponse},
		{"Precert with another issuer's response", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			resp, err := e.otherS.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrInvalidResponse},
		{"Precert with a stale response", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			old, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey,
				Validity: 8 * time.Hour, Now: func() time.Time { return e.clock.Now().Add(-9 * time.Hour) }})
			require.NoError(t, err)
			resp, err := old.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrInvalidResponse},
		{"Precert with a revoked response while good", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			resp, err := e.signer.Sign(r.Serial, ocspstate.Revoked, e.clock.Now(), 1)
			require.NoError(t, err)
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
			r.SetResponse(resp)
		}, ocspstate.ErrInvalidResponse},
		{"Precert with a 1-byte response", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			r.State, r.PrecertDER, r.OCSP.Enabled, r.OCSP.Status = ocspstate.Precert, []byte("p"), true, ocspstate.Good
			r.OCSP.ResponseDER = []byte{0x30}
		}, ocspstate.ErrInvalidResponse},
		{"revoke a reservation", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) {
			r.OCSP.Status, r.OCSP.RevokedAt = ocspstate.Revoked, e.clock.Now()
		}, ocspstate.ErrIllegalTransition},
		{"revoke an abandoned serial", ocspstate.Abandoned, func(t *testing.T, r *ocspstate.Record) {
			r.OCSP.Status, r.OCSP.RevokedAt = ocspstate.Revoked, e.clock.Now()
		}, ocspstate.ErrIllegalTransition},
		{"disable OCSP", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) { r.OCSP.Enabled = false }, ocspstate.ErrIllegalTransition},
		{"drop the response", ocspstate.CTFailed, func(t *testing.T, r *ocspstate.Record) { r.OCSP.ResponseDER = nil }, ocspstate.ErrIllegalTransition},
		{"status unknown", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) { r.OCSP.Status = 3 }, ocspstate.ErrIllegalTransition},
		{"revoke without a new response", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) {
			r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, e.clock.Now(), 1
		}, ocspstate.ErrInvalidResponse},
		{"revoke without a time", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) { r.OCSP.Status = ocspstate.Revoked }, ocspstate.ErrIllegalTransition},
		{"change serial", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.Serial = new(big.Int).Add(r.Serial, big.NewInt(1)) }, ocspstate.ErrIllegalTransition},
		{"change issuer", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.Issuer[0] ^= 1 }, ocspstate.ErrIllegalTransition},
		{"change intent", ocspstate.Reserved, func(t *testing.T, r *ocspstate.Record) { r.IntentDER = []byte("other") }, ocspstate.ErrIllegalTransition},
		{"change validity", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.NotAfter = r.NotAfter.Add(time.Hour) }, ocspstate.ErrIllegalTransition},
		{"change precert", ocspstate.SCTs, func(t *testing.T, r *ocspstate.Record) { r.PrecertDER = []byte("other") }, ocspstate.ErrIllegalTransition},
		{"change SCTs", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) { r.SCTs = [][]byte{[]byte("x")} }, ocspstate.ErrIllegalTransition},
		{"change final", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) { r.FinalDER = []byte("other") }, ocspstate.ErrIllegalTransition},
		{"SCTs without SCTs", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.State = ocspstate.SCTs }, ocspstate.ErrIllegalTransition},
		{"Issued without final", ocspstate.SCTs, func(t *testing.T, r *ocspstate.Record) { r.State = ocspstate.Issued }, ocspstate.ErrIllegalTransition},
		{"final before Issued", ocspstate.SCTs, func(t *testing.T, r *ocspstate.Record) { r.FinalDER = []byte("f") }, ocspstate.ErrIllegalTransition},
		{"SCTs in CTFailed", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) {
			r.State, r.SCTs = ocspstate.CTFailed, [][]byte{[]byte("s")}
		}, ocspstate.ErrIllegalTransition},
		{"set the version", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.Version += 5 }, ocspstate.ErrIllegalTransition},
		{"set the creation time", ocspstate.Precert, func(t *testing.T, r *ocspstate.Record) { r.Created = r.Created.Add(time.Hour) }, ocspstate.ErrIllegalTransition},
		{"move thisUpdate without a new response", ocspstate.Issued, func(t *testing.T, r *ocspstate.Record) {
			r.OCSP.ThisUpdate = r.OCSP.ThisUpdate.Add(time.Hour)
		}, ocspstate.ErrIllegalTransition},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.inState(c.from)
			_, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
				c.mut(t, r)
				return nil
			})
			require.ErrorIs(t, err, c.want)
			e.requireUnchanged(r)
		})
	}

	t.Run("unrevoke", func(t *testing.T) {
		r := e.inState(ocspstate.Issued)
		at := e.clock.Now()
		rev, err := e.signer.Sign(r.Serial, ocspstate.Revoked, at, 4)
		require.NoError(t, err)
		r = e.update(r, func(r *ocspstate.Record) error {
			r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, at, 4
			r.SetResponse(rev)
			return nil
		})
		good := e.goodResponse(r)
		for name, mut := range map[string]func(*ocspstate.Record){
			"back to good": func(r *ocspstate.Record) {
				r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Good, time.Time{}, 0
				r.SetResponse(good)
			},
			"change reason":   func(r *ocspstate.Record) { r.OCSP.Reason = 1 },
			"change time":     func(r *ocspstate.Record) { r.OCSP.RevokedAt = r.OCSP.RevokedAt.Add(-time.Hour) },
			"good response":   func(r *ocspstate.Record) { r.SetResponse(good) },
			"reason 7":        func(r *ocspstate.Record) { r.OCSP.Reason = 7 },
			"reason negative": func(r *ocspstate.Record) { r.OCSP.Reason = -1 },
		} {
			_, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error { mut(r); return nil })
			require.Error(t, err, name)
			e.requireUnchanged(r)
		}
	})
}

func testClosureErrorWritesNothing(t *testing.T, e *env) {
	r := e.inState(ocspstate.Precert)
	boom := errors.New("closure says no")
	resp := e.sign(r, e.signer)
	_, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		r.State = ocspstate.SCTs
		r.SCTs = [][]byte{[]byte("sct")}
		r.SetResponse(resp)
		r.Lease.Owner = "someone else"
		return boom
	})
	require.Same(t, boom, err, "the closure's error is returned as is")
	e.requireUnchanged(r)
}

func testUnchangedWritesNothing(t *testing.T, e *env) {
	r := e.inState(ocspstate.Issued)
	e.clock.Advance(time.Minute)
	got, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil })
	require.NoError(t, err)
	require.True(t, r.Equal(got))
	e.requireUnchanged(r)
}

func testStoreOwnsVersionAndTimes(t *testing.T, e *env) {
	r := e.inState(ocspstate.Precert)
	e.clock.Advance(time.Second)
	got := e.update(r, func(r *ocspstate.Record) error {
		r.Lease.Expires = r.Lease.Expires.Add(time.Minute)
		r.Updated = time.Unix(0, 0) // ignored
		r.Due = time.Unix(0, 0)     // ignored
		return nil
	})
	require.Equal(t, r.Version+1, got.Version)
	require.True(t, got.Updated.Equal(e.clock.Now()))
	require.True(t, got.Created.Equal(r.Created))
	require.False(t, got.Due.Equal(time.Unix(0, 0)))
}

func testLeases(t *testing.T, e *env) {
	r := e.inState(ocspstate.Precert)
	take := func(r *ocspstate.Record) error {
		if err := r.CheckLease("thief", e.clock.Now()); err != nil {
			return err
		}
		r.Lease = ocspstate.Lease{Owner: "thief", Expires: e.clock.Now().Add(time.Minute)}
		return nil
	}
	_, err := e.store.Update(e.ctx, r.Issuer, r.Serial, take)
	require.ErrorIs(t, err, ocspstate.ErrLeaseHeld)
	// The store refuses the takeover even when the closure forgets to check.
	_, err = e.store.Update(e.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		r.Lease = ocspstate.Lease{Owner: "thief", Expires: e.clock.Now().Add(time.Minute)}
		return nil
	})
	require.ErrorIs(t, err, ocspstate.ErrLeaseHeld)
	e.requireUnchanged(r)

	e.clock.Advance(2 * time.Minute)
	got, err := e.store.Update(e.ctx, r.Issuer, r.Serial, take)
	require.NoError(t, err, "an expired lease may be taken")
	require.Equal(t, "thief", got.Lease.Owner)
	// The original owner has lost it and cannot commit.
	_, err = e.store.Update(e.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		if err := r.CheckLease(leaseOwner, e.clock.Now()); err != nil {
			return err
		}
		r.State = ocspstate.CTFailed
		return nil
	})
	require.ErrorIs(t, err, ocspstate.ErrLeaseHeld)
	e.requireUnchanged(got)
}

func testDueIndex(t *testing.T, e *env) {
	base := e.clock.Now()
	// Reservations due at base+1m..base+5m, in scrambled order.
	var want []*big.Int
	for _, m := range []int{3, 1, 5, 2, 4} {
		r := e.reserved()
		r.Lease.Expires = base.Add(time.Duration(m) * time.Minute)
		require.NoError(t, e.store.Reserve(e.ctx, r))
		want = append(want, r.Serial)
	}
	order := []int{1, 3, 0, 4, 2} // indexes of want by due time
	// An abandoned record and an issued one with a fresh response are not due.
	e.inState(ocspstate.Abandoned)
	issued := e.inState(ocspstate.Issued)
	require.True(t, issued.Due.After(base.Add(24*time.Hour)), "a fresh 96h response is not due for a day: %v", issued.Due)

	due, err := e.store.Due(e.ctx, base.Add(10*time.Minute), 100)
	require.NoError(t, err)
	require.Len(t, due, 5)
	for _, r := range due {
		require.Nil(t, r.IntentDER, "Due leaves out the immutable fields")
		full, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
		require.NoError(t, err)
		r.IntentDER = full.IntentDER
		require.True(t, full.Equal(r), "and only them")
	}
	for i, r := range due {
		require.Equal(t, 0, r.Serial.Cmp(want[order[i]]), "position %d", i)
		if i > 0 {
			require.False(t, r.Due.Before(due[i-1].Due), "due order")
		}
	}
	limited, err := e.store.Due(e.ctx, base.Add(10*time.Minute), 2)
	require.NoError(t, err)
	require.Len(t, limited, 2)
	require.Equal(t, 0, limited[0].Serial.Cmp(want[1]))

	none, err := e.store.Due(e.ctx, base.Add(30*time.Second), 100)
	require.NoError(t, err)
	require.Empty(t, none)
	at3, err := e.store.Due(e.ctx, base.Add(3*time.Minute), 100)
	require.NoError(t, err)
	require.Len(t, at3, 3, "due at or before now")

	// Renewing the earliest lease moves it to the back of the index.
	first := due[0]
	renewed := e.update(first, func(r *ocspstate.Record) error { r.Lease.Expires = base.Add(8 * time.Minute); return nil })
	require.True(t, renewed.Due.Equal(base.Add(8*time.Minute)))
	due, err = e.store.Due(e.ctx, base.Add(10*time.Minute), 100)
	require.NoError(t, err)
	require.Len(t, due, 5, "the index holds one entry per record, not one per write")
	require.Equal(t, 0, due[4].Serial.Cmp(first.Serial))
	e.requireDueIsCurrent(due)

	// Abandoning removes it from the index.
	e.update(due[0], func(r *ocspstate.Record) error { r.State = ocspstate.Abandoned; return nil })
	due, err = e.store.Due(e.ctx, base.Add(10*time.Minute), 100)
	require.NoError(t, err)
	require.Len(t, due, 4)

	// An issued record becomes due when its response needs re-signing,
	// and leaves the index once refreshed.
	later := issued.Due.Add(time.Second)
	due, err = e.store.Due(e.ctx, later, 100)
	require.NoError(t, err)
	require.True(t, containsSerial(due, issued.Serial), "issued record due for refresh at %v", issued.Due)
	e.requireDueIsCurrent(due)
	e.clock.Advance(later.Sub(e.clock.Now()))
	fresh := e.sign(issued, e.signer)
	refreshed := e.update(issued, func(r *ocspstate.Record) error { r.SetResponse(fresh); return nil })
	require.True(t, refreshed.Due.After(later))
	due, err = e.store.Due(e.ctx, later, 100)
	require.NoError(t, err)
	require.False(t, containsSerial(due, issued.Serial))

	// A write that keeps the due time (a precertificate gets its SCTs
	// under the same lease) still shows in what Due returns.
	pre := e.inState(ocspstate.Precert)
	moved := e.update(pre, func(r *ocspstate.Record) error {
		r.State, r.SCTs = ocspstate.SCTs, [][]byte{[]byte("sct-a"), []byte("sct-b")}
		return nil
	})
	require.True(t, moved.Due.Equal(pre.Due), "same lease, same due time")
	all, err := e.store.Due(e.ctx, pre.Due, 1000)
	require.NoError(t, err)
	require.True(t, containsSerial(all, pre.Serial))
	for _, r := range all {
		if r.Serial.Cmp(pre.Serial) == 0 {
			require.Equal(t, ocspstate.SCTs, r.State)
		}
	}
	e.requireDueIsCurrent(all)
}

// requireDueIsCurrent checks that each record Due returned is the record
// as stored now, but for the immutable fields: whatever a store keeps in
// its due index must follow every write.
func (e *env) requireDueIsCurrent(due []*ocspstate.Record) {
	e.t.Helper()
	for _, r := range due {
		full, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
		require.NoError(e.t, err)
		full.IntentDER, full.PrecertDER, full.SCTs, full.FinalDER = nil, nil, nil, nil
		require.True(e.t, full.Equal(r), "Due returned serial %v at version %d, the store holds version %d", r.Serial, r.Version, full.Version)
	}
}

func testRetireExpired(t *testing.T, e *env) {
	// A certificate expiring 80 hours from now: its 96-hour response is
	// due for re-signing before that, so it sits in the due index.
	r := e.reserved()
	r.NotAfter = e.clock.Now().Add(80 * time.Hour)
	require.NoError(t, e.store.Reserve(e.ctx, r))
	r = e.update(r, e.toPrecert(e.goodResponse(r)))
	r = e.update(r, func(r *ocspstate.Record) error { r.State = ocspstate.CTFailed; r.Lease = ocspstate.Lease{}; return nil })
	require.False(t, r.Due.IsZero())
	require.True(t, r.Due.Before(r.NotAfter))

	// The sweeper was away until after expiry: the record is still due.
	e.clock.Advance(81 * time.Hour)
	due, err := e.store.Due(e.ctx, e.clock.Now(), 100)
	require.NoError(t, err)
	require.True(t, containsSerial(due, r.Serial))

	// Touching it (an Update that changes nothing) retires it from the
	// index without signing anything.
	got, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil })
	require.NoError(t, err)
	require.True(t, got.Due.IsZero(), "service ended: never due again")
	require.Equal(t, r.Version+1, got.Version)
	require.Equal(t, r.OCSP.ResponseDER, got.OCSP.ResponseDER)
	due, err = e.store.Due(e.ctx, e.clock.Now(), 100)
	require.NoError(t, err)
	require.False(t, containsSerial(due, r.Serial))
	// A second touch writes nothing.
	again, err := e.store.Update(e.ctx, r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil })
	require.NoError(t, err)
	require.Equal(t, got.Version, again.Version)
}

func containsSerial(rs []*ocspstate.Record, serial *big.Int) bool {
	for _, r := range rs {
		if r.Serial.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

func testResponseLookup(t *testing.T, e *env) {
	// Two issuers, one serial.
	serial := e.nextSerial()
	var resps [][]byte
	for _, s := range []*ocspstate.ResponseSigner{e.signer, e.otherS} {
		r := e.reserved()
		r.Issuer, r.Serial = s.IssuerID(), serial
		require.NoError(t, e.store.Reserve(e.ctx, r))
		resp, err := s.Sign(serial, ocspstate.Good, time.Time{}, 0)
		require.NoError(t, err)
		e.update(r, e.toPrecert(resp))
		resps = append(resps, resp.DER)
	}
	require.False(t, bytes.Equal(resps[0], resps[1]))
	for i, s := range []*ocspstate.ResponseSigner{e.signer, e.otherS} {
		got, err := e.store.Response(e.ctx, s.IssuerID(), serial)
		require.NoError(t, err)
		require.Equal(t, resps[i], got)
	}
	// No response before Precert, nor after abandonment.
	res := e.inState(ocspstate.Reserved)
	_, err := e.store.Response(e.ctx, res.Issuer, res.Serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	ab := e.inState(ocspstate.Abandoned)
	_, err = e.store.Response(e.ctx, ab.Issuer, ab.Serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	// The lookup follows refreshes.
	iss := e.inState(ocspstate.Issued)
	e.clock.Advance(time.Hour)
	fresh := e.sign(iss, e.signer)
	e.update(iss, func(r *ocspstate.Record) error { r.SetResponse(fresh); return nil })
	got, err := e.store.Response(e.ctx, iss.Issuer, iss.Serial)
	require.NoError(t, err)
	require.Equal(t, fresh.DER, got)
}

func testCounts(t *testing.T, e *env) {
	want := map[ocspstate.State]int{}
	for i, st := range ocspstate.States {
		for j := 0; j <= i; j++ {
			e.inState(st)
			want[st]++
		}
	}
	got, err := e.store.Counts(e.ctx)
	require.NoError(t, err)
	for _, st := range ocspstate.States {
		require.Equal(t, want[st], got[st], "count of %s", st)
	}
}

func testScan(t *testing.T, e *env) {
	const n = 2345 // more than one page in any sane implementation
	seen := map[string]bool{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		r := e.reserved()
		seen[r.Serial.String()] = false
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			require.NoError(t, e.store.Reserve(e.ctx, r))
		}()
	}
	wg.Wait()
	count := 0
	require.NoError(t, e.store.Scan(e.ctx, func(r *ocspstate.Record) error {
		count++
		k := r.Serial.String()
		already, ok := seen[k]
		require.True(t, ok, "unexpected serial %s", k)
		require.False(t, already, "serial %s seen twice", k)
		seen[k] = true
		return nil
	}))
	require.Equal(t, n, count)
	stop := errors.New("stop")
	calls := 0
	err := e.store.Scan(e.ctx, func(*ocspstate.Record) error { calls++; return stop })
	require.Same(t, stop, err)
	require.Equal(t, 1, calls)
}

func testConcurrentUpdates(t *testing.T, e *env) {
	const writers = 1000
	// All on one record: the hardest case for compare-and-swap.
	hot := e.inState(ocspstate.Precert)
	start := hot.Lease.Expires
	// Spread over several records too.
	var cold []*ocspstate.Record
	for i := 0; i < 10; i++ {
		cold = append(cold, e.inState(ocspstate.Precert))
	}
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := e.store.Update(e.ctx, hot.Issuer, hot.Serial, func(r *ocspstate.Record) error {
				r.Lease.Expires = r.Lease.Expires.Add(time.Second)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			c := cold[i%len(cold)]
			_, err := e.store.Update(e.ctx, c.Issuer, c.Serial, func(r *ocspstate.Record) error {
				r.Lease.Expires = r.Lease.Expires.Add(time.Second)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := e.store.Get(e.ctx, hot.Issuer, hot.Serial)
	require.NoError(t, err)
	require.Equal(t, hot.Version+writers, got.Version, "every update committed exactly once")
	require.True(t, got.Lease.Expires.Equal(start.Add(writers*time.Second)), "no lost write: %v", got.Lease.Expires.Sub(start))
	for _, c := range cold {
		got, err := e.store.Get(e.ctx, c.Issuer, c.Serial)
		require.NoError(t, err)
		n := got.Version - c.Version
		require.Equal(t, writers/len(cold), int(n))
		require.True(t, got.Lease.Expires.Equal(c.Lease.Expires.Add(time.Duration(n)*time.Second)))
	}
}

func testCloseAndReopen(t *testing.T, e *env) {
	var all []*ocspstate.Record
	for _, st := range ocspstate.States {
		for i := 0; i < 3; i++ {
			all = append(all, e.inState(st))
		}
	}
	counts, err := e.store.Counts(e.ctx)
	require.NoError(t, err)
	due, err := e.store.Due(e.ctx, e.clock.Now().Add(365*24*time.Hour), 1000)
	require.NoError(t, err)

	e.reopen()

	for _, r := range all {
		e.requireUnchanged(r)
		resp, err := e.store.Response(e.ctx, r.Issuer, r.Serial)
		if r.State.Published() {
			require.NoError(t, err)
			require.Equal(t, r.OCSP.ResponseDER, resp)
		} else {
			require.ErrorIs(t, err, ocspstate.ErrNotFound)
		}
	}
	counts2, err := e.store.Counts(e.ctx)
	require.NoError(t, err)
	require.Equal(t, counts, counts2)
	due2, err := e.store.Due(e.ctx, e.clock.Now().Add(365*24*time.Hour), 1000)
	require.NoError(t, err)
	require.Equal(t, len(due), len(due2))
	for i := range due {
		require.True(t, due[i].Equal(due2[i]))
	}
	// And it keeps working.
	e.inState(ocspstate.Issued)
}

func testCancelledContext(t *testing.T, e *env) {
	r := e.inState(ocspstate.Precert)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := e.reserved()
	require.ErrorIs(t, e.store.Reserve(ctx, fresh), context.Canceled)
	_, err := e.store.Get(e.ctx, fresh.Issuer, fresh.Serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound, "a cancelled reservation writes nothing")
	_, err = e.store.Get(ctx, r.Issuer, r.Serial)
	require.ErrorIs(t, err, context.Canceled)
	_, err = e.store.Update(ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		r.Lease.Expires = r.Lease.Expires.Add(time.Hour)
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	e.requireUnchanged(r)
	_, err = e.store.Due(ctx, e.clock.Now(), 10)
	require.ErrorIs(t, err, context.Canceled)
	_, err = e.store.Response(ctx, r.Issuer, r.Serial)
	require.ErrorIs(t, err, context.Canceled)
	_, err = e.store.Counts(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, e.store.Scan(ctx, func(*ocspstate.Record) error { return nil }), context.Canceled)
}

func testClosed(t *testing.T, e *env) {
	r := e.inState(ocspstate.Precert)
	require.NoError(t, e.store.Close())
	require.NoError(t, e.store.Close(), "Close is idempotent")
	_, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
	require.ErrorIs(t, err, ocspstate.ErrClosed)
	require.ErrorIs(t, e.store.Reserve(e.ctx, e.reserved()), ocspstate.ErrClosed)
	_, err = e.store.Update(e.ctx, r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil })
	require.ErrorIs(t, err, ocspstate.ErrClosed)
	_, err = e.store.Response(e.ctx, r.Issuer, r.Serial)
	require.ErrorIs(t, err, ocspstate.ErrClosed)
	e.open()
}

// testDueAfter reads the due index in pieces with DueAfter, for stores
// that are DueReaders.
func testDueAfter(t *testing.T, e *env) {
	dr, ok := e.store.(ocspstate.DueReader)
	if !ok {
		t.Skipf("%T is not an ocspstate.DueReader: nothing to test", e.store)
	}
	base := e.clock.Now()
	// Seven reservations: three share a due time (ordered by key), the
	// others are scrambled.
	var all []*big.Int
	for _, m := range []int{4, 2, 2, 2, 6, 1, 5} {
		r := e.reserved()
		r.Lease.Expires = base.Add(time.Duration(m) * time.Minute)
		require.NoError(t, e.store.Reserve(e.ctx, r))
		all = append(all, r.Serial)
	}
	now := base.Add(10 * time.Minute)
	want, err := e.store.Due(e.ctx, now, 100)
	require.NoError(t, err)
	require.Len(t, want, len(all))

	// Each pass reads first into memory the pass before used (nil, too
	// small, then large enough): entries are copied into whatever buf
	// offers.
	var buf []byte
	for pass, limit := range []int{1, 2, 3, 7, 100, 100, 3} {
		var got []*ocspstate.Record
		var last *ocspstate.DueEntry
		size := 0
		for reads := 0; ; reads++ {
			require.Less(t, reads, 20, "DueAfter never ran out")
			b := buf // only for the first read: later ones would overwrite entries in use
			if last != nil {
				b = nil
			}
			page, err := dr.DueAfter(e.ctx, now, last, limit, b)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), limit)
			if len(page) == 0 {
				break
			}
			for i := range page {
				size += page[i].Size()
				r, err := page[i].Record()
				require.NoError(t, err)
				require.Equal(t, r.Issuer, page[i].Issuer())
				require.Equal(t, 0, r.Serial.Cmp(page[i].Serial()))
				got = append(got, r)
			}
			last = &page[len(page)-1]
		}
		require.Len(t, got, len(want), "pass %d, limit %d: each due record once", pass, limit)
		for i := range want {
			require.True(t, want[i].Equal(got[i]), "pass %d, limit %d, position %d: DueAfter reads in Due's order", pass, limit, i)
		}
		if pass == 0 {
			buf = make([]byte, 10) // too small: the rest goes to new memory
		} else {
			buf = make([]byte, 0, size)
		}
		for i := range buf[:cap(buf)] {
			buf[:cap(buf)][i] = 0xee // whatever was there before
		}
	}

	// Reading on from an entry whose record has since moved (its lease
	// renewed, due later) still continues from where it was.
	first, err := dr.DueAfter(e.ctx, now, nil, 1, nil)
	require.NoError(t, err)
	require.Len(t, first, 1)
	moved, err := first[0].Record()
	require.NoError(t, err)
	e.update(moved, func(r *ocspstate.Record) error { r.Lease.Expires = base.Add(9 * time.Minute); return nil })
	restEntries, err := dr.DueAfter(e.ctx, now, &first[0], 100, nil)
	require.NoError(t, err)
	require.Len(t, restEntries, len(all), "the six after it, and the moved record at its new place")
	var rest []*ocspstate.Record
	for i := range restEntries {
		r, err := restEntries[i].Record()
		require.NoError(t, err)
		rest = append(rest, r)
	}
	require.Equal(t, 0, rest[len(rest)-1].Serial.Cmp(moved.Serial))
	none, err := dr.DueAfter(e.ctx, base.Add(30*time.Second), nil, 100, nil)
	require.NoError(t, err)
	require.Empty(t, none)
	e.requireDueIsCurrent(rest)
}

// testRefreshResponses checks RefreshResponses: each element committed or
// refused on its own, a refusal writing nothing.
func testRefreshResponses(t *testing.T, e *env) {
	issued := e.inState(ocspstate.Issued)
	failed := e.inState(ocspstate.CTFailed)
	precert := e.inState(ocspstate.Precert)
	reserved := e.inState(ocspstate.Reserved)
	revoked := e.inState(ocspstate.Issued)
	at := e.clock.Now().Add(-time.Minute)
	rev, err := e.signer.Sign(revoked.Serial, ocspstate.Revoked, at, ocspstate.ReasonKeyCompromise)
	require.NoError(t, err)
	revoked = e.update(revoked, func(r *ocspstate.Record) error {
		r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, at, ocspstate.ReasonKeyCompromise
		r.SetResponse(rev)
		return nil
	})
	other := e.inState(ocspstate.Issued) // responses signed for it go to the wrong records
	stale, early := e.inState(ocspstate.CTFailed), e.inState(ocspstate.CTFailed)

	e.clock.Advance(2 * time.Hour)
	fresh := func(r *ocspstate.Record) *ocspstate.Response { return e.sign(r, e.signer) }
	issuedResp, failedResp, precertResp := fresh(issued), fresh(failed), fresh(precert)
	signedAt := func(d time.Duration) *ocspstate.ResponseSigner {
		s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.ca.Intermediate, Key: e.ca.IntermediateKey,
			Now: func() time.Time { return e.clock.Now().Add(d) }})
		require.NoError(t, err)
		return s
	}
	refs := []ocspstate.Refresh{
		{Issuer: issued.Issuer, Serial: issued.Serial, Prev: issued.OCSP.ResponseDER, Response: issuedResp},
		{Issuer: failed.Issuer, Serial: failed.Serial, Prev: failed.OCSP.ResponseDER, Response: failedResp},
		// The same record twice: the second no longer replaces what is stored.
		{Issuer: failed.Issuer, Serial: failed.Serial, Prev: failed.OCSP.ResponseDER, Response: fresh(failed)},
		{Issuer: precert.Issuer, Serial: precert.Serial, Prev: precert.OCSP.ResponseDER, Response: precertResp},
		// A stale Prev.
		{Issuer: other.Issuer, Serial: other.Serial, Prev: issued.OCSP.ResponseDER, Response: fresh(other)},
		// Another serial's response.
		{Issuer: other.Issuer, Serial: other.Serial, Prev: other.OCSP.ResponseDER, Response: issuedResp},
		// good for a revoked record.
		{Issuer: revoked.Issuer, Serial: revoked.Serial, Prev: revoked.OCSP.ResponseDER, Response: e.goodResponse(revoked)},
		// No OCSP yet.
		{Issuer: reserved.Issuer, Serial: reserved.Serial, Prev: nil, Response: e.goodResponse(reserved)},
		// Past its nextUpdate, and thisUpdate an hour ahead of the store's clock.
		{Issuer: stale.Issuer, Serial: stale.Serial, Prev: stale.OCSP.ResponseDER, Response: e.sign(stale, signedAt(-200*time.Hour))},
		{Issuer: early.Issuer, Serial: early.Serial, Prev: early.OCSP.ResponseDER, Response: e.sign(early, signedAt(time.Hour))},
		// No such record, and nothing to store.
		{Issuer: e.issuer(), Serial: e.nextSerial(), Response: issuedResp},
		{Issuer: other.Issuer, Serial: other.Serial, Prev: other.OCSP.ResponseDER},
	}
	want := []error{nil, nil, ocspstate.ErrResponseChanged, nil, ocspstate.ErrResponseChanged, ocspstate.ErrInvalidRecord,
		ocspstate.ErrInvalidRecord, ocspstate.ErrIllegalTransition, ocspstate.ErrInvalidRecord, ocspstate.ErrInvalidRecord,
		ocspstate.ErrNotFound, ocspstate.ErrInvalidRecord}
	errs := ocspstate.RefreshResponses(e.ctx, e.store, refs)
	require.Len(t, errs, len(refs))
	for i, err := range errs {
		if want[i] == nil {
			require.NoError(t, err, "refresh %d", i)
		} else {
			require.ErrorIs(t, err, want[i], "refresh %d", i)
		}
	}
	for _, r := range []*ocspstate.Record{other, revoked, reserved, stale, early} {
		e.requireUnchanged(r)
	}
	for _, c := range []struct {
		before *ocspstate.Record
		resp   *ocspstate.Response
	}{{issued, issuedResp}, {failed, failedResp}, {precert, precertResp}} {
		after, err := e.store.Get(e.ctx, c.before.Issuer, c.before.Serial)
		require.NoError(t, err)
		require.Equal(t, c.resp.DER, after.OCSP.ResponseDER)
		require.True(t, after.OCSP.ThisUpdate.Equal(c.resp.ThisUpdate) && after.OCSP.NextUpdate.Equal(c.resp.NextUpdate))
		require.Equal(t, c.before.Version+1, after.Version)
		require.True(t, after.Updated.Equal(e.clock.Now()), "Updated is the store's clock")
		if !c.before.State.InFlight() { // in flight, the lease decides
			require.True(t, after.Due.After(c.before.Due), "a fresh response is due later")
		}
		// Nothing else changed, immutable fields included.
		expect := c.before.Clone()
		expect.SetResponse(c.resp)
		expect.Version, expect.Updated, expect.Due = after.Version, after.Updated, after.Due
		require.True(t, expect.Equal(after), "only the response changed:\nwant %+v\ngot  %+v", expect, after)
		served, err := e.store.Response(e.ctx, c.before.Issuer, c.before.Serial)
		require.NoError(t, err)
		require.Equal(t, c.resp.DER, served)
	}
	// The due index follows.
	due, err := e.store.Due(e.ctx, e.clock.Now().Add(200*time.Hour), 1000)
	require.NoError(t, err)
	e.requireDueIsCurrent(due)
	e.reopen()
	after, err := e.store.Get(e.ctx, issued.Issuer, issued.Serial)
	require.NoError(t, err)
	require.Equal(t, issuedResp.DER, after.OCSP.ResponseDER, "durable")

	require.Empty(t, ocspstate.RefreshResponses(e.ctx, e.store, nil))
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	errs = ocspstate.RefreshResponses(cancelled, e.store, []ocspstate.Refresh{
		{Issuer: failed.Issuer, Serial: failed.Serial, Prev: failedResp.DER, Response: fresh(failed)},
	})
	require.ErrorIs(t, errs[0], context.Canceled)
}

// testRefreshChains checks the elements of a batch that depend on each
// other or on nothing: a response already stored (nothing written), a
// record refreshed twice in one batch, the second from the first's
// response (both written, in order), and a serial no record can have.
func testRefreshChains(t *testing.T, e *env) {
	same, twice := e.inState(ocspstate.Issued), e.inState(ocspstate.CTFailed)
	e.clock.Advance(time.Hour)
	first := e.sign(twice, e.signer)
	e.clock.Advance(time.Minute)
	second := e.sign(twice, e.signer)
	stored := &ocspstate.Response{DER: same.OCSP.ResponseDER, ThisUpdate: same.OCSP.ThisUpdate, NextUpdate: same.OCSP.NextUpdate}
	errs := ocspstate.RefreshResponses(e.ctx, e.store, []ocspstate.Refresh{
		{Issuer: same.Issuer, Serial: same.Serial, Prev: same.OCSP.ResponseDER, Response: stored},
		{Issuer: twice.Issuer, Serial: twice.Serial, Prev: twice.OCSP.ResponseDER, Response: first},
		{Issuer: twice.Issuer, Serial: twice.Serial, Prev: first.DER, Response: second},
		{Issuer: e.issuer(), Serial: big.NewInt(-5), Response: first},
	})
	require.Len(t, errs, 4)
	require.NoError(t, errs[0], "already stored")
	require.NoError(t, errs[1], "first of two")
	require.NoError(t, errs[2], "second of two, from the first's response")
	require.ErrorIs(t, errs[3], ocspstate.ErrNotFound, "a negative serial")
	e.requireUnchanged(same)
	after, err := e.store.Get(e.ctx, twice.Issuer, twice.Serial)
	require.NoError(t, err)
	require.Equal(t, second.DER, after.OCSP.ResponseDER)
	require.Equal(t, twice.Version+2, after.Version, "two refreshes, two versions")
}

// testConcurrentRefreshBatches races batches that name the same records
// in different orders, each from the responses as first read: every
// record is refreshed by exactly one batch, and no element fails with
// anything but ErrResponseChanged (a store that locks records one by one
// must not deadlock, or must recover from it).
func testConcurrentRefreshBatches(t *testing.T, e *env) {
	recs := make([]*ocspstate.Record, 6)
	for i := range recs {
		recs[i] = e.inState(ocspstate.CTFailed)
	}
	e.clock.Advance(time.Hour)
	const batches = 8
	refs := make([][]ocspstate.Refresh, batches)
	for b := range refs {
		e.clock.Advance(time.Second) // distinct bytes
		for _, r := range recs {
			refs[b] = append(refs[b], ocspstate.Refresh{Issuer: r.Issuer, Serial: r.Serial, Prev: r.OCSP.ResponseDER, Response: e.sign(r, e.signer)})
		}
		// Each batch in its own order: rotated, and every other one
		// reversed.
		refs[b] = append(refs[b][b%len(recs):], refs[b][:b%len(recs)]...)
		if b%2 == 1 {
			slices.Reverse(refs[b])
		}
	}
	wins := make([]atomic.Int32, len(recs))
	var wg sync.WaitGroup
	for b := range refs {
		wg.Go(func() {
			for i, err := range ocspstate.RefreshResponses(e.ctx, e.store, refs[b]) {
				switch {
				case err == nil:
					wins[slices.IndexFunc(recs, func(r *ocspstate.Record) bool { return r.Serial.Cmp(refs[b][i].Serial) == 0 })].Add(1)
				case !errors.Is(err, ocspstate.ErrResponseChanged):
					t.Errorf("batch %d, refresh %d: %v", b, i, err)
				}
			}
		})
	}
	wg.Wait()
	for i, r := range recs {
		require.Equal(t, int32(1), wins[i].Load(), "record %d: refreshed by exactly one batch", i)
		after, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
		require.NoError(t, err)
		require.Equal(t, r.Version+1, after.Version)
	}
}

// testConcurrentRefreshes races refreshes of one record from the same
// response: exactly one commits.
func testConcurrentRefreshes(t *testing.T, e *env) {
	r := e.inState(ocspstate.CTFailed)
	e.clock.Advance(time.Hour)
	const n = 16
	var wins, lost atomic.Int32
	var wg sync.WaitGroup
	resps := make([]*ocspstate.Response, n)
	for i := range resps {
		e.clock.Advance(time.Second) // distinct bytes
		resps[i] = e.sign(r, e.signer)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ocspstate.RefreshResponses(e.ctx, e.store, []ocspstate.Refresh{
				{Issuer: r.Issuer, Serial: r.Serial, Prev: r.OCSP.ResponseDER, Response: resps[i]},
			})[0]
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ocspstate.ErrResponseChanged):
				lost.Add(1)
			default:
				t.Errorf("refresh %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
	require.Equal(t, int32(n-1), lost.Load())
	after, err := e.store.Get(e.ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, r.Version+1, after.Version)
}
