package ocspstate

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"
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
	for step := range 200_000 {
		k := keys[rng.IntN(len(keys))]
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
	for i := range c.shards {
		s := &c.shards[i]
		if s.used > 2*s.live+cacheChunk {
			t.Errorf("shard %d: %d bytes used for %d live", i, s.used, s.live)
		}
	}
	t.Logf("%d compactions", compactions)
}

func ptr(k cacheKey, _ bool) *cacheKey { return &k }
