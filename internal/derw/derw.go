// Package derw writes DER (ITU-T X.690) into one growing buffer, without
// the per-element allocations of cryptobyte's Builder: Open writes a tag
// and a one-octet length, Close fixes the length once the contents are
// written, moving them if the length needs more octets. The certificate
// encoder (internal/x509enc) and the OCSP response encoder (ocspstate)
// write with it; its tests hold it to cryptobyte's output.
package derw

import (
	"encoding/asn1"
	"errors"
	"math"
	"math/big"
	"time"
)

// Tags written by this package's users.
const (
	Boolean         = 0x01
	Integer         = 0x02
	BitString       = 0x03
	OctetString     = 0x04
	Null            = 0x05
	OID             = 0x06
	Enumerated      = 0x0a
	UTF8String      = 0x0c
	PrintableString = 0x13
	UTCTime         = 0x17
	GeneralizedTime = 0x18
	Sequence        = 0x30
	Set             = 0x31
	Context         = 0x80 // | n: [n] IMPLICIT, primitive
	ContextCons     = 0xa0 // | n: [n], constructed
)

// Writer accumulates DER in B. The first error sticks in Err; the methods
// write nothing once it is set (but the caller must check it).
type Writer struct {
	B   []byte
	Err error
}

var errTooLong = errors.New("derw: element too long")

// Fail records err unless an error is already recorded.
func (w *Writer) Fail(err error) {
	if w.Err == nil {
		w.Err = err
	}
}

// Bytes returns what was written, or the first error.
func (w *Writer) Bytes() ([]byte, error) {
	if w.Err != nil {
		return nil, w.Err
	}
	return w.B, nil
}

// Open starts an element of the given (one-octet) tag and returns where
// its contents start, for Close.
func (w *Writer) Open(tag byte) int {
	w.B = append(w.B, tag, 0)
	return len(w.B)
}

// Close ends the element whose contents start at start, writing the
// minimal DER length.
func (w *Writer) Close(start int) {
	n := len(w.B) - start
	if n < 0x80 {
		w.B[start-1] = byte(n)
		return
	}
	if n > MaxLen {
		w.Fail(errTooLong)
		return
	}
	k := HeaderLen(n) - 2 // length octets after the first
	for range k {
		w.B = append(w.B, 0)
	}
	copy(w.B[start+k:], w.B[start:start+n])
	w.B[start-1] = 0x80 | byte(k)
	for i := range k {
		w.B[start+i] = byte(n >> (8 * (k - 1 - i)))
	}
}

// MaxLen is the longest contents this package writes a length for: four
// length octets.
const MaxLen = 1<<32 - 1

// HeaderLen is the size of a one-octet tag and the minimal DER length of
// n octets of contents, n at most MaxLen.
func HeaderLen(n int) int {
	switch {
	case n < 0x80:
		return 2
	case n <= 0xff:
		return 3
	case n <= 0xffff:
		return 4
	case n <= 0xffffff:
		return 5
	}
	return 6
}

// AppendHeader appends a one-octet tag and the minimal DER length of n,
// which must be at most MaxLen: for callers that know the size of the
// contents before writing them.
func AppendHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xff:
		return append(dst, 0x81, byte(n))
	case n <= 0xffff:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Raw appends already encoded bytes.
func (w *Writer) Raw(p []byte) { w.B = append(w.B, p...) }

// Primitive writes an element of tag with contents p.
func (w *Writer) Primitive(tag byte, p []byte) {
	s := w.Open(tag)
	w.Raw(p)
	w.Close(s)
}

// BoolTrue writes BOOLEAN TRUE as DER requires it (0xff).
func (w *Writer) BoolTrue() { w.B = append(w.B, Boolean, 1, 0xff) }

// Int64 writes an INTEGER in minimal two's complement.
func (w *Writer) Int64(v int64) { w.integer(Integer, v) }

// Enum writes an ENUMERATED, encoded as an INTEGER.
func (w *Writer) Enum(v int64) { w.integer(Enumerated, v) }

func (w *Writer) integer(tag byte, v int64) {
	s := w.Open(tag)
	n := 1
	for i := v; i >= 0x80 || i < -0x80; i >>= 8 {
		n++
	}
	for ; n > 0; n-- {
		w.B = append(w.B, byte(v>>(8*(n-1))))
	}
	w.Close(s)
}

// BigInt writes a non-negative INTEGER.
func (w *Writer) BigInt(n *big.Int) {
	if n.Sign() < 0 {
		w.Fail(errors.New("derw: negative INTEGER"))
		return
	}
	s := w.Open(Integer)
	if n.Sign() == 0 {
		w.B = append(w.B, 0)
	} else {
		if n.BitLen()%8 == 0 {
			w.B = append(w.B, 0) // the high bit is set: a sign octet
		}
		at := len(w.B)
		w.B = append(w.B, make([]byte, (n.BitLen()+7)/8)...)
		n.FillBytes(w.B[at:])
	}
	w.Close(s)
}

// BitStringBytes writes a BIT STRING of whole octets.
func (w *Writer) BitStringBytes(p []byte) {
	s := w.Open(BitString)
	w.B = append(w.B, 0)
	w.Raw(p)
	w.Close(s)
}

// ObjectIdentifier writes an OBJECT IDENTIFIER, refusing those
// AppendOID refuses.
func (w *Writer) ObjectIdentifier(oid asn1.ObjectIdentifier) {
	s := w.Open(OID)
	var ok bool
	if w.B, ok = AppendOID(w.B, oid); !ok {
		w.B = w.B[:s-2]
		w.Fail(errors.New("derw: invalid object identifier"))
		return
	}
	w.Close(s)
}

// AppendOID appends the contents octets of oid's OBJECT IDENTIFIER, as
// cryptobyte encodes them. Like cryptobyte, it refuses (ok false, dst
// unchanged) fewer than two arcs, a first arc above 2, a second arc of 40
// or more under a first of 0 or 1, and negative arcs; unlike it, also a
// second arc so large that combining it with the first overflows.
func AppendOID(dst []byte, oid asn1.ObjectIdentifier) (_ []byte, ok bool) {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) || int64(oid[1]) > math.MaxInt64-80 {
		return dst, false
	}
	for _, c := range oid[2:] {
		if c < 0 {
			return dst, false
		}
	}
	dst = appendBase128(dst, int64(oid[0])*40+int64(oid[1]))
	for _, c := range oid[2:] {
		dst = appendBase128(dst, int64(c))
	}
	return dst, true
}

func appendBase128(dst []byte, n int64) []byte {
	l := 1
	for i := n >> 7; i > 0; i >>= 7 {
		l++
	}
	for i := l - 1; i >= 0; i-- {
		c := byte(n>>(7*i)) & 0x7f
		if i != 0 {
			c |= 0x80
		}
		dst = append(dst, c)
	}
	return dst
}

// Time writes t in UTC as encoding/asn1 marshals a time.Time: UTCTime
// from 1950 to 2049, GeneralizedTime otherwise, whole seconds, 'Z'.
func (w *Writer) Time(t time.Time) {
	t = t.UTC()
	if year := t.Year(); 1950 <= year && year < 2050 {
		w.time(UTCTime, t, 2)
		return
	}
	w.GeneralizedTime(t)
}

// GeneralizedTime writes t in UTC as a GeneralizedTime of whole seconds
// ("YYYYMMDDHHMMSSZ"), as cryptobyte's AddASN1GeneralizedTime does.
func (w *Writer) GeneralizedTime(t time.Time) {
	w.time(GeneralizedTime, t.UTC(), 4)
}

func (w *Writer) time(tag byte, t time.Time, yearDigits int) {
	year := t.Year()
	if year < 0 || year > 9999 {
		w.Fail(errors.New("derw: time out of range for GeneralizedTime"))
		return
	}
	if yearDigits == 2 {
		year %= 100
	}
	s := w.Open(tag)
	_, month, day := t.Date()
	hour, minute, sec := t.Clock()
	w.B = appendDigits(w.B, year, yearDigits)
	w.B = appendDigits(w.B, int(month), 2)
	w.B = appendDigits(w.B, day, 2)
	w.B = appendDigits(w.B, hour, 2)
	w.B = appendDigits(w.B, minute, 2)
	w.B = appendDigits(w.B, sec, 2)
	w.B = append(w.B, 'Z')
	w.Close(s)
}

func appendDigits(dst []byte, v, n int) []byte {
	var buf [4]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:n]...)
}
