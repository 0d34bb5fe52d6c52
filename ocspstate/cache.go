package ocspstate

import (
	"bytes"
	"math/big"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// responseCache is an in-memory mirror of every stored response, for
// [Options.CacheResponses]: loaded whole at Open, and written through by
// every commit that changes a response, after the commit is durable and
// before the writer hears of it. Nothing else writes the file while this
// process holds it (bbolt's file lock), so the mirror is never stale:
// a read sees what a read transaction started at the same moment would.
type responseCache struct {
	shards [256]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newResponseCache() *responseCache {
	c := &responseCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]byte)
	}
	return c
}

// shard picks by the serial's last byte: spread for random and for
// sequential serials alike.
func (c *responseCache) shard(key []byte) *cacheShard { return &c.shards[key[len(key)-1]] }

// get returns a copy of the response stored under key.
func (c *responseCache) get(key []byte) ([]byte, bool) {
	s := c.shard(key)
	s.mu.RLock()
	v, ok := s.m[string(key)]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// set records resp (copied) as key's response; an empty resp removes it.
func (c *responseCache) set(key []byte, resp []byte) {
	s := c.shard(key)
	s.mu.Lock()
	if len(resp) == 0 {
		delete(s.m, string(key))
	} else {
		s.m[string(key)] = bytes.Clone(resp)
	}
	s.mu.Unlock()
}

// load fills the cache from the records bucket.
func (c *responseCache) load(tx *bolt.Tx) error {
	return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		resp, err := storedResponse(v)
		if err != nil {
			return err
		}
		if len(resp) > 0 {
			c.set(k, resp)
		}
		return nil
	})
}

// writeThrough arranges for key's response to become resp once tx has
// committed; nothing happens if tx rolls back.
func (c *responseCache) writeThrough(tx *bolt.Tx, key []byte, old, resp []byte) {
	if c == nil || bytes.Equal(old, resp) {
		return
	}
	key = bytes.Clone(key)
	resp = bytes.Clone(resp)
	tx.OnCommit(func() { c.set(key, resp) })
}

// keyBufSize fits any key: the issuer ID and a serial's magnitude.
const keyBufSize = len(IssuerID{}) + MaxSerialOctets

// appendKey appends NewKey(issuer, serial) to b without allocating when b
// has room; serial must have passed CheckSerial.
func appendKey(b []byte, issuer IssuerID, serial *big.Int) []byte {
	b = append(b, issuer[:]...)
	n := (serial.BitLen() + 7) / 8
	start := len(b)
	for range n {
		b = append(b, 0)
	}
	serial.FillBytes(b[start:])
	return b
}
