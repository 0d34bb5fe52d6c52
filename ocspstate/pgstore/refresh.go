package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"

	"github.com/certpipe/precert/ocspstate"
)

var _ ocspstate.ResponseRefresher = (*Store)(nil)

// RefreshResponses implements [ocspstate.ResponseRefresher], the
// sweeper's commonest write: the batch is one transaction, and so one
// commit (one WAL flush) for all its records, where
// [ocspstate.RefreshResponses] over Update would make one per record. It
// locks the batch's records in key order (SELECT … FOR UPDATE … ORDER BY
// issuer, serial, so that two batches never wait on each other in a
// circle), checks and changes each with [ocspstate.PrepareRefresh], in the
// order of refs (a record named twice sees the first change), writes each
// change with Update's compare-and-swap on version (all of them in one
// round trip), and commits.
//
// A refused element writes nothing and stops nothing. A record whose row
// does not decode fails only its own elements: the batch is then
// refreshed one record at a time ([ocspstate.RefreshEach]). If the transaction fails, nothing of the batch was
// written, and every element not refused before it began gets the error;
// a transaction the server aborted to break a deadlock or a serialization
// conflict is run again, up to maxLocked times, and then fails with
// [ocspstate.ErrConflict], as Update does.
func (s *Store) RefreshResponses(ctx context.Context, refs []ocspstate.Refresh) []error {
	errs := make([]error, len(refs))
	if err := s.gate.enter(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer s.gate.leave()
	todo := make([]int, 0, len(refs))
	issuers := make([][]byte, 0, len(refs))
	serials := make([][]byte, 0, len(refs))
	for i, ref := range refs {
		if errs[i] = lookupSerial(ref.Serial); errs[i] != nil {
			continue
		}
		if errs[i] = ref.Check(); errs[i] != nil {
			continue
		}
		todo = append(todo, i)
		issuers = append(issuers, ref.Issuer[:])
		serials = append(serials, ref.Serial.Bytes())
	}
	if len(todo) == 0 {
		return errs
	}
	var err error
	for attempt := 0; attempt < maxLocked; attempt++ {
		var results []error
		var written int
		results, written, err = s.refreshLocked(ctx, refs, todo, issuers, serials)
		if err == nil {
			for _, i := range todo {
				errs[i] = results[i]
			}
			s.writes.Add(uint64(written))
			return errs
		}
		if errors.As(err, new(badRow)) {
			return ocspstate.RefreshEach(ctx, s, refs)
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	what := fmt.Sprintf("refreshing the responses of %d records", len(todo))
	if retryable(err) {
		err = fmt.Errorf("%w: %s: %v", ocspstate.ErrConflict, what, err)
	} else {
		err = writeErr(what, err)
	}
	for _, i := range todo {
		errs[i] = err
	}
	return errs
}

// badRow is the failure to decode one of the rows a refresh locked.
type badRow struct{ err error }

func (b badRow) Error() string { return b.err.Error() }
func (b badRow) Unwrap() error { return b.err }

// refreshLocked runs one attempt of RefreshResponses for the elements of
// refs at the indexes todo, whose keys are issuers and serials. It
// returns each element's refusal (nil for those written or already
// stored), how many records it wrote, or the error that failed the
// transaction.
func (s *Store) refreshLocked(ctx context.Context, refs []ocspstate.Refresh, todo []int, issuers, serials [][]byte) ([]error, int, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	tx, err := s.pool.Begin(wctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(wctx)
	rows, err := tx.Query(wctx, s.sql.lockMany, issuers, serials)
	if err != nil {
		return nil, 0, err
	}
	locked, err := collect(rows, false)
	if err != nil {
		if errors.Is(err, ocspstate.ErrCorrupt) {
			err = badRow{err}
		}
		return nil, 0, err
	}
	stored := make(map[ocspstate.Key]*ocspstate.Record, len(locked))
	for _, r := range locked {
		stored[ocspstate.NewKey(r.Issuer, r.Serial)] = r
	}
	now := norm(s.now())
	results := make([]error, len(refs))
	// The writes go to the server together, in one round trip: a refresh
	// never changes the state, so each is a plain UPDATE.
	var batch pgx.Batch
	var writes []*big.Int // the serial of each queued write
	for _, i := range todo {
		ref := refs[i]
		key := ocspstate.NewKey(ref.Issuer, ref.Serial)
		old := stored[key]
		if old == nil {
			results[i] = fmt.Errorf("%w: serial %s under issuer %s", ocspstate.ErrNotFound, ocspstate.SerialHex(ref.Serial), ref.Issuer)
			continue
		}
		next, err := ocspstate.PrepareRefresh(old, ref, now, s.due, s.validator, s.skew, normalize)
		if err != nil {
			results[i] = err
			continue
		}
		if next == old {
			continue // already stored
		}
		// The batch below reads each result as a plain UPDATE's, which
		// putQuery makes only when the state is unchanged.
		if next.State != old.State {
			return nil, 0, fmt.Errorf("%w: a refresh of serial %s changed its state", ocspstate.ErrCorrupt, ocspstate.SerialHex(ref.Serial))
		}
		query, args := s.putQuery(old, next)
		batch.Queue(query, args...)
		writes = append(writes, ref.Serial)
		stored[key] = next
	}
	if len(writes) > 0 {
		br := tx.SendBatch(wctx, &batch)
		for _, serial := range writes {
			tag, err := br.Exec()
			if err == nil && tag.RowsAffected() != 1 {
				err = fmt.Errorf("%w: version of serial %s moved under a row lock", ocspstate.ErrCorrupt, ocspstate.SerialHex(serial))
			}
			if err != nil {
				br.Close()
				return nil, 0, err
			}
		}
		if err := br.Close(); err != nil {
			return nil, 0, err
		}
	}
	if err := tx.Commit(wctx); err != nil {
		return nil, 0, err
	}
	return results, len(writes), nil
}
