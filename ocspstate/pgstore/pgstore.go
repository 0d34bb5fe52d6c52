package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certpipe/precert/ocspstate"
)

// DefaultSchema is the schema Open uses when Options.Schema is empty.
const DefaultSchema = "precert"

// Options configure [Open]. The zero value opens the schema "precert"
// with a store that can reserve, read and update records but refuses to
// commit any OCSP response, since it has no issuer to validate one
// against — as [ocspstate.Open] does.
type Options struct {
	// Issuers are the CA certificates whose responses the store validates
	// before committing them. A record whose issuer is not listed can be
	// reserved but never enter Precert.
	Issuers []*x509.Certificate
	// Due is the due-time policy applied on every write. Every process
	// sharing a schema must use the same one.
	Due ocspstate.DuePolicy
	// Skew is the tolerance for a response's thisUpdate being ahead of the
	// store's clock. Zero means 5 minutes.
	Skew time.Duration
	// Now is the clock for Created, Updated, due times and claims. Nil
	// means time.Now. Processes sharing a schema need clocks that agree to
	// well within the lease and claim durations (NTP is enough).
	Now func() time.Time
	// Schema is the PostgreSQL schema holding the tables; Open creates it
	// and migrates it. Empty means "precert". Separate schemas are
	// separate stores (tests use one each).
	Schema string
	// MaxConns caps the pool's connections to the server. Zero means 16.
	// Every process opening the store holds up to this many: keep the sum
	// over all processes below the server's max_connections.
	MaxConns int32
	// ClaimTTL is how long a record that Due returned is withheld from
	// the Due calls of other store instances (other processes, or other
	// Opens), so that several sweepers split the due records instead of
	// all doing the same ones. Any committed write of the record (an
	// Update, a refresh of its response) ends the claim early. Zero means 1 minute; a negative value turns claims off,
	// and every Due caller then sees every due record.
	ClaimTTL time.Duration
	// WriteTimeout bounds each write once it is sent: a write is not
	// abandoned when the caller's context ends (so that its result says
	// truthfully whether it was committed), only after this long. Zero
	// means 30 seconds.
	WriteTimeout time.Duration
}

// Store is an [ocspstate.Store] in PostgreSQL, for several CA instances,
// responders and sweepers sharing one state. It is safe for concurrent use
// by any number of goroutines and processes.
//
// Each Reserve and Update is one transaction, and each RefreshResponses
// batch is one, committed with the server's synchronous_commit on: when
// it returns nil, the write is in the server's write-ahead log on disk.
type Store struct {
	pool         *pgxpool.Pool
	schema       string
	validator    *ocspstate.Validator
	due          ocspstate.DuePolicy
	skew         time.Duration
	now          func() time.Time
	claimTTL     time.Duration
	claimOwner   string
	writeTimeout time.Duration
	sql          statements

	gate gate

	// claimedUpTo is the latest now passed to a claiming Due. Every record
	// this instance still claims was due by then (an Update clears the
	// claim), so Close releases its claims through the due index with it:
	// claim_owner has no index of its own.
	claimMu     sync.Mutex
	claimedUpTo time.Time

	writes    atomic.Uint64
	conflicts atomic.Uint64
	claimed   atomic.Uint64
}

var _ ocspstate.Store = (*Store)(nil)

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value string, as pgx reads it), creates or migrates the schema
// (under an advisory lock, so that processes opening it at once do not
// race), and returns the store. It fails with a clear error if the server
// cannot be reached, if the schema was made by a newer build
// ([ErrSchemaTooNew]), or if the DSN turns synchronous_commit off.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if len(opts.Schema) > 63 || strings.ContainsRune(opts.Schema, 0) {
		return nil, fmt.Errorf("pgstore: schema name %q is not a valid PostgreSQL identifier (at most 63 bytes)", opts.Schema)
	}
	if opts.Skew == 0 {
		opts.Skew = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.ClaimTTL == 0 {
		opts.ClaimTTL = time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	v, err := ocspstate.NewValidator(opts.Issuers...)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading the DSN: %w", err)
	}
	switch sc := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; sc {
	case "", "on", "local", "remote_write", "remote_apply":
		if sc == "" {
			// Whatever the server's default: a commit this store reports
			// must be on disk before anything is published (I1, I3).
			cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
		}
	default:
		return nil, fmt.Errorf("pgstore: the DSN sets synchronous_commit=%s: commits could be reported before they are durable, and a crash could then lose an OCSP response already published; remove it", sc)
	}
	cfg.MaxConns = opts.MaxConns
	where := fmt.Sprintf("%s:%d/%s as %s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, cfg.ConnConfig.User)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connecting to %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connecting to %s: %w (is PostgreSQL running, and does the DSN name the right host, user and database?)", where, err)
	}
	s := &Store{
		pool: pool, schema: opts.Schema, validator: v, due: opts.Due, skew: opts.Skew, now: opts.Now,
		claimTTL: opts.ClaimTTL, claimOwner: newClaimOwner(), writeTimeout: opts.WriteTimeout,
		sql: newStatements(pgx.Identifier{opts.Schema}.Sanitize()),
	}
	s.gate.init()
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newClaimOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// Schema returns the schema the store lives in.
func (s *Store) Schema() string { return s.schema }

// Validator returns the validator the store checks responses with.
func (s *Store) Validator() *ocspstate.Validator { return s.validator }

// Stats counts the store's work since Open.
type Stats struct {
	// Writes is the number of records written: reservations and updates,
	// one transaction each, and refreshed responses, one transaction per
	// RefreshResponses batch.
	Writes uint64
	// Conflicts is the number of times an Update's compare-and-swap found
	// that another writer had committed first, and ran its closure again.
	Conflicts uint64
	// Claimed is the number of records Due handed out under a claim.
	Claimed uint64
}

// Stats returns counters since Open.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Conflicts: s.conflicts.Load(), Claimed: s.claimed.Load()}
}

// Reserve implements [ocspstate.Store.Reserve]: one INSERT … ON CONFLICT
// DO NOTHING, so that of concurrent reservations of one serial, from any
// number of processes, exactly one wins.
func (s *Store) Reserve(ctx context.Context, r *ocspstate.Record) error {
	if err := s.gate.enter(ctx); err != nil {
		return err
	}
	defer s.gate.leave()
	if err := ocspstate.CheckReserve(r); err != nil {
		return err
	}
	rec := r.Clone()
	now := norm(s.now())
	rec.Version, rec.Created, rec.Updated = 1, now, now
	normalize(rec)
	rec.Due = norm(s.due.Due(rec, now))
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(wctx, s.sql.reserve,
		rec.Issuer[:], rec.Serial.Bytes(), int64(rec.Version), int16(rec.State), rec.OCSP.Enabled, int16(rec.OCSP.Status),
		ts(rec.OCSP.RevokedAt), int16(rec.OCSP.Reason), nilIfEmpty(rec.OCSP.ResponseDER), ts(rec.OCSP.ThisUpdate), ts(rec.OCSP.NextUpdate),
		ts(rec.NotBefore), ts(rec.NotAfter), rec.Lease.Owner, ts(rec.Lease.Expires), ts(rec.Created), ts(rec.Updated), ts(rec.Due),
		rec.IntentDER, shard()).Scan(&n)
	if err != nil {
		return writeErr(fmt.Sprintf("reserving serial %s under issuer %s", ocspstate.SerialHex(rec.Serial), rec.Issuer), err)
	}
	if n == 0 {
		return fmt.Errorf("%w: serial %s under issuer %s", ocspstate.ErrSerialExists, ocspstate.SerialHex(rec.Serial), rec.Issuer)
	}
	s.writes.Add(1)
	return nil
}

// Get implements [ocspstate.Store.Get].
func (s *Store) Get(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) (*ocspstate.Record, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	if err := lookupSerial(serial); err != nil {
		return nil, err
	}
	return s.get(ctx, s.pool, s.sql.get, issuer, serial)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) get(ctx context.Context, q querier, query string, issuer ocspstate.IssuerID, serial *big.Int) (*ocspstate.Record, error) {
	r, err := scanRecord(q.QueryRow(ctx, query, issuer[:], serial.Bytes()), true)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w: serial %s under issuer %s", ocspstate.ErrNotFound, ocspstate.SerialHex(serial), issuer)
	case err != nil:
		return nil, fmt.Errorf("pgstore: reading serial %s under issuer %s: %w", ocspstate.SerialHex(serial), issuer, err)
	}
	return r, nil
}

// lookupSerial refuses serials no record can have: rows hold the serial's
// magnitude, so a negative serial would otherwise find its positive twin.
func lookupSerial(serial *big.Int) error {
	if err := ocspstate.CheckSerial(serial); err != nil {
		return fmt.Errorf("%w: %v", ocspstate.ErrNotFound, err)
	}
	return nil
}

// maxOptimistic is how many compare-and-swap attempts Update makes before
// it runs the closure under a row lock, where nobody can interleave.
const maxOptimistic = 2

// maxLocked is how many times the locked attempt is retried after the
// server aborted it to break a deadlock or a serialization conflict.
const maxLocked = 5

// Update implements [ocspstate.Store.Update]. The closure first runs on a
// record read without a lock, and the result is written with a
// compare-and-swap on version (UPDATE … WHERE version = old): one round
// trip to read, one to commit. If concurrent writers keep winning, the
// closure runs once more inside a transaction holding the row lock
// (SELECT … FOR UPDATE), where it cannot lose.
func (s *Store) Update(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int, fn func(*ocspstate.Record) error) (*ocspstate.Record, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	if err := lookupSerial(serial); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < maxOptimistic; attempt++ {
		old, err := s.get(ctx, s.pool, s.sql.get, issuer, serial)
		if err != nil {
			return nil, err
		}
		next, err := s.prepare(old, fn)
		if err != nil || next == old {
			return next, err
		}
		wctx, cancel := s.writeCtx(ctx)
		ok, err := s.put(wctx, s.pool, old, next)
		cancel()
		if err != nil && !retryable(err) {
			return nil, writeErr(fmt.Sprintf("updating serial %s under issuer %s", ocspstate.SerialHex(serial), issuer), err)
		}
		if ok {
			s.writes.Add(1)
			return next, nil
		}
		s.conflicts.Add(1)
	}
	var lastErr error
	for attempt := 0; attempt < maxLocked; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, written, err := s.updateLocked(ctx, issuer, serial, fn)
		if err == nil {
			if written {
				s.writes.Add(1)
			}
			return next, nil
		}
		if !retryable(err) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: serial %s under issuer %s: %v", ocspstate.ErrConflict, ocspstate.SerialHex(serial), issuer, lastErr)
}

// updateLocked runs fn on the record while holding its row lock, and
// commits the result.
func (s *Store) updateLocked(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int, fn func(*ocspstate.Record) error) (*ocspstate.Record, bool, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	tx, err := s.pool.Begin(wctx)
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: updating serial %s under issuer %s: %w", ocspstate.SerialHex(serial), issuer, err)
	}
	defer tx.Rollback(wctx)
	old, err := s.get(wctx, tx, s.sql.getForUpdate, issuer, serial)
	if err != nil {
		return nil, false, err
	}
	next, err := s.prepare(old, fn)
	if err != nil {
		return nil, false, err
	}
	if next == old {
		return old, false, nil
	}
	ok, err := s.put(wctx, tx, old, next)
	if err == nil && !ok {
		err = fmt.Errorf("%w: version of serial %s moved under a row lock", ocspstate.ErrCorrupt, ocspstate.SerialHex(serial))
	}
	if err == nil {
		err = tx.Commit(wctx)
	}
	if err != nil {
		return nil, false, writeErr(fmt.Sprintf("updating serial %s under issuer %s", ocspstate.SerialHex(serial), issuer), err)
	}
	return next, true, nil
}

// writeErr wraps the failure of a write. When the server did not answer
// with an error of its own, the connection failed, maybe during the
// commit: the write may or may not have been committed, and the message
// says how to find out.
func writeErr(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) || errors.Is(err, ocspstate.ErrCorrupt) {
		return fmt.Errorf("pgstore: %s: %w", what, err)
	}
	return fmt.Errorf("pgstore: %s: %w (if the connection failed during the commit, the write may have been committed: read the record to know)", what, err)
}

// retryable reports whether the server aborted a statement only to
// resolve a conflict between transactions (deadlock detected,
// serialization failure): running it again is safe.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// prepare runs fn on a copy of old and checks the result
// ([ocspstate.PrepareUpdate]). It returns the record as it will be
// stored, or old itself when fn changed nothing.
func (s *Store) prepare(old *ocspstate.Record, fn func(*ocspstate.Record) error) (*ocspstate.Record, error) {
	return ocspstate.PrepareUpdate(old, fn, norm(s.now()), s.due, s.validator, s.skew, normalize)
}

// put writes next over old if the stored version is still old's, in one
// statement: the hot columns, each immutable column being set for the
// first time, the claim cleared, and the state counters if the state
// changed. It reports whether the compare-and-swap matched.
func (s *Store) put(ctx context.Context, q querier, old, next *ocspstate.Record) (bool, error) {
	query, args := s.putQuery(old, next)
	if old.State == next.State {
		tag, err := q.Exec(ctx, query, args...)
		return err == nil && tag.RowsAffected() == 1, err
	}
	var rows int
	if err := q.QueryRow(ctx, query, args...).Scan(&rows); err != nil {
		return false, err
	}
	return rows == 1, nil
}

// putQuery is put's statement and its arguments: an UPDATE that matches
// one row if the compare-and-swap holds, or, when the state changes, a
// query whose one row counts the rows it updated (0 or 1).
func (s *Store) putQuery(old, next *ocspstate.Record) (string, []any) {
	args := []any{
		next.Issuer[:], next.Serial.Bytes(), int64(old.Version),
		int64(next.Version), int16(next.State), next.OCSP.Enabled, int16(next.OCSP.Status), ts(next.OCSP.RevokedAt),
		int16(next.OCSP.Reason), nilIfEmpty(next.OCSP.ResponseDER), ts(next.OCSP.ThisUpdate), ts(next.OCSP.NextUpdate),
		next.Lease.Owner, ts(next.Lease.Expires), ts(next.Updated), ts(next.Due),
	}
	var set strings.Builder
	add := func(col string, v any) {
		args = append(args, v)
		fmt.Fprintf(&set, ", %s = $%d", col, len(args))
	}
	// Each immutable column is written once, when first set, so that a
	// hot-field update keeps pointing at the stored value.
	if len(old.PrecertDER) == 0 && len(next.PrecertDER) != 0 {
		add("precert", next.PrecertDER)
	}
	if len(old.SCTs) == 0 && len(next.SCTs) != 0 {
		add("scts", next.SCTs)
	}
	if len(old.FinalDER) == 0 && len(next.FinalDER) != 0 {
		add("final", next.FinalDER)
	}
	query := s.sql.updateHead + set.String() + s.sql.updateTail
	if old.State == next.State {
		return query, args
	}
	args = append(args, int16(old.State), int16(next.State), shard())
	n := len(args)
	query = fmt.Sprintf("WITH u AS (%s RETURNING 1), c AS (%s) SELECT count(*) FROM u", query,
		fmt.Sprintf(s.sql.countMove, n-2, n-1, n))
	return query, args
}

// Due implements [ocspstate.Store.Due]. It walks the partial index on due
// and, unless claims are off, claims what it returns for ClaimTTL in the
// same statement (SELECT … FOR UPDATE SKIP LOCKED, then UPDATE): records
// claimed by another store instance, or locked by a concurrent Due, are
// passed over, so sweepers in several processes split the due records
// between them. The same instance gets its own claimed records again.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]*ocspstate.Record, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	if limit <= 0 {
		return nil, nil
	}
	var rows pgx.Rows
	var err error
	if s.claimTTL < 0 {
		rows, err = s.pool.Query(ctx, s.sql.due, now, limit)
	} else {
		s.claimMu.Lock()
		if now.After(s.claimedUpTo) {
			s.claimedUpTo = now
		}
		s.claimMu.Unlock()
		t := s.now()
		rows, err = s.pool.Query(ctx, s.sql.dueClaim, now, s.claimOwner, t, limit, t.Add(s.claimTTL))
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading due records: %w", err)
	}
	out, err := collect(rows, false)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading due records: %w", err)
	}
	if s.claimTTL >= 0 {
		s.claimed.Add(uint64(len(out)))
		// UPDATE … RETURNING has no order.
		sort.Slice(out, func(i, j int) bool {
			if !out[i].Due.Equal(out[j].Due) {
				return out[i].Due.Before(out[j].Due)
			}
			return out[i].Key() < out[j].Key()
		})
	}
	return out, nil
}

// Response implements [ocspstate.Store.Response]: one primary-key lookup
// reading one column.
func (s *Store) Response(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) ([]byte, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	if err := lookupSerial(serial); err != nil {
		return nil, err
	}
	var resp []byte
	err := s.pool.QueryRow(ctx, s.sql.response, issuer[:], serial.Bytes()).Scan(&resp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w: no record for serial %s under issuer %s", ocspstate.ErrNotFound, ocspstate.SerialHex(serial), issuer)
	case err != nil:
		return nil, fmt.Errorf("pgstore: reading the response for serial %s under issuer %s: %w", ocspstate.SerialHex(serial), issuer, err)
	case len(resp) == 0:
		return nil, fmt.Errorf("%w: no response for serial %s under issuer %s", ocspstate.ErrNotFound, ocspstate.SerialHex(serial), issuer)
	}
	return resp, nil
}

// Counts implements [ocspstate.Store.Counts] from the counters every
// write keeps in its own transaction: its cost does not grow with the
// number of records.
func (s *Store) Counts(ctx context.Context) (map[ocspstate.State]int, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	rows, err := s.pool.Query(ctx, s.sql.counts)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading counts: %w", err)
	}
	out := make(map[ocspstate.State]int, len(ocspstate.States))
	var st int16
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		if !ocspstate.State(st).Valid() || n < 0 {
			return fmt.Errorf("%w: count %d for state %d", ocspstate.ErrCorrupt, n, st)
		}
		out[ocspstate.State(st)] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading counts: %w", err)
	}
	return out, nil
}

// scanPage is how many records Scan reads per query.
const scanPage = 1000

// Scan implements [ocspstate.Store.Scan]: pages in primary-key order,
// each page its own statement starting after the last key seen.
func (s *Store) Scan(ctx context.Context, fn func(*ocspstate.Record) error) error {
	var afterIssuer, afterSerial []byte
	for {
		page, err := s.scanPage(ctx, afterIssuer, afterSerial)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		last := page[len(page)-1]
		afterIssuer, afterSerial = last.Issuer[:], last.Serial.Bytes()
	}
}

func (s *Store) scanPage(ctx context.Context, afterIssuer, afterSerial []byte) ([]*ocspstate.Record, error) {
	if err := s.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	var rows pgx.Rows
	var err error
	if afterIssuer == nil {
		rows, err = s.pool.Query(ctx, s.sql.scanFirst, scanPage)
	} else {
		rows, err = s.pool.Query(ctx, s.sql.scanNext, afterIssuer, afterSerial, scanPage)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: scanning: %w", err)
	}
	page, err := collect(rows, true)
	if err != nil {
		return nil, fmt.Errorf("pgstore: scanning: %w", err)
	}
	return page, nil
}

// collect decodes every row of rows (see scanRecord) and closes them.
func collect(rows pgx.Rows, full bool) ([]*ocspstate.Record, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*ocspstate.Record, error) {
		return scanRecord(row, full)
	})
}

// Close implements [ocspstate.Store.Close]. It waits for calls in
// progress, hands back the claims this instance holds (so other sweepers
// need not wait for them to expire; if that fails, they expire after
// ClaimTTL), and closes the connections.
func (s *Store) Close() error {
	if !s.gate.close() {
		return nil
	}
	s.claimMu.Lock()
	upTo := s.claimedUpTo
	s.claimMu.Unlock()
	if !upTo.IsZero() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.pool.Exec(ctx, s.sql.releaseClaims, s.claimOwner, upTo)
		cancel()
	}
	s.pool.Close()
	return nil
}

func (s *Store) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.writeTimeout)
}

// shard picks one of the 64 counter rows of a state.
func shard() int16 { return int16(mrand.IntN(64)) }

// gate refuses calls after Close and lets Close wait for calls in
// progress. Unlike a sync.RWMutex it never blocks a call that enters while
// another is inside, so a closure that calls the store cannot deadlock
// with a pending Close.
type gate struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{}
}

func (g *gate) init() { g.idle = make(chan struct{}) }

func (g *gate) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ocspstate.ErrClosed
	}
	g.n++
	return nil
}

func (g *gate) leave() {
	g.mu.Lock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
}

// close shuts the gate and waits until no call is inside. It reports
// false if the gate was already closed.
func (g *gate) close() bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	if g.n == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
	<-g.idle
	return true
}
