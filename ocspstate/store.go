package ocspstate

import (
	"context"
	"errors"
	"math/big"
	"time"
)

// Errors callers branch on. Stores wrap them with detail; test with
// [errors.Is].
var (
	// ErrNotFound: no record for that (issuer, serial), or, from
	// [Store.Response], no response stored for it.
	ErrNotFound = errors.New("ocspstate: not found")
	// ErrSerialExists: Reserve found the serial already used under that
	// issuer, in whatever state (serials are never reused, I3).
	ErrSerialExists = errors.New("ocspstate: serial already reserved")
	// ErrIllegalTransition: an Update tried a change the record's state
	// does not allow (see [CheckTransition]).
	ErrIllegalTransition = errors.New("ocspstate: illegal transition")
	// ErrInvalidRecord: a record handed to Reserve or produced by an
	// Update closure is malformed (missing serial, bad intent, …).
	ErrInvalidRecord = errors.New("ocspstate: invalid record")
	// ErrLeaseHeld: another worker holds an unexpired lease on the record.
	ErrLeaseHeld = errors.New("ocspstate: lease held by another worker")
	// ErrConflict: Update lost the compare-and-swap too many times in a
	// row to concurrent writers of the same record. Retrying is safe.
	ErrConflict = errors.New("ocspstate: too many concurrent updates of one record")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("ocspstate: store closed")
	// ErrCorrupt: stored bytes could not be decoded. The store refuses to
	// guess; restore from backup or inspect the file.
	ErrCorrupt = errors.New("ocspstate: corrupt store data")
)

// Store is the durable home of every record. Every method is safe for
// concurrent use, honours its context before doing any work, and hands out
// copies. Implementations call [CheckUpdate] on every write so that all
// backends enforce the same rules, and run the conformance suite in package
// storetest.
type Store interface {
	// Reserve durably creates r, which must be in state Reserved with a
	// valid serial, a non-empty intent and a lease (see [CheckReserve]).
	// The store sets Version to 1, Created, Updated and Due. It returns
	// an error wrapping ErrSerialExists if the (issuer, serial) pair was
	// ever reserved before, whatever its state. When Reserve returns nil
	// the record is durable.
	Reserve(ctx context.Context, r *Record) error

	// Get returns a copy of the record, or an error wrapping ErrNotFound.
	Get(ctx context.Context, issuer IssuerID, serial *big.Int) (*Record, error)

	// Update reads the record, hands a copy to fn, and commits fn's
	// changes in one transaction if they pass [CheckUpdate]; it returns
	// the record as committed. It is a compare-and-swap on Version: if
	// another writer committed in between, fn runs again on the newer
	// record, so fn may run more than once and must only read and modify
	// the record it is given — sign before, publish after. If fn returns
	// an error, nothing is written and Update returns that error as is.
	// If fn changes nothing, nothing is written and the stored record is
	// returned — unless the record's due time has moved (its OCSP service
	// ended), in which case the store commits the new due time: an Update
	// with a closure that changes nothing is how recovery retires expired
	// records from the due index. When Update returns nil the change is
	// durable. It returns
	// an error wrapping ErrNotFound if there is no such record.
	Update(ctx context.Context, issuer IssuerID, serial *big.Int, fn func(*Record) error) (*Record, error)

	// Due returns up to limit records whose Due time is at or before now,
	// earliest first, from an index: its cost grows with the number
	// returned, not with the size of the store. The records come without
	// their immutable fields (IntentDER, PrecertDER, SCTs, FinalDER are
	// nil): what is due is decided, and responses are re-signed, from the
	// rest; call Get for a whole record. Records committed concurrently may
	// or may not be included.
	Due(ctx context.Context, now time.Time, limit int) ([]*Record, error)

	// Response returns the stored OCSP response for (issuer, serial): the
	// responder's hot path. It returns an error wrapping ErrNotFound when
	// there is no record, or the record has no response (Reserved or
	// Abandoned). The bytes are a copy.
	Response(ctx context.Context, issuer IssuerID, serial *big.Int) ([]byte, error)

	// Counts returns the number of records in each state.
	Counts(ctx context.Context) (map[State]int, error)

	// Scan calls fn for every record in key order, a page at a time, each
	// page in its own read transaction so that a scan of millions of
	// records never holds the store. Each record is seen at most once;
	// records committed during the scan may or may not be seen. An error
	// from fn stops the scan and is returned as is.
	Scan(ctx context.Context, fn func(*Record) error) error

	// Close waits for writes in progress and releases the store. Calls
	// after Close return errors wrapping ErrClosed.
	Close() error
}

// DueReader is implemented by stores that can read their due index cheaply
// and on from an entry already read, so that a sweep reads each due record
// once, even while the commits of its earlier batches have not landed
// (until they land, those records are still due), and decodes the records
// where it acts on them, on all cores. [BoltStore] implements it.
type DueReader interface {
	// DueAfter returns up to limit entries of the due index, due at or
	// before now, in the order of [Store.Due] (due time, then issuer and
	// serial), starting after last, an entry an earlier call returned
	// (nil: from the start). Each entry's [DueEntry.Record] is the record
	// Due would have returned. Entries committed concurrently may or may
	// not be included.
	//
	// The entries are copied into buf's memory (up to its capacity), and
	// into new memory beyond it: pass the memory of entries no longer in
	// use, so that a periodic reader works in memory it already has, or
	// nil. The entries alias it.
	DueAfter(ctx context.Context, now time.Time, last *DueEntry, limit int, buf []byte) ([]DueEntry, error)
}
