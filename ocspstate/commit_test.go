package ocspstate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// TestCommitIsolatesAFailingWrite puts one write that fails inside the
// transaction among good ones sharing a commit: the transaction aborts,
// each write is retried alone, the good ones land and only the bad one
// reports its error.
func TestCommitIsolatesAFailingWrite(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ocsp.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	boom := errors.New("disk says no")
	put := func(i int) func(*bolt.Tx) (int, error) {
		return func(tx *bolt.Tx) (int, error) {
			return 1, tx.Bucket(bucketMeta).Put([]byte(fmt.Sprintf("test/%d", i)), []byte{1})
		}
	}
	batch := []*writeOp{}
	for i := 0; i < 5; i++ {
		apply := put(i)
		if i == 2 {
			apply = func(*bolt.Tx) (int, error) { return 0, boom }
		}
		batch = append(batch, &writeOp{ctx: context.Background(), apply: apply, done: make(chan error, 1)})
	}
	before := s.Stats().Commits
	s.commit(batch) // directly: one shared transaction
	for i, op := range batch {
		err := <-op.done
		if i == 2 {
			require.ErrorIs(t, err, boom)
		} else {
			require.NoError(t, err, "write %d", i)
		}
	}
	require.Equal(t, before+4, s.Stats().Commits, "the four good writes were retried alone")
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		for i := 0; i < 5; i++ {
			got := tx.Bucket(bucketMeta).Get([]byte(fmt.Sprintf("test/%d", i)))
			if (got != nil) != (i != 2) {
				return fmt.Errorf("write %d: stored %v", i, got != nil)
			}
		}
		return nil
	}))
}
