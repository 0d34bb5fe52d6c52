package ocspstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrResponseChanged: [RefreshResponses] found a stored response other
// than the one the new response was meant to replace (another sweeper
// refreshed it, or a revocation re-signed it). The stored one stands;
// nothing was written for that record.
var ErrResponseChanged = errors.New("ocspstate: stored response changed since it was read")

// A Refresh asks [RefreshResponses] to replace the response of the record
// (Issuer, Serial) with Response, if the stored response is still Prev.
type Refresh struct {
	Issuer IssuerID
	Serial *big.Int
	// Prev is the response the new one replaces, as read (from
	// [Store.Due] or [Store.Get]); nil for a record that had none.
	Prev []byte
	// Response is the newly signed response, from
	// [ResponseSigner.SignRecord].
	Response *Response
}

// ResponseRefresher is implemented by stores with a dedicated path for the
// sweeper's commonest write: replacing many records' responses with newer
// ones. [BoltStore] implements it: a batch is one write in the shared
// commit, and each compare-and-swap, check and write happens inside that
// transaction on the record's hot part, without a separate read and
// without touching the immutable fields. So does the PostgreSQL store
// (package pgstore): a batch is one transaction. Both check each record
// with [PrepareRefresh].
//
// Call [RefreshResponses] rather than this method: it falls back to
// [Store.Update] for stores without it.
type ResponseRefresher interface {
	// RefreshResponses has the contract of the function
	// [RefreshResponses].
	RefreshResponses(ctx context.Context, refs []Refresh) []error
}

// RefreshResponses replaces the response of each record named in refs,
// independently, and returns one error per element of refs, nil for each
// record whose new response is durable when it returns.
//
// Each replacement is a compare-and-swap: if the stored response is no
// longer Prev, byte for byte, the error wraps [ErrResponseChanged] and
// nothing is written for that record. Only the response, its thisUpdate
// and its nextUpdate change. The record must be OCSP-enabled, and the new
// response must validate for it as [CheckUpdate] requires (issuer, serial,
// status, signature, freshness), or the error wraps [ErrInvalidRecord]
// (or [ErrIllegalTransition] for a record without OCSP). A missing record
// gives [ErrNotFound]. One refused element never stops the others. It is
// safe for concurrent use; of concurrent refreshes of one record, at most
// one commits.
//
// It uses s's [ResponseRefresher] method when s has one, and otherwise
// [RefreshEach].
func RefreshResponses(ctx context.Context, s Store, refs []Refresh) []error {
	if rr, ok := s.(ResponseRefresher); ok {
		return rr.RefreshResponses(ctx, refs)
	}
	return RefreshEach(ctx, s, refs)
}

// RefreshEach is [RefreshResponses] through [Store.Update] alone: one
// Update per element, whose closure checks Prev and calls
// [Record.SetResponse]. It is what RefreshResponses does for a store
// without a [ResponseRefresher] method, and what such a method may fall
// back to.
func RefreshEach(ctx context.Context, s Store, refs []Refresh) []error {
	errs := make([]error, len(refs))
	for i, ref := range refs {
		if errs[i] = ref.Check(); errs[i] != nil {
			continue
		}
		_, errs[i] = s.Update(ctx, ref.Issuer, ref.Serial, func(r *Record) error {
			if !bytes.Equal(r.OCSP.ResponseDER, ref.Prev) {
				return responseChanged(ref)
			}
			if err := checkHasOCSP(r); err != nil {
				return err
			}
			r.SetResponse(ref.Response)
			return nil
		})
	}
	return errs
}

// Check refuses a Refresh with nothing to store, with an error wrapping
// [ErrInvalidRecord]. A [ResponseRefresher] calls it before reading the
// record.
func (ref Refresh) Check() error {
	if ref.Response == nil || len(ref.Response.DER) == 0 {
		return fmt.Errorf("%w: serial %s: no response to store", ErrInvalidRecord, SerialHex(ref.Serial))
	}
	return nil
}

// PrepareRefresh is the check and the change [RefreshResponses] makes of
// one record, for a [ResponseRefresher] to apply inside its own
// transaction, to old, the stored record as read there (its immutable
// blobs may be left out: a refresh neither reads nor changes them). ref
// must have passed [Refresh.Check].
//
// It returns old itself when ref.Response is already what is stored (there
// is nothing to write), an error wrapping [ErrResponseChanged],
// [ErrIllegalTransition] or [ErrInvalidRecord] when ref must be refused
// (see [RefreshResponses]), and otherwise the record to store: old with
// the new response, stamped at now (version, updated, due from due), its
// times passed through normalize when it is not nil. old is not modified;
// the two share the immutable blobs.
func PrepareRefresh(old *Record, ref Refresh, now time.Time, due DuePolicy, v *Validator, skew time.Duration, normalize func(*Record)) (*Record, error) {
	if !bytes.Equal(old.OCSP.ResponseDER, ref.Prev) {
		return nil, responseChanged(ref)
	}
	if bytes.Equal(ref.Response.DER, ref.Prev) {
		return old, nil // already stored
	}
	if err := checkHasOCSP(old); err != nil {
		return nil, err
	}
	next := *old
	next.SetResponse(ref.Response)
	if _, err := v.CheckRecord(&next, now, skew); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	stamp(old, &next, now, due, normalize)
	return &next, nil
}

func responseChanged(ref Refresh) error {
	return fmt.Errorf("%w: serial %s under issuer %s", ErrResponseChanged, SerialHex(ref.Serial), ref.Issuer)
}

// checkHasOCSP reports whether r has a response that may be refreshed.
func checkHasOCSP(r *Record) error {
	if !r.OCSP.Enabled || !r.State.Published() {
		return fmt.Errorf("%w: serial %s is %s without OCSP: there is no response to refresh", ErrIllegalTransition, SerialHex(r.Serial), r.State)
	}
	return nil
}

// RefreshResponses implements [ResponseRefresher]. The batch is one write:
// it shares a transaction with whatever else is waiting, and each element
// is checked and written inside it, on the record's hot part. The checks
// are those [CheckUpdate] makes of a change of response alone: the record
// is published with OCSP enabled (the rest of [CheckTransition] held when
// the record was written, and a refresh changes nothing else), and the new
// response validates for the record with the store's validator.
func (s *BoltStore) RefreshResponses(ctx context.Context, refs []Refresh) []error {
	errs := make([]error, len(refs))
	if err := s.readable(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	keys := make([][]byte, len(refs))
	var todo int
	for i, ref := range refs {
		if err := lookupSerial(ref.Issuer, ref.Serial); err != nil {
			errs[i] = err
			continue
		}
		if errs[i] = ref.Check(); errs[i] != nil {
			continue
		}
		keys[i] = []byte(NewKey(ref.Issuer, ref.Serial))
		todo++
	}
	if todo == 0 {
		return errs
	}
	results := make([]error, len(refs))
	err := s.writeMany(ctx, func(tx *bolt.Tx) (int, error) {
		// The closure may run twice (see commit): start afresh.
		n := 0
		for i, ref := range refs {
			if keys[i] == nil {
				continue
			}
			wrote, err := s.refreshOne(tx, keys[i], ref)
			var r refusal
			switch {
			case errors.As(err, &r):
				results[i] = r.err
			case err != nil:
				return 0, err
			default:
				results[i] = nil
				if wrote {
					n++
				}
			}
		}
		return n, nil
	})
	for i := range refs {
		switch {
		case keys[i] == nil:
		case err != nil:
			errs[i] = err
		default:
			errs[i] = results[i]
		}
	}
	return errs
}

// refreshOne applies one Refresh in tx. It returns a refusal, having
// written nothing, or reports whether it wrote the record (not when the
// response was already stored).
func (s *BoltStore) refreshOne(tx *bolt.Tx, key []byte, ref Refresh) (bool, error) {
	cur := tx.Bucket(bucketRecords).Get(key)
	if cur == nil {
		return false, refuse(fmt.Errorf("%w: serial %s under issuer %s", ErrNotFound, SerialHex(ref.Serial), ref.Issuer))
	}
	old := new(Record)
	if err := decodeHotInto(old, key, cur); err != nil {
		return false, refuse(err)
	}
	next, err := PrepareRefresh(old, ref, s.now(), s.due, s.validator, s.skew, normalizeTimes)
	if err != nil {
		return false, refuse(err)
	}
	if next == old {
		return false, nil // already stored
	}
	hot := encodeHot(next)
	s.cache.writeThrough(tx, key, old.OCSP.ResponseDER, next.OCSP.ResponseDER)
	return true, putRecord(tx, key, old, next, hot)
}
