package pgstore_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
	"github.com/certpipe/precert/ocspstate/storetest"
	"github.com/certpipe/precert/recovery"
)

func TestConformance(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T, opts ocspstate.Options) storetest.Opener {
		dsn, schema := pgtest.Schema(t)
		return func() (ocspstate.Store, error) {
			return pgstore.Open(context.Background(), dsn, pgstore.Options{
				Issuers: opts.Issuers, Due: opts.Due, Skew: opts.Skew, Now: opts.Now, Schema: schema, MaxConns: 8,
			})
		}
	})
}

// fixture is a schema with a clock, a CA and a signer, and a way to open
// more store instances on it (as more processes would).
type fixture struct {
	t      *testing.T
	dsn    string
	schema string
	clock  *storetest.Clock
	ca     *testpki.CA
	signer *ocspstate.ResponseSigner
	ctx    context.Context
	next   int64
}

func newFixture(t *testing.T) *fixture {
	dsn, schema := pgtest.Schema(t)
	f := &fixture{t: t, dsn: dsn, schema: schema, clock: storetest.NewClock(time.Now().UTC().Truncate(time.Second)),
		ca: testpki.Shared(t, testpki.ECDSAP256), ctx: context.Background(), next: 100}
	var err error
	f.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.ca.Intermediate, Key: f.ca.IntermediateKey, Now: f.clock.Now})
	require.NoError(t, err)
	return f
}

func (f *fixture) open(mut ...func(*pgstore.Options)) *pgstore.Store {
	f.t.Helper()
	opts := pgstore.Options{Issuers: []*x509.Certificate{f.ca.Intermediate}, Now: f.clock.Now, Schema: f.schema, MaxConns: 4}
	for _, m := range mut {
		m(&opts)
	}
	s, err := pgstore.Open(f.ctx, f.dsn, opts)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { s.Close() })
	return s
}

// reserveDue reserves n records whose leases have already expired: all
// due now.
func (f *fixture) reserveDue(s ocspstate.Store, n int) map[string]bool {
	f.t.Helper()
	now := f.clock.Now()
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		f.next++
		r := &ocspstate.Record{
			Issuer: f.signer.IssuerID(), Serial: big.NewInt(f.next), State: ocspstate.Reserved,
			IntentDER: []byte("intent"), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "gone", Expires: now.Add(-time.Duration(n-i) * time.Second)},
		}
		require.NoError(f.t, s.Reserve(f.ctx, r))
		want[r.Serial.String()] = true
	}
	return want
}

// precert stores a Precert record with a good response signed now, and
// returns it with a newer response for it, signed a minute later.
func (f *fixture) precert(s ocspstate.Store) (out struct {
	rec  *ocspstate.Record
	resp *ocspstate.Response
}) {
	f.t.Helper()
	f.next++
	rec, err := precertRecord(f.ctx, s, f.signer, big.NewInt(f.next))
	require.NoError(f.t, err)
	f.clock.Advance(time.Minute)
	out.rec = rec
	out.resp, err = f.signer.SignRecord(rec)
	require.NoError(f.t, err)
	return out
}

func serials(rs []*ocspstate.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		out[r.Serial.String()] = true
	}
	return out
}

// TestDueClaimsSplitWork: two store instances (two processes, in
// production) calling Due at the same moment get disjoint sets that
// together cover every due record; claims end when they expire, when the
// record is updated, and when the claiming store closes.
func TestDueClaimsSplitWork(t *testing.T) {
	f := newFixture(t)
	a, b := f.open(), f.open()
	const n = 120
	want := f.reserveDue(a, n)

	for round := 0; round < 5; round++ {
		if round > 0 {
			// Let every claim lapse, so that the round starts even.
			f.clock.Advance(2 * time.Minute)
		}
		var got [2][]*ocspstate.Record
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range []*pgstore.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rs, err := s.Due(f.ctx, f.clock.Now(), n)
				if err != nil {
					t.Error(err)
				}
				got[i] = rs
			}()
		}
		close(start)
		wg.Wait()
		sa, sb := serials(got[0]), serials(got[1])
		require.Equal(t, len(got[0]), len(sa), "no record twice in one answer")
		for k := range sa {
			require.False(t, sb[k], "round %d: serial %s handed to both instances", round, k)
		}
		require.Equal(t, n, len(sa)+len(sb), "round %d: together they cover every due record", round)
		for _, rs := range got {
			for i := 1; i < len(rs); i++ {
				require.False(t, rs[i].Due.Before(rs[i-1].Due), "due order")
			}
			for _, r := range rs {
				require.True(t, want[r.Serial.String()])
				require.Nil(t, r.IntentDER, "Due leaves out the immutable fields")
			}
		}
	}

	// Within the TTL, a claims everything left and b gets nothing; a gets
	// its own claims again.
	f.clock.Advance(2 * time.Minute)
	all, err := a.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Len(t, all, n)
	none, err := b.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Empty(t, none)
	again, err := a.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Len(t, again, n, "an instance sees its own claims")

	// An update ends the claim: the record, still due (its lease renewed
	// into the past is still expired), is free for b.
	first := all[0]
	_, err = a.Update(f.ctx, first.Issuer, first.Serial, func(r *ocspstate.Record) error {
		r.Lease.Expires = r.Lease.Expires.Add(-time.Second)
		return nil
	})
	require.NoError(t, err)
	freed, err := b.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Len(t, freed, 1)
	require.Equal(t, 0, freed[0].Serial.Cmp(first.Serial))

	// Closing a hands its claims back at once.
	require.NoError(t, a.Close())
	rest, err := b.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Len(t, rest, n)

	// With claims off, every caller sees everything.
	c, d := f.open(func(o *pgstore.Options) { o.ClaimTTL = -1 }), f.open(func(o *pgstore.Options) { o.ClaimTTL = -1 })
	for _, s := range []*pgstore.Store{c, d} {
		rs, err := s.Due(f.ctx, f.clock.Now(), n)
		require.NoError(t, err)
		require.Len(t, rs, n)
	}
}

// TestClaimExpiry: a claim lapses after ClaimTTL on the store's clock.
func TestClaimExpiry(t *testing.T) {
	f := newFixture(t)
	a, b := f.open(func(o *pgstore.Options) { o.ClaimTTL = 30 * time.Second }), f.open()
	f.reserveDue(a, 10)
	got, err := a.Due(f.ctx, f.clock.Now(), 100)
	require.NoError(t, err)
	require.Len(t, got, 10)
	f.clock.Advance(29 * time.Second)
	got, err = b.Due(f.ctx, f.clock.Now(), 100)
	require.NoError(t, err)
	require.Empty(t, got)
	f.clock.Advance(time.Second)
	got, err = b.Due(f.ctx, f.clock.Now(), 100)
	require.NoError(t, err)
	require.Len(t, got, 10)
}

// TestSweepersSplitWork: two sweepers on two store instances, sweeping at
// once, re-sign every due response exactly once between them. Without
// claims both would take every record and one would lose each race.
func TestSweepersSplitWork(t *testing.T) {
	f := newFixture(t)
	a, b := f.open(), f.open()
	const n = 300
	// Precertificates whose responses were signed three days ago: due.
	old, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: f.ca.Intermediate, Key: f.ca.IntermediateKey,
		Now: func() time.Time { return f.clock.Now().Add(-70 * time.Hour) }})
	require.NoError(t, err)
	now := f.clock.Now()
	for i := 0; i < n; i++ {
		f.next++
		r := &ocspstate.Record{
			Issuer: f.signer.IssuerID(), Serial: big.NewInt(f.next), State: ocspstate.Reserved,
			IntentDER: []byte("intent"), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			Lease: ocspstate.Lease{Owner: "setup", Expires: now.Add(time.Hour)},
		}
		require.NoError(t, a.Reserve(f.ctx, r))
		resp, err := old.SignRecord(r)
		require.NoError(t, err)
		_, err = a.Update(f.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
			r.State, r.PrecertDER = ocspstate.Precert, []byte("precert")
			r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
			r.SetResponse(resp)
			return nil
		})
		require.NoError(t, err)
		_, err = a.Update(f.ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
			r.State, r.Lease = ocspstate.CTFailed, ocspstate.Lease{}
			return nil
		})
		require.NoError(t, err)
	}
	var reps [2]*recovery.Report
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range []*pgstore.Store{a, b} {
		sw, err := recovery.New(recovery.Config{Store: s, Signers: []*ocspstate.ResponseSigner{f.signer}, Now: f.clock.Now,
			Owner: fmt.Sprintf("sweeper-%d", i), BatchSize: 50, Workers: 4})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rep, err := sw.Sweep(f.ctx)
			if err != nil {
				t.Error(err)
			}
			reps[i] = rep
		}()
	}
	close(start)
	wg.Wait()
	require.Empty(t, reps[0].Errors)
	require.Empty(t, reps[1].Errors)
	t.Logf("sweeper a: %s", reps[0])
	t.Logf("sweeper b: %s", reps[1])
	require.Equal(t, n, reps[0].Count(recovery.ActionRefreshed)+reps[1].Count(recovery.ActionRefreshed))
	require.Equal(t, n, reps[0].Due+reps[1].Due, "no record was taken by both sweepers")
	require.Zero(t, reps[0].Count(recovery.ActionSkipped)+reps[1].Count(recovery.ActionSkipped))
	left, err := a.Due(f.ctx, f.clock.Now(), n)
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestOpenMigratesOnceConcurrently(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(f.ctx, f.dsn, pgstore.Options{Schema: f.schema, MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	conn := f.conn()
	var versions int
	require.NoError(t, conn.QueryRow(f.ctx, "SELECT count(*) FROM "+f.table("schema_migrations")).Scan(&versions))
	require.Equal(t, pgstore.SchemaVersion, versions)
	var shards int
	require.NoError(t, conn.QueryRow(f.ctx, "SELECT count(*) FROM "+f.table("counts")).Scan(&shards))
	require.Equal(t, 6*64, shards, "the counters were seeded once")
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	f := newFixture(t)
	f.open().Close()
	_, err := f.conn().Exec(f.ctx, "INSERT INTO "+f.table("schema_migrations")+" (version, name) VALUES ($1, 'from the future')", pgstore.SchemaVersion+1)
	require.NoError(t, err)
	_, err = pgstore.Open(f.ctx, f.dsn, pgstore.Options{Schema: f.schema})
	require.ErrorIs(t, err, pgstore.ErrSchemaTooNew)
	require.ErrorContains(t, err, "run a newer precert")
}

func TestOpenRefusesForeignTables(t *testing.T) {
	f := newFixture(t)
	conn := f.conn()
	_, err := conn.Exec(f.ctx, "CREATE SCHEMA "+pgx.Identifier{f.schema}.Sanitize())
	require.NoError(t, err)
	_, err = conn.Exec(f.ctx, "CREATE TABLE "+f.table("records")+" (id int)")
	require.NoError(t, err)
	_, err = pgstore.Open(f.ctx, f.dsn, pgstore.Options{Schema: f.schema})
	require.ErrorContains(t, err, "no recorded version")
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pgstore.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", pgstore.Options{})
	require.ErrorContains(t, err, "is PostgreSQL running")
	_, err = pgstore.Open(ctx, pgtest.DefaultDSN+"&synchronous_commit=off", pgstore.Options{})
	require.ErrorContains(t, err, "synchronous_commit=off")
}

// TestOpenForcesSynchronousCommit: a DSN that does not name
// synchronous_commit gets it on, whatever the server, the role or the
// connection options default to, since a commit the store reports must be
// on disk before anything is published (I1).
func TestOpenForcesSynchronousCommit(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	t.Setenv("PGOPTIONS", "-c synchronous_commit=off")
	s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema, MaxConns: 1})
	require.NoError(t, err)
	defer s.Close()
	got, err := pgstore.Setting(context.Background(), s, "synchronous_commit")
	require.NoError(t, err)
	require.Equal(t, "on", got)
}

// TestCorruptRows: rows no store write produces are ErrCorrupt, never a
// panic or a guess.
func TestCorruptRows(t *testing.T) {
	f := newFixture(t)
	s := f.open()
	for _, tc := range []struct {
		name, set string
		hot       bool // Due reads the damage too
	}{
		{"infinite lease", "lease_expires = 'infinity'", true},
		{"empty SCT", "scts = ARRAY[''::bytea]", false},
		{"unknown status", "ocsp_status = 7", true},
		{"negative reason", "reason = -1", true},
		{"serial with leading zero", "serial = '\\x00'::bytea || serial", true},
		{"no intent", "intent = ''", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.reserveDue(s, 1)
			var serial *big.Int
			for k := range rec {
				serial, _ = new(big.Int).SetString(k, 10)
			}
			_, err := f.conn().Exec(f.ctx, "UPDATE "+f.table("records")+" SET "+tc.set+" WHERE serial = $1", serial.Bytes())
			require.NoError(t, err)
			if tc.name == "serial with leading zero" {
				require.ErrorIs(t, s.Scan(f.ctx, func(*ocspstate.Record) error { return nil }), ocspstate.ErrCorrupt)
				_, err = f.conn().Exec(f.ctx, "DELETE FROM "+f.table("records")+" WHERE serial = '\\x00'::bytea || $1::bytea", serial.Bytes())
				require.NoError(t, err)
				return
			}
			_, err = s.Get(f.ctx, f.signer.IssuerID(), serial)
			require.ErrorIs(t, err, ocspstate.ErrCorrupt)
			_, err = s.Update(f.ctx, f.signer.IssuerID(), serial, func(*ocspstate.Record) error { return nil })
			require.ErrorIs(t, err, ocspstate.ErrCorrupt)
			_, err = s.Due(f.ctx, f.clock.Now().Add(time.Hour), 1000)
			if tc.hot {
				require.ErrorIs(t, err, ocspstate.ErrCorrupt)
			} else {
				require.NoError(t, err)
			}
			// A refresh batch holding it fails that element only. A
			// refresh reads the hot columns alone, as Due does; damage
			// elsewhere leaves a Reserved record, with no response to
			// refresh.
			good := f.precert(s)
			errs := s.RefreshResponses(f.ctx, []ocspstate.Refresh{
				{Issuer: f.signer.IssuerID(), Serial: serial, Response: good.resp},
				{Issuer: good.rec.Issuer, Serial: good.rec.Serial, Prev: good.rec.OCSP.ResponseDER, Response: good.resp},
			})
			if tc.hot {
				require.ErrorIs(t, errs[0], ocspstate.ErrCorrupt)
			} else {
				require.ErrorIs(t, errs[0], ocspstate.ErrIllegalTransition)
			}
			require.NoError(t, errs[1], "the record beside the damaged one")
			after, err := s.Get(f.ctx, good.rec.Issuer, good.rec.Serial)
			require.NoError(t, err)
			require.Equal(t, good.resp.DER, after.OCSP.ResponseDER)
			_, err = f.conn().Exec(f.ctx, "DELETE FROM "+f.table("records")+" WHERE serial = $1", serial.Bytes())
			require.NoError(t, err)
		})
	}
}

// TestTimesKeepMicroseconds: PostgreSQL keeps microseconds, and what
// Update returns is what Get reads back.
func TestTimesKeepMicroseconds(t *testing.T) {
	f := newFixture(t)
	s := f.open()
	f.reserveDue(s, 1)
	serial := big.NewInt(f.next)
	exp := time.Date(2031, 2, 3, 4, 5, 6, 123456789, time.FixedZone("x", 3600))
	got, err := s.Update(f.ctx, f.signer.IssuerID(), serial, func(r *ocspstate.Record) error {
		r.Lease.Expires = exp
		return nil
	})
	require.NoError(t, err)
	require.True(t, got.Lease.Expires.Equal(exp.Truncate(time.Microsecond)))
	again, err := s.Get(f.ctx, f.signer.IssuerID(), serial)
	require.NoError(t, err)
	require.True(t, got.Equal(again), "Update returns the record as stored:\n%+v\n%+v", got, again)
	// A change below a microsecond is no change.
	same, err := s.Update(f.ctx, f.signer.IssuerID(), serial, func(r *ocspstate.Record) error {
		r.Lease.Expires = exp.Add(-time.Nanosecond * 7)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, got.Version, same.Version)
}

func (f *fixture) conn() *pgx.Conn {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.dsn)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (f *fixture) table(name string) string { return pgx.Identifier{f.schema, name}.Sanitize() }
