package ocspstate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// TestDamagedDueKey: a due index key too short to hold a due time, an
// issuer and a serial is reported as corruption by Due and DueAfter, and
// nothing panics (a key shorter than the due time once did).
func TestDamagedDueKey(t *testing.T) {
	for _, key := range [][]byte{{1}, make([]byte, 7), make([]byte, 8), make([]byte, 8+len(IssuerID{}))} {
		s, err := Open(filepath.Join(t.TempDir(), "ocsp.db"), Options{})
		require.NoError(t, err)
		require.NoError(t, s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDue).Put(key, []byte{0}) }))
		far := time.Unix(1<<40, 0)
		_, err = s.Due(context.Background(), far, 10)
		require.ErrorIs(t, err, ErrCorrupt, "key of %d bytes", len(key))
		_, err = s.DueAfter(context.Background(), far, nil, 10, nil)
		require.ErrorIs(t, err, ErrCorrupt, "key of %d bytes", len(key))
		require.NoError(t, s.Close())
	}
}
