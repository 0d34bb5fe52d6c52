package ocspstate

import (
	"crypto"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestVerifiedCacheRoundTrip: what the verified cache packs comes back
// equal, zero times and the widest serial included; what it cannot hold
// exactly is not remembered.
func TestVerifiedCacheRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	at := func() time.Time {
		if rng.IntN(4) == 0 {
			return time.Time{}
		}
		return time.Unix(rng.Int64N(1<<33), rng.Int64N(1e9)).UTC()
	}
	c := newVerifiedCache(1 << 10)
	max20 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1)) // 20 octets, positive
	for i := range 2000 {
		b := make([]byte, 1+rng.IntN(20))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[0] &= 0x7f
		serial := new(big.Int).SetBytes(b)
		serial.Add(serial, big.NewInt(1))
		if i == 0 {
			serial = max20
		}
		in := &ResponseInfo{Serial: serial, Status: Status(1 + rng.IntN(2)), RevokedAt: at(), Reason: rng.IntN(11),
			ProducedAt: at(), ThisUpdate: at(), NextUpdate: at(), CertIDHash: crypto.SHA256, Delegated: rng.IntN(2) == 0,
			SignerNotAfter: at()}
		in.issuer[0] = byte(i)
		var sum [32]byte
		sum[0], sum[1], sum[2] = byte(i), byte(i>>8), 7
		c.put(sum, in)
		out, ok := c.get(sum, in.issuer)
		require.True(t, ok)
		require.Equal(t, in, out)
	}
	for _, bad := range []*ResponseInfo{
		{Serial: new(big.Int).Lsh(big.NewInt(1), 160)}, // 21 octets
		{Serial: big.NewInt(-1)},
		{Serial: big.NewInt(1), Reason: 300},
		{Serial: big.NewInt(1), ThisUpdate: time.Now()}, // not UTC: Equal, but not the same value
	} {
		_, ok := pack(bad)
		require.False(t, ok, "%+v", bad)
		sum := [32]byte{1, 2, 3}
		c.put(sum, bad)
		_, found := c.get(sum, bad.issuer)
		require.False(t, found)
	}
}
