package responder

import (
	"crypto"
	"encoding/binary"
	"math"
	"math/big"
	"sync"
	"time"

	"github.com/certpipe/precert/ocspstate"
)

// DefaultValidationCacheSize is the number of validated responses a
// [Handler] remembers when [Options.ValidationCacheSize] is zero. An entry
// costs about 170 bytes of heap (40 of value, 32 of key, the rest map
// overhead), so a full cache of the default size takes about 170 MB; it
// only fills with responses actually requested.
const DefaultValidationCacheSize = 1 << 20

// verdict is what the validation cache remembers about response bytes that
// passed every check that depends only on the bytes and the issuer
// (structure, CertID, signer, signature, validity interval), together with
// what the per-request checks need: the serial the response is about, its
// CertID hash, and the times that decide freshness, in Unix seconds
// clamped to uint32 (until 2106). It is compact on purpose (40 bytes): a
// million of them must fit in the heap of a responder.
type verdict struct {
	serial         serialKey
	issuer         uint16 // index into Handler.issuers
	hash           uint8  // crypto.Hash of the CertID
	status         ocspstate.Status
	delegated      bool
	thisUpdate     uint32
	nextUpdate     uint32
	signerNotAfter uint32
}

func (v *verdict) certIDHash() crypto.Hash { return crypto.Hash(v.hash) }

func unix32(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), math.MaxUint32))
}

// serialKey is a serial that passes [ocspstate.CheckSerial] (positive, at
// most 20 octets in DER), big-endian and left-padded with zeros, so that
// equal serials have equal keys.
type serialKey [ocspstate.MaxSerialOctets]byte

// makeSerialKey reports false for serials no record can have, and so no
// stored response can be about.
func makeSerialKey(serial *big.Int) (serialKey, bool) {
	var k serialKey
	if ocspstate.CheckSerial(serial) != nil {
		return k, false
	}
	serial.FillBytes(k[:])
	return k, true
}

// newVerdict condenses info, which validated for the issuer at index
// issuer and the serial whose key is sk.
func newVerdict(info *ocspstate.ResponseInfo, issuer uint16, sk serialKey) verdict {
	return verdict{
		serial:         sk,
		thisUpdate:     unix32(info.ThisUpdate),
		nextUpdate:     unix32(info.NextUpdate),
		signerNotAfter: unix32(info.SignerNotAfter),
		issuer:         issuer,
		hash:           uint8(info.CertIDHash), // SHA-1 or SHA-256: Validate accepts no other
		status:         info.Status,
		delegated:      info.Delegated,
	}
}

// fresh applies ocspstate's clock-dependent checks
// ([ocspstate.ResponseInfo.Fresh]) to the verdict.
func (v *verdict) fresh(now time.Time, skew time.Duration) (ocspstate.Problem, string) {
	info := ocspstate.ResponseInfo{
		ThisUpdate:     time.Unix(int64(v.thisUpdate), 0),
		NextUpdate:     time.Unix(int64(v.nextUpdate), 0),
		SignerNotAfter: time.Unix(int64(v.signerNotAfter), 0),
		Delegated:      v.delegated,
	}
	return info.Fresh(now, skew)
}

// memoFormat marks a memo the Handler wrote (see [MemoSource]); the zero
// memo, and any other, is no verdict.
const memoFormat = 0xa1

// memo encodes the verdict, with the SHA-256 of the bytes it is about, for
// a MemoSource. The issuer and serial are not kept: the memo belongs to
// the response stored for them.
func (v *verdict) memo(sum *[32]byte) ocspstate.Memo {
	var m ocspstate.Memo
	m[0], m[1], m[2] = memoFormat, v.hash, byte(v.status)
	if v.delegated {
		m[3] = 1
	}
	binary.BigEndian.PutUint32(m[4:], v.thisUpdate)
	binary.BigEndian.PutUint32(m[8:], v.nextUpdate)
	binary.BigEndian.PutUint32(m[12:], v.signerNotAfter)
	copy(m[16:], sum[:])
	return m
}

// readMemo decodes a memo written by memo, and the SHA-256 into sum; ok is
// false if m holds no verdict. The verdict's issuer and serial stay zero:
// they key the validation cache, and a memo belongs to the response stored
// for its issuer and serial.
func readMemo(m *ocspstate.Memo, sum *[32]byte) (v verdict, ok bool) {
	if m[0] != memoFormat {
		return verdict{}, false
	}
	v = verdict{
		hash:           m[1],
		status:         ocspstate.Status(m[2]),
		delegated:      m[3] == 1,
		thisUpdate:     binary.BigEndian.Uint32(m[4:]),
		nextUpdate:     binary.BigEndian.Uint32(m[8:]),
		signerNotAfter: binary.BigEndian.Uint32(m[12:]),
	}
	copy(sum[:], m[16:])
	return v, true
}

const cacheShards = 64

// validationCache maps the SHA-256 of response bytes to their verdict. It
// is bounded: a full shard evicts an arbitrary entry (Go's randomised map
// iteration order makes that a random one) for each insertion. Only
// successful validations are remembered; bytes that failed are validated
// again on every request, and logged with rate limiting.
type validationCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]verdict
}

func newValidationCache(size int) *validationCache {
	if size <= 0 {
		return nil
	}
	c := &validationCache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]verdict)
	}
	return c
}

func (c *validationCache) get(sum *[32]byte) (verdict, bool) {
	if c == nil {
		return verdict{}, false
	}
	s := &c.shards[sum[0]%cacheShards]
	s.mu.RLock()
	v, ok := s.m[*sum]
	s.mu.RUnlock()
	return v, ok
}

func (c *validationCache) put(sum *[32]byte, v verdict) {
	if c == nil {
		return
	}
	s := &c.shards[sum[0]%cacheShards]
	s.mu.Lock()
	if _, ok := s.m[*sum]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[*sum] = v
	s.mu.Unlock()
}

func (c *validationCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
