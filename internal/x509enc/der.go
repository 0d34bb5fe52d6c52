package x509enc

import (
	"encoding/asn1"
	"errors"
	"math"
	"math/big"
)

// DER tags this package writes.
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagOID             = 0x06
	tagUTF8String      = 0x0c
	tagPrintableString = 0x13
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagSet             = 0x31
	tagContext         = 0x80 // | n: [n] IMPLICIT, primitive
	tagContextCons     = 0xa0 // | n: [n], constructed
)

// der writes DER into one growing buffer, the way cryptobyte's Builder
// encodes, without its per-element allocations: open writes a tag and a
// one-octet length, close fixes the length once the contents are written,
// moving them if the length needs more octets. The first error sticks.
type der struct {
	b   []byte
	err error
}

var errTooLong = errors.New("x509enc: element too long")

func (d *der) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// open starts an element of the given (one-octet) tag and returns where
// its contents start, for close.
func (d *der) open(tag byte) int {
	d.b = append(d.b, tag, 0)
	return len(d.b)
}

// close ends the element whose contents start at start, writing the
// minimal DER length.
func (d *der) close(start int) {
	n := len(d.b) - start
	if n < 0x80 {
		d.b[start-1] = byte(n)
		return
	}
	k := 0
	for m := n; m > 0; m >>= 8 {
		k++
	}
	if k > 4 {
		d.fail(errTooLong)
		return
	}
	for range k {
		d.b = append(d.b, 0)
	}
	copy(d.b[start+k:], d.b[start:start+n])
	d.b[start-1] = 0x80 | byte(k)
	for i := range k {
		d.b[start+i] = byte(n >> (8 * (k - 1 - i)))
	}
}

// raw appends already encoded bytes.
func (d *der) raw(p []byte) { d.b = append(d.b, p...) }

// primitive writes an element of tag with contents p.
func (d *der) primitive(tag byte, p []byte) {
	s := d.open(tag)
	d.raw(p)
	d.close(s)
}

// boolTrue writes BOOLEAN TRUE as DER requires it (0xff).
func (d *der) boolTrue() { d.b = append(d.b, tagBoolean, 1, 0xff) }

// int64 writes an INTEGER in minimal two's complement.
func (d *der) int64(v int64) {
	s := d.open(tagInteger)
	n := 1
	for i := v; i >= 0x80 || i < -0x80; i >>= 8 {
		n++
	}
	for ; n > 0; n-- {
		d.b = append(d.b, byte(v>>(8*(n-1))))
	}
	d.close(s)
}

// bigInt writes a non-negative INTEGER.
func (d *der) bigInt(n *big.Int) {
	if n.Sign() < 0 {
		d.fail(errors.New("x509enc: negative INTEGER"))
		return
	}
	s := d.open(tagInteger)
	if n.Sign() == 0 {
		d.b = append(d.b, 0)
	} else {
		bs := n.Bytes()
		if bs[0]&0x80 != 0 {
			d.b = append(d.b, 0)
		}
		d.raw(bs)
	}
	d.close(s)
}

// bitString writes a BIT STRING of whole octets.
func (d *der) bitString(p []byte) {
	s := d.open(tagBitString)
	d.b = append(d.b, 0)
	d.raw(p)
	d.close(s)
}

// oid writes an OBJECT IDENTIFIER. Like cryptobyte, it refuses fewer than
// two arcs, a first arc above 2, a second arc of 40 or more under a first
// of 0 or 1, and negative arcs; unlike it, also a second arc so large
// that combining it with the first overflows.
func (d *der) oid(oid asn1.ObjectIdentifier) {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) || int64(oid[1]) > math.MaxInt64-80 {
		d.fail(errors.New("x509enc: invalid object identifier"))
		return
	}
	for _, c := range oid[2:] {
		if c < 0 {
			d.fail(errors.New("x509enc: invalid object identifier"))
			return
		}
	}
	s := d.open(tagOID)
	d.base128(int64(oid[0])*40 + int64(oid[1]))
	for _, c := range oid[2:] {
		d.base128(int64(c))
	}
	d.close(s)
}

func (d *der) base128(n int64) {
	l := 1
	for i := n >> 7; i > 0; i >>= 7 {
		l++
	}
	for i := l - 1; i >= 0; i-- {
		c := byte(n>>(7*i)) & 0x7f
		if i != 0 {
			c |= 0x80
		}
		d.b = append(d.b, c)
	}
}
