// Package pgstore is an [ocspstate.Store] in PostgreSQL, for a CA that runs
// several issuers, responders and recovery sweepers — in several processes,
// on several machines — over one shared state. The embedded bbolt store
// ([ocspstate.Open]) serves one process; this one serves many.
//
// It keeps every rule of the package it implements: each write runs
// [ocspstate.CheckUpdate] (the same transition rules, the same response
// validation) and commits in one transaction before it returns, so that
// nothing is published before it is durable (I1), serials are never reused
// (I3) and recovery is safe to race (I7). It passes the conformance suite
// in package storetest unchanged.
//
// # What to call first
//
// Open the store with a DSN and the issuer certificates whose responses it
// must validate:
//
//	store, err := pgstore.Open(ctx, "postgres://ca@db.internal:5432/ca?sslmode=verify-full", pgstore.Options{
//		Issuers: []*x509.Certificate{issuer},
//	})
//
// Then hand it to the issuance pipeline, the recovery sweeper and the
// responder exactly as the bbolt store. Open creates the schema ("precert"
// unless [Options.Schema] names another) and applies the embedded
// migrations; several processes may open the same schema at once.
//
// # Tables
//
// One row per (issuer, serial) in records, keyed by the issuer's 32-byte
// [ocspstate.IssuerID] and the serial's big-endian magnitude (bytea; the
// same order as the bbolt store's keys). The fields every write changes —
// version, state, OCSP status and response, lease, timestamps, due time —
// are columns; the immutable ones — intent, precertificate, SCTs (bytea[]),
// final certificate — are bytea columns written once, kept out of line
// (storage EXTERNAL, toast_tuple_target 256) so that the frequent updates
// copy a pointer to them rather than the bytes. [Store.Due] never reads
// them. Times are timestamptz, which keeps microseconds: the store
// truncates every time to the microsecond before writing, and the record
// Update returns is the one Get reads back.
//
// A partial index on due (WHERE due IS NOT NULL) is the due-time index:
// retired and abandoned records are not in it. The counts table keeps 64
// counter rows per state, updated in the same statement as the record, so
// that Counts costs the same at a thousand records as at a billion and
// concurrent transitions rarely wait on one counter row. schema_migrations
// records the applied migrations.
//
// # Writes
//
// [Store.Reserve] is one INSERT … ON CONFLICT DO NOTHING: of concurrent
// reservations of one serial, from any number of processes, exactly one
// wins, and the others get [ocspstate.ErrSerialExists].
//
// [Store.Update] reads the record without a lock, runs the closure, and
// writes with a compare-and-swap on version (UPDATE … WHERE version = $old):
// two round trips and one commit. If another writer committed in between,
// it runs the closure again on the newer record; after two lost races it
// runs it inside a transaction holding the row lock (SELECT … FOR UPDATE),
// where it cannot lose. Transactions the server aborts to break a deadlock
// or a serialization conflict (SQLSTATE 40P01, 40001) are retried; only a
// record contended past that returns [ocspstate.ErrConflict].
//
// [Store.RefreshResponses], the recovery sweeper's write, replaces a batch
// of responses in one transaction: the records locked in key order, each
// checked as [ocspstate.RefreshResponses] requires, the updates sent in
// one round trip, one commit. Batches of 256 refresh eight to ten times
// as fast as one Update per record (BenchmarkRefreshResponses). A record
// whose row does not decode fails alone: its batch then falls back to one
// Update per record.
//
// There is no group commit: PostgreSQL flushes the write-ahead log of
// concurrent commits together by itself. Open sets synchronous_commit=on
// for its sessions, whatever the server's default, and refuses a DSN that
// turns it off: a commit this store reports must be on disk, because the
// precertificate is published right after (I1). Once sent, a write is not
// abandoned when the caller's context ends, only after
// [Options.WriteTimeout], so that its result says truthfully whether it was
// committed. A write whose connection breaks mid-commit has an unknown
// outcome, as with any database: the error says so, and the record, read
// again, tells.
//
// # Due records and claims
//
// [Store.Due] hands each due record to one sweeper at a time across
// machines: in one statement it takes up to limit due records in due order
// with SELECT … FOR UPDATE SKIP LOCKED, skipping those another store
// instance claimed less than [Options.ClaimTTL] ago, and marks them claimed
// by this instance (two hidden columns). Two sweepers calling Due at once
// get disjoint sets and split the work; a sweeper that dies leaves claims
// that lapse after ClaimTTL; any committed Update of the record ends its
// claim, and Close hands back the instance's claims. An instance sees its
// own claims again, so one sweeper behaves exactly as on bbolt. Claims only
// save work: correctness still rests on leases and the compare-and-swap,
// so a record handed to two sweepers (after a claim lapsed) is still
// handled once.
//
// # PostgreSQL-compatible engines
//
// The SQL used: bytea and bytea[] columns; timestamptz; a partial index;
// INSERT … ON CONFLICT DO NOTHING; data-modifying WITH queries (UPDATE …
// RETURNING inside WITH, read by a second UPDATE in the same statement);
// row-value comparison for keyset paging; SELECT … FOR UPDATE and FOR
// UPDATE SKIP LOCKED; pg_advisory_xact_lock for migrations; and the
// PostgreSQL storage parameters fillfactor and toast_tuple_target and
// column STORAGE settings in the first migration. PostgreSQL 11 or newer
// is required (toast_tuple_target); it is tested on 15.
//
// CockroachDB speaks the protocol but is not a drop-in: its advisory lock
// functions are no-op stubs (or, in recent releases, transaction-level
// only), so concurrent first Opens must be avoided or serialised by hand;
// it rejects the TOAST storage parameters and column storage settings,
// which would need a separate migration (CockroachDB has no heap, TOAST or
// VACUUM to tune); SKIP LOCKED exists only from v23.1 on; and it runs
// SERIALIZABLE by default, where conflicts surface as SQLSTATE 40001 — which
// Update retries a few times, but heavy contention would show as
// ErrConflict. YugabyteDB and Aurora/AlloyDB PostgreSQL, being PostgreSQL
// underneath, run it as is. Behind a pooler in transaction mode
// (PgBouncer), put default_query_exec_mode=exec in the DSN, since pgx
// otherwise prepares statements per server connection, and let PgBouncer
// ignore the synchronous_commit startup parameter (ignore_startup_parameters)
// after setting it on the role: ALTER ROLE ca SET synchronous_commit = on.
//
// # Operations
//
// Connections: each process opens up to [Options.MaxConns] (16 by default).
// Sum it over every issuer, responder and sweeper process and keep the
// total below the server's max_connections (100 by default) less what
// administration and replication need; put PgBouncer in front for more
// processes than that.
//
// Vacuum: records is write-heavy — every issuance updates its row three or
// four times, every refresh once more, and each update leaves a dead row
// version. Updates that change due (lease renewals, refreshes, state
// changes) also touch the due index, so they cannot be HOT updates; claims
// and revocations keeping the due time can, and the table's fillfactor of
// 80 leaves room on each page for them. Autovacuum's defaults (a vacuum
// after 20% of the table changed) are far too lazy for a table of millions
// of rows that churns at the front; set per-table thresholds, for example
//
//	ALTER TABLE precert.records SET (autovacuum_vacuum_scale_factor = 0.01,
//		autovacuum_vacuum_insert_scale_factor = 0.01,
//		autovacuum_analyze_scale_factor = 0.02,
//		autovacuum_vacuum_cost_limit = 2000);
//
// and watch n_dead_tup and last_autovacuum in pg_stat_user_tables and the
// size of records_due. The counts table's 384 rows are updated constantly;
// its fillfactor of 50 keeps those updates HOT.
//
// Backups: the store is only as durable as the database. Run continuous
// archiving (base backups plus WAL archiving, e.g. pgBackRest or
// pg_basebackup with archive_command) so that a restore loses no committed
// transaction, and synchronous replication (synchronous_standby_names) if
// the loss of the primary's disk must not lose one either: a response lost
// after its precertificate was published breaks I2. A logical dump
// (pg_dump) is consistent but loses everything after it; after restoring
// one, run `precert audit` and a sweep before issuing again, and never
// reuse a serial issued after the dump (serials are random, so a collision
// is only as likely as ever, but the lost records will not answer OCSP).
//
// Clocks: due times, leases and claims are compared across processes, so
// every machine's clock must agree to well within the lease and claim
// durations (NTP suffices).
package pgstore
