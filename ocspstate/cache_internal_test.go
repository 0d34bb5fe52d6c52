package ocspstate

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestResponseCacheModel drives the cache with random sets, replacements
// and removals — enough to compact every shard many times — and checks
// every answer against a plain map.
func TestResponseCacheModel(t *testing.T) {
	c := newResponseCache()
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	var issuer IssuerID
	issuer[0] = 7
	keys := make([][]byte, 3000)
	for i := range keys {
		keys[i] = appendKey(nil, issuer, new(big.Int).SetUint64(rng.Uint64()>>uint(rng.IntN(60))+1))
	}
	compactions := 0
	memos := map[string]Memo{} // what each key's response carries
	type heldView struct {
		key, der, want []byte
	}
	var held []heldView // views handed out earlier: never overwritten
	for step := range 200_000 {
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(4) == 0 {
			// Attach a memo to what a lookup returned, or fail to once
			// the response it named has been replaced.
			der, memo, ok := c.view(k)
			if ok != (want[string(k)] != nil) || memo != memos[string(k)] {
				t.Fatalf("step %d, key %x: view found %v with memo %x, want %v with %x", step, k, ok, memo[:4], want[string(k)] != nil, memos[string(k)])
			}
			if ok {
				var m Memo
				m[0], m[1] = byte(step), byte(step>>8)
				if !c.setMemo(k, der, m) {
					t.Fatalf("step %d: setMemo refused the current response", step)
				}
				if c.setMemo(k, bytes.Clone(der), Memo{1}) {
					t.Fatalf("step %d: setMemo took a copy of the bytes", step)
				}
				memos[string(k)] = m
				if len(held) < 500 {
					held = append(held, heldView{k, der, bytes.Clone(der)})
				}
			}
			continue
		}
		var resp []byte
		if rng.IntN(10) > 0 {
			resp = make([]byte, 1+rng.IntN(600))
			for i := range resp {
				resp[i] = byte(step + i)
			}
		}
		s := c.shard(ptr(makeCacheKey(k)))
		before := len(s.chunks)
		c.set(k, resp)
		if len(s.chunks) < before {
			compactions++
		}
		if len(resp) == 0 {
			delete(want, string(k))
		} else {
			want[string(k)] = resp
		}
		delete(memos, string(k)) // a new response starts without one
		if step%1000 == 0 {
			for _, k := range keys {
				got, ok := c.get(k)
				w, wok := want[string(k)]
				if ok != wok || !bytes.Equal(got, w) {
					t.Fatalf("step %d, key %x: got %v %x, want %v %x", step, k, ok, got, wok, w)
				}
			}
		}
	}
	if compactions == 0 {
		t.Fatal("no shard was ever compacted: the test does not exercise compaction")
	}
	stale := 0
	for _, h := range held {
		if !bytes.Equal(h.der, h.want) {
			t.Fatalf("key %x: a view handed out earlier changed", h.key)
		}
		if cur, _, _ := c.view(h.key); len(cur) == 0 || &cur[0] != &h.der[0] {
			stale++
			if c.setMemo(h.key, h.der, Memo{2}) {
				t.Fatalf("key %x: setMemo took a replaced response", h.key)
			}
		}
	}
	if stale == 0 {
		t.Fatal("no held view was ever replaced: the test does not exercise stale memos")
	}
	for i := range c.shards {
		s := &c.shards[i]
		if s.used > 2*s.live+cacheChunk {
			t.Errorf("shard %d: %d bytes used for %d live", i, s.used, s.live)
		}
	}
	t.Logf("%d compactions", compactions)
}

func ptr(k cacheKey, _ bool) *cacheKey { return &k }

// TestWriteThroughOnlyOnCommit: the response cache takes a new response
// only once the transaction that stores it has committed (I1: nothing is
// served that is not durable); a write that fails or is refused after
// arranging the write-through leaves the cache as it was.
func TestWriteThroughOnlyOnCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ocsp.db"), Options{CacheResponses: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var issuer IssuerID
	issuer[0] = 9
	key := appendKey(nil, issuer, big.NewInt(77))
	old, next := []byte("old response"), []byte("new response")
	s.cache.set(key, old)
	for _, fail := range []error{errors.New("disk says no"), refuse(errors.New("declined"))} {
		err := s.write(context.Background(), func(tx *bolt.Tx) error {
			s.cache.writeThrough(tx, key, old, next)
			return fail
		})
		if err == nil {
			t.Fatalf("%v: the write succeeded", fail)
		}
		if got, _ := s.cache.get(key); !bytes.Equal(got, old) {
			t.Fatalf("%v: cache holds %q after a failed write", fail, got)
		}
	}
	if err := s.write(context.Background(), func(tx *bolt.Tx) error {
		s.cache.writeThrough(tx, key, old, next)
		return tx.Bucket(bucketMeta).Put([]byte("test/commit"), []byte{1})
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.cache.get(key); !bytes.Equal(got, next) {
		t.Fatalf("cache holds %q after the commit, want the new response", got)
	}
}
