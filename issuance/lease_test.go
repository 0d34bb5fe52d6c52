package issuance

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ocspstate"
)

// leaseStore holds one record for holdLease: Update is all it implements.
type leaseStore struct {
	ocspstate.Store // nil: any other method panics
	mu              sync.Mutex
	rec             ocspstate.Record
	updates         int
}

func (s *leaseStore) Update(_ context.Context, _ ocspstate.IssuerID, _ *big.Int, fn func(*ocspstate.Record) error) (*ocspstate.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	s.updates++
	if err := fn(&r); err != nil {
		return nil, err
	}
	s.rec = r
	return &r, nil
}

func (s *leaseStore) state() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates, s.rec.Lease.Expires
}

func leasePipeline(st *leaseStore) *Pipeline {
	return &Pipeline{cfg: Config{Store: st, LeaseDuration: 3 * time.Second, Owner: "me", Now: time.Now}, log: slog.New(slog.DiscardHandler)}
}

// TestHoldLeaseRenews: the lease is renewed every third of its duration
// while held, never after stop returns.
func TestHoldLeaseRenews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &leaseStore{rec: ocspstate.Record{State: ocspstate.Precert, Lease: ocspstate.Lease{Owner: "me", Expires: time.Now().Add(3 * time.Second)}}}
		work, stop := leasePipeline(st).holdLease(t.Context(), big.NewInt(1))
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		n, expires := st.state()
		require.Equal(t, 3, n, "renewed at 1 s, 2 s and 3 s")
		require.Equal(t, time.Now().Add(-500*time.Millisecond).Add(3*time.Second), expires)
		require.NoError(t, work.Err())
		stop()
		require.ErrorIs(t, work.Err(), context.Canceled)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		n, _ = st.state()
		require.Equal(t, 3, n, "no renewal after stop")
	})
}

// TestHoldLeaseLost: a lease another worker took cancels the work with
// ErrLeaseLost, and renewal stops.
func TestHoldLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &leaseStore{rec: ocspstate.Record{State: ocspstate.Precert, Lease: ocspstate.Lease{Owner: "other", Expires: time.Now().Add(time.Hour)}}}
		work, stop := leasePipeline(st).holdLease(t.Context(), big.NewInt(1))
		defer stop()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		require.ErrorIs(t, context.Cause(work), ErrLeaseLost)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		n, _ := st.state()
		require.Equal(t, 1, n, "no renewal once the lease is lost")
	})
}

// TestHoldLeaseEndsWithContext: when the caller's context ends, renewal
// stops.
func TestHoldLeaseEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &leaseStore{rec: ocspstate.Record{State: ocspstate.Precert, Lease: ocspstate.Lease{Owner: "me", Expires: time.Now().Add(3 * time.Second)}}}
		ctx, cancel := context.WithCancel(t.Context())
		work, stop := leasePipeline(st).holdLease(ctx, big.NewInt(1))
		defer stop()
		time.Sleep(1500 * time.Millisecond)
		cancel()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		n, _ := st.state()
		require.Equal(t, 1, n)
		require.True(t, errors.Is(work.Err(), context.Canceled))
	})
}
