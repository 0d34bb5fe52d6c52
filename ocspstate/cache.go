package ocspstate

import (
	"bytes"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// responseCache is an in-memory mirror of every stored response, for
// [Options.CacheResponses]: loaded whole at Open, and written through by
// every commit that changes a response, after the commit is durable and
// before the writer hears of it. Nothing else writes the file while this
// process holds it (bbolt's file lock), so the mirror is never stale:
// a read sees what a read transaction started at the same moment would.
//
// It holds no pointers per entry: the responses live in large byte chunks
// and the index maps fixed-size keys to (chunk, offset, length). A million
// responses are then invisible to the garbage collector, which would
// otherwise scan them on every cycle and take a large share of a busy
// responder's CPU.
type responseCache struct {
	shards [256]cacheShard
}

// cacheKey is a record key with the serial's magnitude right-aligned in a
// fixed width, so that keys are comparable values without pointers.
type cacheKey [len(IssuerID{}) + MaxSerialOctets]byte

// span locates a response in its shard's chunks, with the memo a reader
// attached to it.
type span struct {
	chunk, off, n uint32
	memo          Memo
}

// Memo is a fixed-size value that a reader of the response cache attaches
// to one stored response with [BoltStore.SetMemo], and gets back with it
// from [BoltStore.CachedResponse], in the same lookup: an OCSP responder
// keeps there the verdict of validating those bytes, so that serving them
// again costs one lookup. The store neither reads nor checks it; a
// response that replaces another starts with the zero Memo. It lives in
// memory only, and holds no pointers (a million of them cost the garbage
// collector nothing).
type Memo [48]byte

// cacheChunk is the size of the byte chunks responses are copied into.
const cacheChunk = 32 << 10

type cacheShard struct {
	mu     sync.RWMutex
	index  map[cacheKey]span
	chunks [][]byte
	live   int // bytes of responses in the index
	used   int // bytes of the chunks written, live or replaced
}

func newResponseCache() *responseCache {
	c := &responseCache{}
	for i := range c.shards {
		c.shards[i].index = make(map[cacheKey]span)
	}
	return c
}

// makeCacheKey converts a record key; ok is false for a key no record can
// have (a serial longer than MaxSerialOctets).
func makeCacheKey(key []byte) (k cacheKey, ok bool) {
	n := len(IssuerID{})
	if len(key) < n || len(key)-n > MaxSerialOctets {
		return k, false
	}
	copy(k[:n], key[:n])
	copy(k[len(k)-(len(key)-n):], key[n:])
	return k, true
}

// shard picks by the serial's last byte: spread for random and for
// sequential serials alike.
func (c *responseCache) shard(k *cacheKey) *cacheShard { return &c.shards[k[len(k)-1]] }

// get returns a copy of the response stored under key.
func (c *responseCache) get(key []byte) ([]byte, bool) {
	der, _, ok := c.view(key)
	return bytes.Clone(der), ok
}

// view returns the response stored under key without copying it, and its
// memo. The bytes are never overwritten: chunks are only appended to, and
// compaction copies into fresh ones.
func (c *responseCache) view(key []byte) ([]byte, Memo, bool) {
	k, ok := makeCacheKey(key)
	if !ok {
		return nil, Memo{}, false
	}
	s := c.shard(&k)
	s.mu.RLock()
	sp, ok := s.index[k]
	var der []byte
	if ok {
		der = s.chunks[sp.chunk][sp.off : sp.off+sp.n : sp.off+sp.n]
	}
	s.mu.RUnlock()
	return der, sp.memo, ok
}

// setMemo attaches m to key's response if that is still der, the very
// bytes view returned (not a copy, not equal bytes elsewhere).
func (c *responseCache) setMemo(key, der []byte, m Memo) bool {
	k, ok := makeCacheKey(key)
	if !ok || len(der) == 0 {
		return false
	}
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.index[k]
	if !ok || int(sp.n) != len(der) || &s.chunks[sp.chunk][sp.off] != &der[0] {
		return false // replaced, or moved by a compaction
	}
	sp.memo = m
	s.index[k] = sp
	return true
}

// set records resp (copied) as key's response; an empty resp removes it.
func (c *responseCache) set(key []byte, resp []byte) {
	k, ok := makeCacheKey(key)
	if !ok {
		return
	}
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.index[k]; ok {
		s.live -= int(old.n)
		delete(s.index, k)
	}
	if len(resp) == 0 {
		return
	}
	s.index[k] = s.append(resp)
	s.live += len(resp)
	// Replaced responses leave holes; once they outweigh the live ones,
	// copy the live ones into fresh chunks. Each response is copied
	// again at most once per doubling, so writes stay O(1) amortized.
	if s.used > 2*s.live+cacheChunk {
		s.compact()
	}
}

func (s *cacheShard) append(resp []byte) span {
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last])+len(resp) > cap(s.chunks[last]) {
		s.chunks = append(s.chunks, make([]byte, 0, max(cacheChunk, len(resp))))
		last++
	}
	off := len(s.chunks[last])
	s.chunks[last] = append(s.chunks[last], resp...)
	s.used += len(resp)
	return span{chunk: uint32(last), off: uint32(off), n: uint32(len(resp))}
}

func (s *cacheShard) compact() {
	old := s.chunks
	s.chunks, s.used = nil, 0
	for k, sp := range s.index {
		moved := s.append(old[sp.chunk][sp.off : sp.off+sp.n])
		moved.memo = sp.memo // the same bytes
		s.index[k] = moved
	}
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
