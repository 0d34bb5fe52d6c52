package derw

import (
	"encoding/asn1"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestMatchesCryptobyte compares the Writer with cryptobyte's Builder:
// nested lengths across every length-octet boundary, integers, big
// integers, BIT STRINGs and OIDs.
func TestMatchesCryptobyte(t *testing.T) {
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
		var d Writer
		seq := d.Open(Sequence)
		d.Primitive(OctetString, inner)
		set := d.Open(Set)
		d.Primitive(OctetString, inner[:n/2])
		d.Close(set)
		d.Close(seq)
		require.NoError(t, d.Err)
		require.Equal(t, b.BytesOrPanic(), d.B, "contents of %d", n)
	}
	for _, v := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, 1 << 31, math.MaxInt64, math.MinInt64} {
		var b cryptobyte.Builder
		b.AddASN1Int64(v)
		var d Writer
		d.Int64(v)
		require.Equal(t, b.BytesOrPanic(), d.B, "%d", v)
	}
	for _, v := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(127), big.NewInt(128), new(big.Int).Lsh(big.NewInt(1), 159)} {
		var b cryptobyte.Builder
		b.AddASN1BigInt(v)
		var d Writer
		d.BigInt(v)
		require.Equal(t, b.BytesOrPanic(), d.B, "%v", v)
	}
	var neg Writer
	neg.BigInt(big.NewInt(-1))
	require.Error(t, neg.Err)
	for _, p := range [][]byte{nil, {1}, make([]byte, 300)} {
		var b cryptobyte.Builder
		b.AddASN1BitString(p)
		var d Writer
		d.BitStringBytes(p)
		require.Equal(t, b.BytesOrPanic(), d.B)
	}
	for _, oid := range []asn1.ObjectIdentifier{
		{0, 0}, {0, 39}, {1, 39}, {2, 0}, {2, 40}, {2, 47}, {2, 48}, {2, 1 << 30}, {2, 999, 1 << 40},
		{1, 2, 840, 113549}, {1, 2, 840, 10045, 4, 3, 2}, {2, 5, 29, 17}, {1, 2, 1<<31 - 1},
	} {
		var b cryptobyte.Builder
		b.AddASN1ObjectIdentifier(oid)
		var d Writer
		d.ObjectIdentifier(oid)
		require.NoError(t, d.Err)
		require.Equal(t, b.BytesOrPanic(), d.B, "%v", oid)
	}
	for _, oid := range []asn1.ObjectIdentifier{nil, {1}, {3, 0}, {3, 1}, {0, 40}, {1, 40}, {-1, 2}, {1, -1}, {1, 2, -3}, {2, math.MaxInt64}} {
		var d Writer
		d.ObjectIdentifier(oid)
		require.Error(t, d.Err, "%v", oid)
		require.Empty(t, d.B, "%v: nothing written", oid)
	}
}

// TestTimesMatchCryptobyte: GeneralizedTime as cryptobyte writes it, and
// Time as encoding/asn1 marshals a time.Time (UTCTime from 1950 to 2049).
func TestTimesMatchCryptobyte(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 24, 1, 2, 3, 999, time.UTC), time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("x", 5*3600)),
	} {
		var b cryptobyte.Builder
		b.AddASN1GeneralizedTime(tm.UTC().Truncate(time.Second))
		var w Writer
		w.GeneralizedTime(tm)
		require.NoError(t, w.Err)
		require.Equal(t, b.BytesOrPanic(), w.B, "%v", tm)

		want, err := asn1.Marshal(tm.UTC().Truncate(time.Second))
		require.NoError(t, err)
		var w2 Writer
		w2.Time(tm)
		require.NoError(t, w2.Err)
		require.Equal(t, want, w2.B, "%v", tm)
	}
	var w Writer
	w.GeneralizedTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, w.Err)
	for _, v := range []int64{0, 1, 5, 10, 255, -1} {
		var b cryptobyte.Builder
		b.AddASN1Enum(v)
		var w Writer
		w.Enum(v)
		require.Equal(t, b.BytesOrPanic(), w.B, "%d", v)
	}
}

// AppendHeader and HeaderLen, for callers that know the size first, write
// the header Close writes after the fact.
func TestHeadersAgree(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000} {
		w := Writer{}
		s := w.Open(OctetString)
		w.Raw(make([]byte, n))
		w.Close(s)
		require.NoError(t, w.Err)
		hdr := AppendHeader(nil, OctetString, n)
		require.Equal(t, hdr, w.B[:len(hdr)], "n = %d", n)
		require.Equal(t, len(w.B)-n, len(hdr), "n = %d", n)
		require.Equal(t, len(hdr), HeaderLen(n), "n = %d", n)
	}
}
