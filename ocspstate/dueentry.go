package ocspstate

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DueEntry is one entry of a store's due index, as [DueReader.DueAfter]
// reads it: the record's key and due time, and the record's mutable part
// still encoded. Reading entries is a copy; [DueEntry.Record] decodes one,
// so that a sweeper decodes where it acts, on all cores, and a damaged
// record is an error for that record alone.
type DueEntry struct {
	dueKey []byte // due time (8 bytes, see dueKey) ‖ record key
	hot    []byte // the hot part, see encodeHot
}

// key is the record key.
func (e *DueEntry) key() []byte { return e.dueKey[8:] }

// Issuer returns the issuer of the entry's record.
func (e *DueEntry) Issuer() IssuerID {
	id, _, _ := splitKey(e.key()) // DueAfter checked the key's length
	return id
}

// Size is how many bytes of memory the entry takes (see
// [DueReader.DueAfter]'s buf).
func (e *DueEntry) Size() int { return len(e.dueKey) + len(e.hot) }

// Serial returns the serial of the entry's record.
func (e *DueEntry) Serial() *big.Int {
	_, serial, _ := splitKey(e.key()) // DueAfter checked the key's length
	return serial
}

// Record decodes the entry into the record as [Store.Due] returns it:
// without the immutable fields. A damaged entry gives an error wrapping
// [ErrCorrupt].
func (e *DueEntry) Record() (*Record, error) {
	r := new(Record)
	if err := decodeHotInto(r, e.key(), e.hot); err != nil {
		return nil, fmt.Errorf("serial %s under issuer %s: %w", SerialHex(e.Serial()), e.Issuer(), err)
	}
	return r, nil
}

// DueAfter implements [DueReader]: one read transaction walks the due
// index in order from last, copying each entry (which carries the
// record's hot part) into shared chunks. Nothing is decoded.
func (s *BoltStore) DueAfter(ctx context.Context, now time.Time, last *DueEntry, limit int, buf []byte) ([]DueEntry, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	end := dueKey(now, nil)
	out := make([]DueEntry, 0, min(limit, 1<<14))
	sl := slab{bytes: buf[:cap(buf)]}
	err := s.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		c := tx.Bucket(bucketDue).Cursor()
		k, v := c.First()
		if last != nil {
			if k, v = c.Seek(last.dueKey); k != nil && bytes.Equal(k, last.dueKey) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) <= 8+len(IssuerID{}) {
				return fmt.Errorf("%w: due index key of %d bytes", ErrCorrupt, len(k))
			}
			if bytes.Compare(k[:8], end) > 0 {
				break
			}
			if len(out)%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(v) == 0 {
				// An entry written before index entries carried the
				// record: look the record up.
				if v = recs.Get(k[8:]); v == nil {
					return fmt.Errorf("%w: due index names a missing record", ErrCorrupt)
				}
			}
			// One copy of key and value, side by side.
			kv := sl.clone2(k, v)
			out = append(out, DueEntry{dueKey: kv[:len(k):len(k)], hot: kv[len(k):]})
		}
		return nil
	})
	return out, s.mapErr(err)
}
