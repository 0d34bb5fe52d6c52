package ocspstate_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/storetest"
)

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts ocspstate.Options) storetest.Opener {
		path := filepath.Join(t.TempDir(), "ocsp.db")
		return func() (ocspstate.Store, error) { return ocspstate.Open(path, opts) }
	})
}

// TestGenericRefreshConformance runs the conformance suite on a bbolt
// store seen through ocspstate.Store alone, without its own
// RefreshResponses (or any other method beyond Store's): the path
// ocspstate.RefreshResponses takes for any other store, one Update per
// record.
func TestGenericRefreshConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts ocspstate.Options) storetest.Opener {
		path := filepath.Join(t.TempDir(), "ocsp.db")
		return func() (ocspstate.Store, error) {
			s, err := ocspstate.Open(path, opts)
			if err != nil {
				return nil, err
			}
			return struct{ ocspstate.Store }{s}, nil
		}
	})
}

// TestBoltConformanceCached runs the conformance suite with the response
// cache on: every Response answer comes from memory, and must still be
// exactly what the file holds, across updates, revocations and reopens.
func TestBoltConformanceCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts ocspstate.Options) storetest.Opener {
		path := filepath.Join(t.TempDir(), "ocsp.db")
		opts.CacheResponses = true
		return func() (ocspstate.Store, error) { return ocspstate.Open(path, opts) }
	})
}

func openTemp(t *testing.T, opts ocspstate.Options) (*ocspstate.BoltStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ocsp.db")
	s, err := ocspstate.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestBoltFileMode(t *testing.T) {
	_, path := openTemp(t, ocspstate.Options{})
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestBoltRefusesNewerSchema(t *testing.T) {
	s, path := openTemp(t, ocspstate.Options{})
	require.NoError(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, ocspstate.SchemaVersion+1))
	}))
	require.NoError(t, db.Close())
	_, err = ocspstate.Open(path, ocspstate.Options{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "newer than this build")
}

func TestBoltRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	t.Run("not bbolt", func(t *testing.T) {
		path := filepath.Join(dir, "junk.db")
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600))
		_, err := ocspstate.Open(path, ocspstate.Options{})
		require.Error(t, err)
		require.Contains(t, err.Error(), "not a valid bbolt file")
	})
	t.Run("bbolt without schema", func(t *testing.T) {
		path := filepath.Join(dir, "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("records"))
			return err
		}))
		require.NoError(t, db.Close())
		_, err = ocspstate.Open(path, ocspstate.Options{})
		require.Error(t, err)
		require.Contains(t, err.Error(), "no schema version")
	})
	t.Run("read-only missing file", func(t *testing.T) {
		_, err := ocspstate.Open(filepath.Join(dir, "missing.db"), ocspstate.Options{ReadOnly: true})
		require.Error(t, err)
		require.Contains(t, err.Error(), "no such file")
	})
}

func TestBoltBusy(t *testing.T) {
	_, path := openTemp(t, ocspstate.Options{})
	// Open gives up after LockTimeout rather than hang (a hang would end
	// in the test binary's timeout).
	_, err := ocspstate.Open(path, ocspstate.Options{LockTimeout: 100 * time.Millisecond})
	require.Error(t, err)
	require.Contains(t, err.Error(), "in use by another process")
}

func TestBoltReadOnly(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	s, path := openTemp(t, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	r := newReserved(ca, big.NewInt(77))
	require.NoError(t, s.Reserve(context.Background(), r))
	require.NoError(t, s.Close())

	ro, err := ocspstate.Open(path, ocspstate.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	got, err := ro.Get(context.Background(), r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Reserved, got.State)
	err = ro.Reserve(context.Background(), newReserved(ca, big.NewInt(78)))
	require.ErrorContains(t, err, "read-only")
}

func TestBoltGroupCommit(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	s, _ := openTemp(t, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	const n = 400
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- s.Reserve(context.Background(), newReserved(ca, big.NewInt(int64(1000+i)))) }()
	}
	for i := 0; i < n; i++ {
		require.NoError(t, <-errs)
	}
	st := s.Stats()
	require.Equal(t, uint64(n), st.Writes)
	require.Less(t, st.Commits, uint64(n), "concurrent writers share commits")
	t.Logf("%d writes in %d commits", st.Writes, st.Commits)

	// A lone writer commits at once and alone.
	before := s.Stats()
	require.NoError(t, s.Reserve(context.Background(), newReserved(ca, big.NewInt(99))))
	after := s.Stats()
	require.Equal(t, before.Commits+1, after.Commits)
}

func TestBoltCorruptRecord(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	s, path := openTemp(t, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	r := newReserved(ca, big.NewInt(5))
	require.NoError(t, s.Reserve(context.Background(), r))
	require.NoError(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("records")).Put([]byte(r.Key()), []byte{1, 0, 0})
	}))
	require.NoError(t, db.Close())
	s2, err := ocspstate.Open(path, ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	require.NoError(t, err)
	defer s2.Close()
	_, err = s2.Get(context.Background(), r.Issuer, r.Serial)
	require.ErrorIs(t, err, ocspstate.ErrCorrupt)
	_, err = s2.Update(context.Background(), r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil })
	require.ErrorIs(t, err, ocspstate.ErrCorrupt)
}

func newReserved(ca *testpki.CA, serial *big.Int) *ocspstate.Record {
	now := time.Now()
	return &ocspstate.Record{
		Issuer:    ocspstate.IssuerIDOf(ca.Intermediate),
		Serial:    serial,
		State:     ocspstate.Reserved,
		IntentDER: []byte("intent"),
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(90 * 24 * time.Hour),
		Lease:     ocspstate.Lease{Owner: "test", Expires: now.Add(time.Minute)},
	}
}

// TestBoltDueIndexWithoutRecords: files written before due-index entries
// carried the record hold empty entries; Due looks those records up.
func TestBoltDueIndexWithoutRecords(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	ctx := context.Background()
	opts := ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}}
	s, path := openTemp(t, opts)
	for i := range 5 {
		require.NoError(t, s.Reserve(ctx, newReserved(ca, big.NewInt(int64(500+i)))))
	}
	far := time.Now().Add(time.Hour)
	before, err := s.Due(ctx, far, 100)
	require.NoError(t, err)
	require.Len(t, before, 5)
	require.NoError(t, s.Close())

	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("due"))
		var keys [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			require.NotEmpty(t, v, "entries carry the record")
			keys = append(keys, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())

	s2, err := ocspstate.Open(path, opts)
	require.NoError(t, err)
	defer s2.Close()
	after, err := s2.Due(ctx, far, 100)
	require.NoError(t, err)
	require.Len(t, after, len(before))
	for i := range before {
		require.True(t, before[i].Equal(after[i]), "serial %v", before[i].Serial)
	}
}

// TestStoreWithoutIssuersRefusesResponses: a store opened without issuers
// commits no OCSP response, not even one this process just signed (and so
// already knows to be well signed).
func TestStoreWithoutIssuersRefusesResponses(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	ctx := context.Background()
	s, _ := openTemp(t, ocspstate.Options{})
	signer := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	r := newReserved(ca, big.NewInt(4242))
	require.NoError(t, s.Reserve(ctx, r))
	resp, err := signer.SignRecord(r)
	require.NoError(t, err)
	_, err = s.Update(ctx, r.Issuer, r.Serial, toPrecert(resp))
	require.ErrorIs(t, err, ocspstate.ErrInvalidRecord)
	got, err := s.Get(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Reserved, got.State)
}
