package ocspstate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the bbolt file layout this build writes.
// Open refuses files of any other version.
const SchemaVersion = 1

var (
	bucketRecords = []byte("records") // Key → hot part of the Record (see encoding.go)
	bucketBlobs   = []byte("blobs")   // Key ‖ tag → an immutable field, written once
	// due time (8 bytes) ‖ Key → the hot part, as in records (empty in
	// files written before it was kept there). The copy lets a sweep read
	// one bucket in order; it costs about 760 bytes per due record (0.75 GB
	// of the file for a million) and a second write of the hot part.
	bucketDue  = []byte("due")
	bucketMeta = []byte("meta") // "schema" → uint32; "count/" ‖ state → uint64
	metaSchema = []byte("schema")
)

// Options configure [Open]. The zero value opens a store that can reserve,
// read and update records but refuses to commit any OCSP response, since it
// has no issuer to validate one against.
type Options struct {
	// Issuers are the CA certificates whose responses the store validates
	// before committing them. A record whose issuer is not listed can be
	// reserved but never enter Precert.
	Issuers []*x509.Certificate
	// Due is the due-time policy applied on every write.
	Due DuePolicy
	// Skew is the tolerance for a response's thisUpdate being ahead of the
	// store's clock. Zero means 5 minutes.
	Skew time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to release
	// the file. Zero means 2 seconds.
	LockTimeout time.Duration
	// MaxBatch caps how many writes share one commit. Zero means 1000.
	MaxBatch int
	// ReadOnly opens the file for reading only, sharing it with other
	// readers (but not with a writer). Writes return an error.
	ReadOnly bool
	// CacheResponses keeps every stored response in memory, so that
	// Response — an OCSP responder's every request — is a map lookup
	// rather than a B+tree walk through a file much larger than the
	// responses. It costs about 150 bytes plus the response per record
	// (about 500 MB per million P-256 responses; each entry also holds a
	// [Memo], see [BoltStore.CachedResponse]) and a scan of the records
	// at Open (a few seconds per million). Every commit that
	// changes a response updates the cache once durable, before the
	// writer returns, and no other process writes the file while this one
	// holds it, so the cache is never behind the file.
	CacheResponses bool
}

// BoltStore is the embedded [Store]: one bbolt file, one process.
//
// Writes from many goroutines are coalesced: a single committer takes every
// write waiting when it becomes free and commits them in one transaction,
// so N concurrent writers cost far fewer than N pairs of fdatasyncs while a
// lone writer never waits for a timer. Reads use their own read
// transactions and never wait for writers.
type BoltStore struct {
	db        *bolt.DB
	path      string
	validator *Validator
	due       DuePolicy
	skew      time.Duration
	now       func() time.Time
	maxBatch  int
	readOnly  bool

	mu       sync.RWMutex // guards closed and sends on ops
	closed   bool
	ops      chan *writeOp
	loopDone chan struct{}

	commits atomic.Uint64
	writes  atomic.Uint64

	cache *responseCache // nil unless Options.CacheResponses
}

// The optional interfaces are found by type assertion (the sweeper,
// RefreshResponses): a signature that drifted would fall back silently.
var (
	_ Store             = (*BoltStore)(nil)
	_ DueReader         = (*BoltStore)(nil)
	_ ResponseRefresher = (*BoltStore)(nil)
)

// Open opens or creates the store at path (file mode 0600). It fails with a
// clear error if another process holds the file, if the file is not a
// precert store, or if its schema is newer than this build's.
func Open(path string, opts Options) (*BoltStore, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.Skew == 0 {
		opts.Skew = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	v, err := NewValidator(opts.Issuers...)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("ocspstate: opening %s read-only: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("ocspstate: %s is in use by another process (file lock not released within %s); stop that process or open a copy", path, opts.LockTimeout)
		}
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrChecksum) {
			return nil, fmt.Errorf("ocspstate: %s is not a valid bbolt file (%v); restore it from backup", path, err)
		}
		return nil, fmt.Errorf("ocspstate: opening %s: %w", path, err)
	}
	s := &BoltStore{
		db: db, path: path, validator: v, due: opts.Due, skew: opts.Skew, now: opts.Now,
		maxBatch: opts.MaxBatch, readOnly: opts.ReadOnly,
		ops: make(chan *writeOp, opts.MaxBatch), loopDone: make(chan struct{}),
	}
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	if opts.CacheResponses {
		s.cache = newResponseCache()
		if err := db.View(s.cache.load); err != nil {
			db.Close()
			return nil, fmt.Errorf("ocspstate: loading the response cache from %s: %w", path, err)
		}
	}
	go s.commitLoop()
	return s, nil
}

func (s *BoltStore) checkSchema() error {
	check := func(tx *bolt.Tx) (bool, error) {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketRecords) != nil {
				return false, fmt.Errorf("ocspstate: %s has records but no schema version: not a precert store, or damaged", s.path)
			}
			return false, nil
		}
		raw := meta.Get(metaSchema)
		if len(raw) != 4 {
			return false, fmt.Errorf("ocspstate: %s has no valid schema version: not a precert store, or damaged", s.path)
		}
		if v := binary.BigEndian.Uint32(raw); v > SchemaVersion {
			return false, fmt.Errorf("ocspstate: %s has schema version %d, newer than this build's %d: run a newer precert", s.path, v, SchemaVersion)
		} else if v < SchemaVersion {
			return false, fmt.Errorf("ocspstate: %s has schema version %d, older than this build's %d, and no migration exists", s.path, v, SchemaVersion)
		}
		return true, nil
	}
	if s.readOnly {
		return s.db.View(func(tx *bolt.Tx) error {
			ok, err := check(tx)
			if err == nil && !ok {
				err = fmt.Errorf("ocspstate: %s is not a precert store (no schema version)", s.path)
			}
			return err
		})
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ok, err := check(tx)
		if err != nil || ok {
			return err
		}
		for _, name := range [][]byte{bucketRecords, bucketBlobs, bucketDue, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

// Path returns the file the store was opened from.
func (s *BoltStore) Path() string { return s.path }

// Validator returns the validator the store checks responses with.
func (s *BoltStore) Validator() *Validator { return s.validator }

// BoltStats counts the store's work since Open.
type BoltStats struct {
	// Commits is the number of write transactions committed; each costs
	// bbolt two fdatasyncs (data pages, then the meta page).
	Commits uint64
	// Writes is the number of records written (reservations and updates).
	Writes uint64
}

// Stats returns counters since Open; Writes/Commits is the mean batch size.
func (s *BoltStore) Stats() BoltStats {
	return BoltStats{Commits: s.commits.Load(), Writes: s.writes.Load()}
}

// Reserve implements [Store.Reserve].
func (s *BoltStore) Reserve(ctx context.Context, r *Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckReserve(r); err != nil {
		return err
	}
	rec := r.Clone()
	now := s.now()
	rec.Version, rec.Created, rec.Updated = 1, now, now
	rec.Due = s.due.Due(rec, now)
	normalizeTimes(rec)
	enc := encodeHot(rec)
	key := []byte(rec.Key())
	return s.write(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords).Get(key) != nil {
			return refuse(fmt.Errorf("%w: serial %s under issuer %s", ErrSerialExists, SerialHex(rec.Serial), rec.Issuer))
		}
		return putRecord(tx, key, nil, rec, enc)
	})
}

// Get implements [Store.Get].
func (s *BoltStore) Get(ctx context.Context, issuer IssuerID, serial *big.Int) (*Record, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if err := lookupSerial(issuer, serial); err != nil {
		return nil, err
	}
	return s.get(NewKey(issuer, serial), issuer, serial)
}

func (s *BoltStore) get(key Key, issuer IssuerID, serial *big.Int) (*Record, error) {
	var rec *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%w: serial %s under issuer %s", ErrNotFound, SerialHex(serial), issuer)
		}
		var err error
		rec, err = readRecord(tx, key, v)
		return err
	})
	return rec, s.mapErr(err)
}

// readRecord decodes the record stored under key, whose hot part is hot.
func readRecord(tx *bolt.Tx, key Key, hot []byte) (*Record, error) {
	blobs := tx.Bucket(bucketBlobs)
	bkey := make([]byte, len(key)+1)
	copy(bkey, key)
	return decodeRecord(key, hot, func(tag byte) []byte {
		bkey[len(key)] = tag
		return blobs.Get(bkey)
	})
}

// lookupSerial refuses serials no record can have: keys hold the serial's
// magnitude, so a negative serial would otherwise find its positive twin.
func lookupSerial(issuer IssuerID, serial *big.Int) error {
	if err := CheckSerial(serial); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return nil
}

// maxOptimistic is how many times Update commits outside the committer
// before it asks the committer to run the closure inside the transaction.
const maxOptimistic = 2

// Update implements [Store.Update]. The closure first runs outside any
// write transaction and the result is committed with a compare-and-swap on
// Version; if concurrent writers keep winning, the closure runs once more
// inside the committer's transaction, where nobody can interleave.
func (s *BoltStore) Update(ctx context.Context, issuer IssuerID, serial *big.Int, fn func(*Record) error) (*Record, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if err := lookupSerial(issuer, serial); err != nil {
		return nil, err
	}
	key := NewKey(issuer, serial)
	for attempt := 0; attempt < maxOptimistic; attempt++ {
		old, err := s.get(key, issuer, serial)
		if err != nil {
			return nil, err
		}
		next, enc, err := s.prepare(old, fn)
		if err != nil || enc == nil {
			return next, err
		}
		err = s.write(ctx, func(tx *bolt.Tx) error {
			cur := tx.Bucket(bucketRecords).Get([]byte(key))
			v, err := storedVersion(cur)
			if err != nil {
				return refuse(err)
			}
			if v != old.Version {
				return refuse(errVersionMoved)
			}
			s.cache.writeThrough(tx, []byte(key), old.OCSP.ResponseDER, next.OCSP.ResponseDER)
			return putRecord(tx, []byte(key), old, next, enc)
		})
		if errors.Is(err, errVersionMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
	// Contended: run the closure where nobody can interleave.
	var out *Record
	err := s.write(ctx, func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketRecords).Get([]byte(key))
		if cur == nil {
			return refuse(fmt.Errorf("%w: serial %s under issuer %s", ErrNotFound, SerialHex(serial), issuer))
		}
		old, err := readRecord(tx, key, cur)
		if err != nil {
			return refuse(err)
		}
		next, enc, err := s.prepare(old, fn)
		if err != nil {
			return refuse(err)
		}
		out = next
		if enc == nil {
			return nil
		}
		s.cache.writeThrough(tx, []byte(key), old.OCSP.ResponseDER, next.OCSP.ResponseDER)
		return putRecord(tx, []byte(key), old, next, enc)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var errVersionMoved = errors.New("ocspstate: version moved")

// prepare runs fn on a copy of old and checks the result. It returns the
// record as it will be stored and its encoding, or old and a nil encoding
// when fn changed nothing.
func (s *BoltStore) prepare(old *Record, fn func(*Record) error) (*Record, []byte, error) {
	next, err := PrepareUpdate(old, fn, s.now(), s.due, s.validator, s.skew, normalizeTimes)
	if err != nil || next == old {
		return next, nil, err
	}
	return next, encodeHot(next), nil
}

// putRecord writes rec (whose hot part is hot) over old (nil for a new
// record) in tx: the hot part, every immutable field that changed (each is
// set once), the due index and the state counts.
func putRecord(tx *bolt.Tx, key []byte, old, rec *Record, hot []byte) error {
	if err := tx.Bucket(bucketRecords).Put(key, hot); err != nil {
		return err
	}
	blobs := tx.Bucket(bucketBlobs)
	for _, tag := range blobTags {
		v := blob(rec, tag)
		if old != nil && bytes.Equal(blob(old, tag), v) {
			continue
		}
		bkey := append(append(make([]byte, 0, len(key)+1), key...), tag)
		var err error
		if len(v) == 0 {
			err = blobs.Delete(bkey)
		} else {
			err = blobs.Put(bkey, v)
		}
		if err != nil {
			return err
		}
	}
	due := tx.Bucket(bucketDue)
	if old != nil && !old.Due.IsZero() {
		if err := due.Delete(dueKey(old.Due, key)); err != nil {
			return err
		}
	}
	if !rec.Due.IsZero() {
		// The index entry carries the record's hot part too, so that Due
		// reads one bucket in order instead of looking each record up.
		if err := due.Put(dueKey(rec.Due, key), hot); err != nil {
			return err
		}
	}
	if old == nil || old.State != rec.State {
		meta := tx.Bucket(bucketMeta)
		if old != nil {
			if err := addCount(meta, old.State, -1); err != nil {
				return err
			}
		}
		if err := addCount(meta, rec.State, 1); err != nil {
			return err
		}
	}
	return nil
}

// normalizeTimes gives r's times the form they have once stored: UTC, no
// monotonic clock reading.
func normalizeTimes(r *Record) {
	for _, t := range []*time.Time{&r.NotBefore, &r.NotAfter, &r.OCSP.RevokedAt, &r.OCSP.ThisUpdate, &r.OCSP.NextUpdate,
		&r.Lease.Expires, &r.Created, &r.Updated, &r.Due} {
		*t = time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
	}
}

func countKey(st State) []byte { return []byte{'c', 'o', 'u', 'n', 't', '/', byte(st)} }

func addCount(meta *bolt.Bucket, st State, delta int64) error {
	k := countKey(st)
	var n int64
	if v := meta.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return meta.Put(k, binary.BigEndian.AppendUint64(nil, uint64(n+delta)))
}

// dueKey orders by time: Unix nanoseconds with the sign bit flipped, big
// endian, then the record key. Times outside int64 nanoseconds clamp.
func dueKey(t time.Time, key []byte) []byte {
	var ns int64
	switch {
	case t.Year() < 1680:
		ns = math.MinInt64
	case t.Year() > 2260:
		ns = math.MaxInt64
	default:
		ns = t.UnixNano()
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), uint64(ns)^(1<<63))
	return append(b, key...)
}

// Due implements [Store.Due].
func (s *BoltStore) Due(ctx context.Context, now time.Time, limit int) ([]*Record, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	// The index carries each record's hot part: one ordered read, no
	// lookup per record.
	entries, err := s.DueAfter(ctx, now, nil, limit, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, len(entries))
	for i := range entries {
		if out[i], err = entries[i].Record(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Response implements [Store.Response].
func (s *BoltStore) Response(ctx context.Context, issuer IssuerID, serial *big.Int) ([]byte, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if err := lookupSerial(issuer, serial); err != nil {
		return nil, err
	}
	if s.cache != nil {
		var buf [keyBufSize]byte
		if resp, ok := s.cache.get(appendKey(buf[:0], issuer, serial)); ok {
			return resp, nil
		}
		// Not cached: no response, or no record; the file says which.
	}
	key := NewKey(issuer, serial)
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%w: no record for serial %s under issuer %s", ErrNotFound, SerialHex(serial), issuer)
		}
		resp, err := storedResponse(v)
		if err != nil {
			return err
		}
		if len(resp) == 0 {
			return fmt.Errorf("%w: no response for serial %s under issuer %s", ErrNotFound, SerialHex(serial), issuer)
		}
		out = append([]byte(nil), resp...)
		return nil
	})
	return out, s.mapErr(err)
}

// CachedResponse returns the response stored for (issuer, serial) from
// the response cache ([Options.CacheResponses]) without copying it,
// together with the [Memo] attached to those bytes (the zero Memo if
// none). ok is false when the store keeps no cache, or holds no response
// for (issuer, serial): [BoltStore.Response] then says which, and why.
//
// der is shared by every caller: it must not be modified. It stays valid,
// and unchanged, after the response is replaced.
func (s *BoltStore) CachedResponse(issuer IssuerID, serial *big.Int) (der []byte, memo Memo, ok bool) {
	if s.cache == nil || CheckSerial(serial) != nil {
		return nil, Memo{}, false
	}
	var buf [keyBufSize]byte
	return s.cache.view(appendKey(buf[:0], issuer, serial))
}

// SetMemo attaches memo to the response stored for (issuer, serial), if
// that is still der, the very slice [BoltStore.CachedResponse] returned,
// and reports whether it did. It does not when the response has been
// replaced meanwhile (the new one starts with the zero Memo), or moved in
// memory; the caller may try again after its next lookup.
func (s *BoltStore) SetMemo(issuer IssuerID, serial *big.Int, der []byte, memo Memo) bool {
	if s.cache == nil || CheckSerial(serial) != nil {
		return false
	}
	var buf [keyBufSize]byte
	return s.cache.setMemo(appendKey(buf[:0], issuer, serial), der, memo)
}

// Counts implements [Store.Counts].
func (s *BoltStore) Counts(ctx context.Context) (map[State]int, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	out := make(map[State]int, len(States))
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, st := range States {
			if v := meta.Get(countKey(st)); len(v) == 8 {
				out[st] = int(binary.BigEndian.Uint64(v))
			}
		}
		return nil
	})
	return out, s.mapErr(err)
}

// scanPage is how many records Scan reads per read transaction.
const scanPage = 1000

// Scan implements [Store.Scan].
func (s *BoltStore) Scan(ctx context.Context, fn func(*Record) error) error {
	var after []byte
	for {
		if err := s.readable(ctx); err != nil {
			return err
		}
		var page []*Record
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(page) < scanPage; k, v = c.Next() {
				r, err := readRecord(tx, Key(k), v)
				if err != nil {
					return fmt.Errorf("record %x: %w", k, err)
				}
				page = append(page, r)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return s.mapErr(err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
	}
}

// Close implements [Store.Close].
func (s *BoltStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.loopDone
	return s.db.Close()
}

func (s *BoltStore) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

func (s *BoltStore) mapErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, bolterrors.ErrTxClosed) {
		return ErrClosed
	}
	return err
}

// A writeOp is one write waiting for the committer. apply runs inside the
// shared transaction: it must check first and write last, and return a
// refusal (see refuse) for anything it declines, having written nothing.
// Any other error aborts the whole transaction.
//
// A writeOp may also write several records (see writeMany): apply then
// returns how many it wrote, refusing the others itself.
type writeOp struct {
	ctx   context.Context
	apply func(*bolt.Tx) (int, error)
	done  chan error
}

type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func refuse(err error) error { return refusal{err} }

func (s *BoltStore) write(ctx context.Context, apply func(*bolt.Tx) error) error {
	return s.writeMany(ctx, func(tx *bolt.Tx) (int, error) {
		if err := apply(tx); err != nil {
			return 0, err
		}
		return 1, nil
	})
}

// writeMany queues a write of several records: apply returns how many it
// wrote, and a refusal only for a refusal of them all.
func (s *BoltStore) writeMany(ctx context.Context, apply func(*bolt.Tx) (int, error)) error {
	if s.readOnly {
		return fmt.Errorf("ocspstate: %s was opened read-only", s.path)
	}
	op := &writeOp{ctx: ctx, apply: apply, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.ops <- op
	s.mu.RUnlock()
	// Once queued, the write completes or is refused as a whole; the
	// caller's context is checked when the committer reaches it, so the
	// answer always says truthfully whether it was written.
	err := <-op.done
	var r refusal
	if errors.As(err, &r) {
		return r.err
	}
	return err
}

func (s *BoltStore) commitLoop() {
	defer close(s.loopDone)
	batch := make([]*writeOp, 0, s.maxBatch)
	for first := range s.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case op, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit applies batch in one transaction. If the transaction fails as a
// whole, each write is retried alone, so one bad write cannot take the
// others down with it.
func (s *BoltStore) commit(batch []*writeOp) {
	results := make([]error, len(batch))
	written := 0
	err := func() error {
		tx, err := s.db.Begin(true)
		if err != nil {
			return err
		}
		for i, op := range batch {
			if err := op.ctx.Err(); err != nil {
				results[i] = refuse(err)
				continue
			}
			n, err := op.apply(tx)
			var r refusal
			if err != nil && !errors.As(err, &r) {
				tx.Rollback()
				return err
			}
			results[i] = err
			if err == nil {
				written += n
			}
		}
		if written == 0 {
			// Everything was refused: nothing to make durable.
			return tx.Rollback()
		}
		return tx.Commit()
	}()
	if err != nil {
		if len(batch) > 1 {
			for _, op := range batch {
				s.commit([]*writeOp{op})
			}
			return
		}
		results[0] = fmt.Errorf("ocspstate: committing to %s: %w", s.path, err)
	} else if written > 0 {
		s.commits.Add(1)
		s.writes.Add(uint64(written))
	}
	for i, op := range batch {
		op.done <- results[i]
	}
}
