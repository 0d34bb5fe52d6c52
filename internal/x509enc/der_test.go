package x509enc

import (
	"encoding/asn1"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestDERMatchesCryptobyte compares the writer with cryptobyte's Builder:
// nested lengths across every length-octet boundary, integers, big
// integers, BIT STRINGs and OIDs.
func TestDERMatchesCryptobyte(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000} {
		inner := make([]byte, n)
		for i := range inner {
			inner[i] = byte(i)
		}
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(inner)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1OctetString(inner[:n/2]) })
		})
		var d der
		seq := d.open(tagSequence)
		d.primitive(tagOctetString, inner)
		set := d.open(tagSet)
		d.primitive(tagOctetString, inner[:n/2])
		d.close(set)
		d.close(seq)
		require.NoError(t, d.err)
		require.Equal(t, b.BytesOrPanic(), d.b, "contents of %d", n)
	}
	for _, v := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, 1 << 31, math.MaxInt64, math.MinInt64} {
		var b cryptobyte.Builder
		b.AddASN1Int64(v)
		var d der
		d.int64(v)
		require.Equal(t, b.BytesOrPanic(), d.b, "%d", v)
	}
	for _, v := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(127), big.NewInt(128), new(big.Int).Lsh(big.NewInt(1), 159)} {
		var b cryptobyte.Builder
		b.AddASN1BigInt(v)
		var d der
		d.bigInt(v)
		require.Equal(t, b.BytesOrPanic(), d.b, "%v", v)
	}
	var neg der
	neg.bigInt(big.NewInt(-1))
	require.Error(t, neg.err)
	for _, p := range [][]byte{nil, {1}, make([]byte, 300)} {
		var b cryptobyte.Builder
		b.AddASN1BitString(p)
		var d der
		d.bitString(p)
		require.Equal(t, b.BytesOrPanic(), d.b)
	}
	for _, oid := range []asn1.ObjectIdentifier{{0, 0}, {1, 39}, {2, 40}, {2, 999, 1 << 40}, {1, 2, 840, 10045, 4, 3, 2}} {
		var b cryptobyte.Builder
		b.AddASN1ObjectIdentifier(oid)
		var d der
		d.oid(oid)
		require.NoError(t, d.err)
		require.Equal(t, b.BytesOrPanic(), d.b, "%v", oid)
	}
	for _, oid := range []asn1.ObjectIdentifier{nil, {1}, {3, 0}, {0, 40}, {1, -1}, {1, 2, -3}, {2, math.MaxInt64}} {
		var d der
		d.oid(oid)
		require.Error(t, d.err, "%v", oid)
	}
}
