package recovery_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

func sweeper(t *testing.T, e *pipetest.Env, resumers ...recovery.Resumer) *recovery.Sweeper {
	t.Helper()
	s, err := recovery.New(recovery.Config{
		Store:    e.Store,
		Signers:  []*ocspstate.ResponseSigner{e.Signer},
		Resumers: resumers,
		Now:      e.Clock.Now,
		Owner:    "sweeper",
		Workers:  8,
	})
	require.NoError(t, err)
	return s
}

func audit(t *testing.T, e *pipetest.Env) []recovery.Violation {
	t.Helper()
	a := &recovery.Auditor{Issuers: []*x509.Certificate{e.CA.Intermediate}, Logs: e.CTLogs()}
	vs, err := a.Audit(e.Ctx, e.Store, e.Clock.Now())
	require.NoError(t, err)
	return vs
}

// stuck issues a certificate that stops at point, and returns its serial.
func stuck(t *testing.T, e *pipetest.Env, point issuance.FaultPoint) *big.Int {
	t.Helper()
	p := e.Pipeline(func(c *issuance.Config) {
		c.Owner = "crashed"
		c.Faults = issuance.FaultErr(point)
		c.DisableLint = true
	})
	_, err := p.Issue(e.Ctx, e.Request())
	require.ErrorIs(t, err, issuance.ErrInjected, "stopped by the fault, not by anything else")
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	return ie.Serial
}

func TestSweepFinishesWhatCrashesLeft(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	want := map[issuance.FaultPoint]ocspstate.State{
		issuance.AfterReserve:       ocspstate.Abandoned,
		issuance.AfterSignOCSP:      ocspstate.Abandoned,
		issuance.AfterCommitPrecert: ocspstate.Issued,
		issuance.AfterCT:            ocspstate.Issued,
		issuance.AfterCommitSCTs:    ocspstate.Issued,
		issuance.AfterSignFinal:     ocspstate.Issued,
	}
	serials := map[issuance.FaultPoint]*big.Int{}
	for p := range want {
		serials[p] = stuck(t, e, p)
	}
	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "recovery"; c.DisableLint = true })
	s := sweeper(t, e, p)

	// Before the leases expire there is nothing to do, and nothing wrong.
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Due, "%s", rep)
	require.Empty(t, audit(t, e))

	e.Clock.Advance(3 * time.Minute)
	vs := audit(t, e)
	kinds := map[string]int{}
	for _, v := range vs {
		kinds[v.Kind]++
	}
	require.Equal(t, map[string]int{recovery.KindStaleReservation: 2, recovery.KindStalled: 4}, kinds, "%v", vs)
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Errors)
	require.Equal(t, len(want), rep.Due)
	require.Equal(t, 2, rep.Count(recovery.ActionAbandoned))
	require.Equal(t, 4, rep.Count(recovery.ActionIssued))
	for point, st := range want {
		require.Equal(t, st, e.Record(serials[point]).State, point)
	}
	require.Empty(t, audit(t, e))

	// A second sweep finds nothing to do.
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Due, "%s", rep)
}

func TestSweepRefreshesAndRetires(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	res, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	before := e.Record(res.Serial)
	s := sweeper(t, e, p)

	// Three days on, BR §4.9.9's deadline approaches: re-signed.
	e.Clock.Advance(before.Due.Sub(e.Clock.Now()) + time.Second)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionRefreshed), "%s", rep)
	require.Equal(t, e.Clock.Now().Sub(before.OCSP.ThisUpdate), rep.OldestResponse,
		"the age of the oldest response among the due, before re-signing (the staleness gauge)")
	after := e.RequireStatus(res.Serial, ocspstate.Good)
	require.True(t, after.OCSP.ThisUpdate.After(before.OCSP.ThisUpdate))
	require.True(t, after.Due.After(e.Clock.Now()))
	require.Empty(t, audit(t, e))
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Due)

	// A revoked certificate is refreshed as revoked.
	_, err = p.Revoke(e.Ctx, p.IssuerID(), res.Serial, ocspstate.ReasonSuperseded, time.Time{})
	require.NoError(t, err)
	e.Clock.Advance(e.Record(res.Serial).Due.Sub(e.Clock.Now()) + time.Second)
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionRefreshed))
	e.RequireStatus(res.Serial, ocspstate.Revoked)

	// Long after expiry, the record is retired without a signature.
	e.Clock.Advance(100 * 24 * time.Hour)
	n := e.Key.Count()
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionRetired), "%s", rep)
	require.Equal(t, n, e.Key.Count())
	require.True(t, e.Record(res.Serial).Due.IsZero())
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Due)
}

// TestSweepYieldsToRevocation: a revocation committed between the sweep
// signing a fresh good response and committing it stands (I7): the sweep
// drops its response rather than write good over revoked, and reports no
// error.
func TestSweepYieldsToRevocation(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	res, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	e.Clock.Advance(e.Record(res.Serial).Due.Sub(e.Clock.Now()) + time.Second)
	revokeMidSweep := issuance.FaultFunc(func(ctx context.Context, point issuance.FaultPoint, serial *big.Int) error {
		if point != recovery.AfterSweepSign {
			return nil
		}
		_, err := p.Revoke(ctx, p.IssuerID(), serial, ocspstate.ReasonKeyCompromise, time.Time{})
		return err
	})
	s, err := recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{e.Signer},
		Now: e.Clock.Now, Owner: "sweeper", Faults: revokeMidSweep})
	require.NoError(t, err)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Errors)
	require.Equal(t, 1, rep.Count(recovery.ActionSkipped), "%s", rep)
	require.Zero(t, rep.Count(recovery.ActionRefreshed), "%s", rep)
	e.RequireStatus(res.Serial, ocspstate.Revoked)
	require.Empty(t, audit(t, e))
}

func TestSweepCTDownThenBack(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	e.SetModes(ctlogtest.Unavailable)
	serial := stuck(t, e, issuance.AfterCommitPrecert)
	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "recovery"; c.DisableLint = true })
	s := sweeper(t, e, p)
	e.Clock.Advance(3 * time.Minute)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionCTFailed), "%s", rep)
	r := e.RequireStatus(serial, ocspstate.Good)
	require.Equal(t, ocspstate.CTFailed, r.State, "CTFailed and good, never stalled")

	e.SetModes(ctlogtest.Accept)
	serial = stuck(t, e, issuance.AfterCommitPrecert)
	e.Clock.Advance(3 * time.Minute)
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionIssued), "%s", rep)
	require.Equal(t, ocspstate.Issued, e.Record(serial).State)
	require.Empty(t, audit(t, e))
}

func TestSweepWithoutPipeline(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	reserved := stuck(t, e, issuance.AfterReserve)
	precert := stuck(t, e, issuance.AfterCommitPrecert)
	s := sweeper(t, e) // no resumer: a responder-only deployment
	e.Clock.Advance(3 * time.Minute)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionAbandoned))
	require.Equal(t, 1, rep.Count(recovery.ActionSetAside))
	require.Len(t, rep.Errors, 1)
	require.Equal(t, 0, rep.Errors[0].Serial.Cmp(precert))
	require.Contains(t, rep.Errors[0].Error(), "no pipeline")
	require.Equal(t, ocspstate.Abandoned, e.Record(reserved).State)
	r := e.RequireStatus(precert, ocspstate.Good)
	require.Equal(t, ocspstate.Precert, r.State)
	require.Equal(t, "sweeper", r.Lease.Owner, "set aside, so it does not hold up the index")
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Due, "set aside until RetryAfter")
}

func TestSweepReplacesInvalidResponse(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	serial := stuck(t, e, issuance.AfterCommitPrecert)
	// The disk damages the stored response of the stalled precertificate.
	require.NoError(t, e.Store.Close())
	corruptOnDisk(t, e.Path, e.IssuerID(), serial, func(rec []byte, r *ocspstate.Record) {
		flipSignatureByte(t, rec, r.OCSP.ResponseDER)
	})
	e.Store = e.OpenStore()
	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "recovery"; c.DisableLint = true })
	s := sweeper(t, e, p)
	require.NotEmpty(t, audit(t, e))

	e.Clock.Advance(3 * time.Minute)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Errors)
	require.Equal(t, 1, rep.Count(recovery.ActionIssued), "%s", rep)
	require.Equal(t, 1, rep.Count(recovery.ActionRefreshed), "the damaged response is replaced: %s", rep)
	e.RequireStatus(serial, ocspstate.Good)
	require.Empty(t, audit(t, e))
}

func TestConcurrentSweepersAndPipelines(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{Logs: 3})
	var serials []*big.Int
	for _, point := range []issuance.FaultPoint{issuance.AfterReserve, issuance.AfterCommitPrecert, issuance.AfterCommitSCTs, issuance.AfterSignFinal} {
		for i := 0; i < 5; i++ {
			serials = append(serials, stuck(t, e, point))
		}
	}
	e.Clock.Advance(3 * time.Minute)
	var wg sync.WaitGroup
	reports := make(chan *recovery.Report, 8)
	for i := 0; i < 4; i++ {
		p := e.Pipeline(func(c *issuance.Config) { c.Owner = "sweeper-" + string(rune('a'+i)); c.DisableLint = true })
		s := sweeper(t, e, p)
		wg.Add(2)
		go func() {
			defer wg.Done()
			rep, err := s.Sweep(e.Ctx)
			if err != nil {
				t.Error(err)
			}
			reports <- rep
		}()
		go func() { // live issuance alongside
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, err := p.Issue(e.Ctx, e.Request()); err != nil && !errors.Is(err, issuance.ErrCTFailed) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(reports)
	finished := 0
	for rep := range reports {
		require.Empty(t, rep.Errors)
		finished += rep.Count(recovery.ActionIssued) + rep.Count(recovery.ActionAbandoned)
	}
	require.Equal(t, len(serials), finished, "each stalled record finished exactly once")
	for _, s := range serials {
		st := e.Record(s).State
		require.True(t, st == ocspstate.Issued || st == ocspstate.Abandoned, "%x is %s", s, st)
	}
	counts, err := e.Store.Counts(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 5, counts[ocspstate.Abandoned])
	require.Equal(t, 15+20, counts[ocspstate.Issued])
	require.Empty(t, audit(t, e))
}

func TestRunStopsWithContext(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	s := sweeper(t, e)
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error)
	go func() { done <- s.Run(ctx, 10*time.Millisecond) }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Error(t, s.Run(e.Ctx, 0))
}

func TestSweeperConfig(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	_, err := recovery.New(recovery.Config{Signers: []*ocspstate.ResponseSigner{e.Signer}})
	require.ErrorContains(t, err, "Store")
	_, err = recovery.New(recovery.Config{Store: e.Store})
	require.ErrorContains(t, err, "Signers")
	_, err = recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{e.Signer, e.Signer}})
	require.ErrorContains(t, err, "two signers")
}

// hungCT blocks inside Submit until released, then submits for real.
type hungCT struct {
	entered chan struct{}
	release chan struct{}
	inner   issuance.Submitter
}

func (h *hungCT) Submit(ctx context.Context, chain [][]byte, notAfter time.Time) ([]ctsubmit.SCT, error) {
	close(h.entered)
	<-h.release
	return h.inner.Submit(ctx, chain, notAfter)
}

func TestHungPipelineIsTakenOver(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	hung := &hungCT{entered: make(chan struct{}), release: make(chan struct{}), inner: e.CT}
	a := e.Pipeline(func(c *issuance.Config) { c.Owner = "hung"; c.CT = hung; c.DisableLint = true })
	errc := make(chan error, 1)
	var serial *big.Int
	go func() {
		_, err := a.Issue(e.Ctx, e.Request())
		errc <- err
	}()
	<-hung.entered // A is inside CT, alive, and (on this clock) not renewing

	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "recovery"; c.DisableLint = true })
	s := sweeper(t, e, p)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Count(recovery.ActionIssued), "not before the lease expires")

	e.Clock.Advance(3 * time.Minute)
	rep, err = s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Count(recovery.ActionIssued), "%s", rep)
	counts, err := e.Store.Counts(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, 1, counts[ocspstate.Issued])
	require.NoError(t, e.Store.Scan(e.Ctx, func(r *ocspstate.Record) error { serial = r.Serial; return nil }))
	taken := e.Record(serial)

	close(hung.release) // A wakes with valid SCTs of its own
	err = <-errc
	require.ErrorIs(t, err, issuance.ErrLeaseLost)
	after := e.Record(serial)
	require.Equal(t, taken.Version, after.Version, "A wrote nothing")
	require.Equal(t, taken.FinalDER, after.FinalDER)
	require.Empty(t, audit(t, e))
}

// TestSweepManyBatches sweeps 23 due records in batches of 1 to 23, from
// the bbolt store as it is (a DueReader, read 1, 5 or 16,384 entries at a
// time) and through a wrapper that hides DueAfter (the path every other
// store takes), each with one Sweeper sweeping twice: the second sweep of
// a round reuses the memory of the first's read.
func TestSweepManyBatches(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	const n = 23
	issueMany(t, e, p, n)
	plain := plainStore{e.Store, new(atomic.Int64)}
	for _, store := range []struct {
		name      string
		s         ocspstate.Store
		readAhead []int
	}{
		{"DueReader", e.Store, []int{1, 5, 1 << 14}},
		{"Due", plain, []int{0}},
	} {
		for _, ahead := range store.readAhead {
			s := func(batch int) *recovery.Sweeper {
				s, err := recovery.New(recovery.Config{Store: store.s, Signers: []*ocspstate.ResponseSigner{e.Signer},
					Now: e.Clock.Now, BatchSize: batch, Workers: 3})
				require.NoError(t, err)
				if ahead > 0 {
					recovery.SetReadAhead(s, ahead)
				}
				return s
			}
			for _, batch := range []int{1, 4, 7, n} {
				t.Run(fmt.Sprintf("%s/readAhead=%d/batch=%d", store.name, ahead, batch), func(t *testing.T) {
					sw := s(batch)
					for round := range 2 {
						makeAllDue(t, e)
						plain.dues.Store(0)
						rep, err := sw.Sweep(e.Ctx)
						require.NoError(t, err)
						if store.s == ocspstate.Store(plain) {
							// One read per batch, and one that finds the
							// end: each read past the batch whose commits
							// are in flight, not into it.
							require.LessOrEqual(t, plain.dues.Load(), int64((n+batch-1)/batch+1), "round %d: reads of Due", round)
						}
						require.Empty(t, rep.Errors)
						require.Equal(t, n, rep.Due, "round %d: %s", round, rep)
						require.Equal(t, n, rep.Count(recovery.ActionRefreshed), "round %d: %s", round, rep)
						left, err := e.Store.Due(e.Ctx, e.Clock.Now(), 100)
						require.NoError(t, err)
						require.Empty(t, left)
					}
					rep, err := sw.Sweep(e.Ctx)
					require.NoError(t, err)
					require.Zero(t, rep.Due)
				})
			}
		}
	}
	require.Empty(t, audit(t, e))
}

// TestConcurrentSweepsOneSweeper runs three sweeps of one Sweeper at once,
// round after round: the memory one sweep's first read keeps for the next
// must not be handed out while its entries are still being decoded (run
// under -race), and together they refresh every due record exactly once.
func TestConcurrentSweepsOneSweeper(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	const n = 30
	issueMany(t, e, p, n)
	s, err := recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{e.Signer},
		Now: e.Clock.Now, BatchSize: 4, Workers: 2})
	require.NoError(t, err)
	for round := range 4 {
		makeAllDue(t, e)
		reps := make([]*recovery.Report, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range reps {
			wg.Go(func() { reps[i], errs[i] = s.Sweep(e.Ctx) })
		}
		wg.Wait()
		refreshed := 0
		for i, rep := range reps {
			require.NoError(t, errs[i])
			require.Empty(t, rep.Errors, "round %d: %s", round, rep)
			refreshed += rep.Count(recovery.ActionRefreshed)
		}
		require.Equal(t, n, refreshed, "round %d: each due record refreshed once in all", round)
		left, err := e.Store.Due(e.Ctx, e.Clock.Now(), n)
		require.NoError(t, err)
		require.Empty(t, left, "round %d", round)
	}
	require.Empty(t, audit(t, e))
}

// TestSweepRereadsAfterShortRead: a store's Due may return fewer records
// than are due and than asked for (pgstore skips rows that other
// transactions hold locked, such as those of a process just killed); the
// sweep reads again after its batch, and takes what was skipped.
func TestSweepRereadsAfterShortRead(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	const n = 5
	issueMany(t, e, p, n)
	makeAllDue(t, e)
	store := &lockingStore{Store: e.Store, locked: 2}
	s, err := recovery.New(recovery.Config{Store: store, Signers: []*ocspstate.ResponseSigner{e.Signer},
		Now: e.Clock.Now, BatchSize: 100})
	require.NoError(t, err)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, n, rep.Count(recovery.ActionRefreshed), "%s", rep)
	left, err := e.Store.Due(e.Ctx, e.Clock.Now(), n)
	require.NoError(t, err)
	require.Empty(t, left)
}

// lockingStore's first Due leaves out the last records it would return,
// as if another transaction held them locked.
type lockingStore struct {
	ocspstate.Store
	locked int
	reads  int
}

func (s *lockingStore) Due(ctx context.Context, now time.Time, limit int) ([]*ocspstate.Record, error) {
	rs, err := s.Store.Due(ctx, now, limit)
	s.reads++
	if s.reads == 1 && err == nil {
		rs = rs[:max(len(rs)-s.locked, 0)]
	}
	return rs, err
}

// TestSweepPastFailingRecords: records that fail stay due at the front of
// the index; the sweep must still reach every record behind them, from a
// DueReader and through Store.Due alike (I2, I6: a healthy record left
// behind a stuck one goes stale).
func TestSweepPastFailingRecords(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	const n, failing = 10, 4
	issueMany(t, e, p, n)
	makeAllDue(t, e)
	// The records first in the index fail every time.
	front, err := e.Store.Due(e.Ctx, e.Clock.Now(), failing)
	require.NoError(t, err)
	stuck := map[string]bool{}
	for _, r := range front {
		stuck[r.Serial.String()] = true
	}
	faults := issuance.FaultFunc(func(_ context.Context, point issuance.FaultPoint, serial *big.Int) error {
		if point == recovery.AfterSweepSign && stuck[serial.String()] {
			return errors.New("injected: this record fails")
		}
		return nil
	})
	for _, store := range []ocspstate.Store{plainStore{e.Store, new(atomic.Int64)}, e.Store} {
		for _, batch := range []int{1, 2, 3} {
			s, err := recovery.New(recovery.Config{Store: store, Signers: []*ocspstate.ResponseSigner{e.Signer},
				Now: e.Clock.Now, BatchSize: batch, Workers: 2, Faults: faults})
			require.NoError(t, err)
			rep, err := s.Sweep(e.Ctx)
			require.NoError(t, err)
			_, plain := store.(plainStore)
			require.Equal(t, failing, rep.Count(recovery.ActionFailed), "plain %v, batch %d: %s", plain, batch, rep)
			left, err := e.Store.Due(e.Ctx, e.Clock.Now(), 2*n)
			require.NoError(t, err)
			require.Len(t, left, failing, "plain %v, batch %d: only the failing records stay due: %s", plain, batch, rep)
			for _, r := range left {
				require.True(t, stuck[r.Serial.String()], "plain %v, batch %d: serial %s left due", plain, batch, r.Serial)
			}
			// Make the healthy records due again for the next round.
			e.Clock.Advance(4 * 24 * time.Hour)
		}
	}
}

// issueMany issues n certificates through p and returns their serials.
func issueMany(t *testing.T, e *pipetest.Env, p *issuance.Pipeline, n int) []*big.Int {
	t.Helper()
	serials := make([]*big.Int, n)
	for i := range serials {
		res, err := p.Issue(e.Ctx, e.Request())
		require.NoError(t, err)
		serials[i] = res.Serial
	}
	return serials
}

// makeAllDue advances e's clock an hour past the latest due time in its
// store, so that every record in the due index is due.
func makeAllDue(t *testing.T, e *pipetest.Env) {
	t.Helper()
	due, err := e.Store.Due(e.Ctx, time.Unix(1<<40, 0), 1<<20)
	require.NoError(t, err)
	require.NotEmpty(t, due)
	latest := due[0].Due
	for _, r := range due {
		if r.Due.After(latest) {
			latest = r.Due
		}
	}
	e.Clock.Advance(latest.Sub(e.Clock.Now()) + time.Hour)
}

// plainStore hides the bbolt store's DueReader and ResponseRefresher
// methods: the sweeper then takes the paths every other store takes. It
// counts the calls to Due.
type plainStore struct {
	ocspstate.Store
	dues *atomic.Int64
}

func (s plainStore) Due(ctx context.Context, now time.Time, limit int) ([]*ocspstate.Record, error) {
	s.dues.Add(1)
	return s.Store.Due(ctx, now, limit)
}

// TestSweepDamagedRecord: a record whose due index entry cannot be decoded
// is reported as that record's error, and the sweep handles the others.
func TestSweepDamagedRecord(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	serials := issueMany(t, e, p, 3)
	makeAllDue(t, e)

	// Truncate the damaged record's entry in the due index, on disk.
	require.NoError(t, e.Store.Close())
	key := []byte(ocspstate.NewKey(e.IssuerID(), serials[1]))
	editOnDisk(t, e.Path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("due"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Equal(k[8:], key) {
				return b.Put(append([]byte(nil), k...), append([]byte(nil), v[:len(v)/2]...))
			}
		}
		return errors.New("no due entry for the record")
	})
	e.Store = e.OpenStore()

	rep, err := sweeper(t, e).Sweep(e.Ctx)
	require.NoError(t, err, "one bad record never stops the sweep")
	require.Equal(t, 3, rep.Due)
	require.Equal(t, 2, rep.Count(recovery.ActionRefreshed), "%s", rep)
	require.Len(t, rep.Errors, 1)
	require.ErrorIs(t, rep.Errors[0].Err, ocspstate.ErrCorrupt)
	require.Equal(t, 0, rep.Errors[0].Serial.Cmp(serials[1]))
}

// TestSweepReportsRefusedRefresh: a re-signed response the store refuses
// (here dated an hour ahead of the store's clock, past the allowed skew) is
// the record's error, not a skip: only a response that changed meanwhile
// is someone else's to stand.
func TestSweepReportsRefusedRefresh(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	res, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	before := e.Record(res.Serial)
	ahead, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: e.CA.Intermediate, Key: e.CA.IntermediateKey,
		Now: func() time.Time { return e.Clock.Now().Add(time.Hour) }})
	require.NoError(t, err)
	s, err := recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{ahead}, Now: e.Clock.Now, Owner: "sweeper"})
	require.NoError(t, err)

	e.Clock.Advance(before.Due.Sub(e.Clock.Now()) + time.Second)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Len(t, rep.Errors, 1, "%s", rep)
	require.ErrorIs(t, rep.Errors[0].Err, ocspstate.ErrInvalidRecord)
	require.Zero(t, rep.Count(recovery.ActionRefreshed), "%s", rep)
	require.Zero(t, rep.Count(recovery.ActionSkipped), "%s", rep)
	require.Equal(t, before.OCSP.ResponseDER, e.Record(res.Serial).OCSP.ResponseDER)
}
