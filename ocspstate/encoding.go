package ocspstate

import (
	"encoding/binary"
	"fmt"
	"time"
)

// A record is stored in two parts, so that the frequent writes stay small:
//
//   - the hot part, in the records bucket under the record's key: a format
//     byte, the version as a fixed big-endian uint64 (a compare-and-swap
//     reads 9 bytes), the state, the OCSP response (at a fixed position,
//     so the responder's lookup does not decode the rest), then the other
//     mutable fields. A response refresh rewrites only this.
//   - the immutable parts — intent, precertificate, SCTs, final
//     certificate — each in the blobs bucket under the key plus one tag
//     byte, written once, when first set (CheckTransition forbids changing
//     them afterwards).
//
// Variable-length fields carry a uvarint length; times are a varint of Unix
// seconds and a uvarint of nanoseconds.
const recordFormat = 1

// Blob tags, appended to a record's key in the blobs bucket.
const (
	blobIntent  = 'i'
	blobPrecert = 'p'
	blobSCTs    = 's'
	blobFinal   = 'f'
)

var blobTags = []byte{blobIntent, blobPrecert, blobSCTs, blobFinal}

func encodeHot(r *Record) []byte {
	b := make([]byte, 0, 96+len(r.OCSP.ResponseDER)+len(r.Lease.Owner))
	b = append(b, recordFormat)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = append(b, byte(r.State))
	b = appendBytes(b, r.OCSP.ResponseDER)
	var flags byte
	if r.OCSP.Enabled {
		flags |= 1
	}
	b = append(b, flags, byte(r.OCSP.Status))
	b = appendTime(b, r.OCSP.RevokedAt)
	b = binary.AppendUvarint(b, uint64(r.OCSP.Reason))
	b = appendTime(b, r.OCSP.ThisUpdate)
	b = appendTime(b, r.OCSP.NextUpdate)
	b = appendTime(b, r.NotBefore)
	b = appendTime(b, r.NotAfter)
	b = appendBytes(b, []byte(r.Lease.Owner))
	b = appendTime(b, r.Lease.Expires)
	b = appendTime(b, r.Created)
	b = appendTime(b, r.Updated)
	b = appendTime(b, r.Due)
	return b
}

// blob returns the stored form of one immutable field, or nil if it is
// not set.
func blob(r *Record, tag byte) []byte {
	switch tag {
	case blobIntent:
		return r.IntentDER
	case blobPrecert:
		return r.PrecertDER
	case blobFinal:
		return r.FinalDER
	case blobSCTs:
		if len(r.SCTs) == 0 {
			return nil
		}
		b := binary.AppendUvarint(nil, uint64(len(r.SCTs)))
		for _, s := range r.SCTs {
			b = appendBytes(b, s)
		}
		return b
	}
	return nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// storedVersion reads the version of a hot record without decoding it.
func storedVersion(b []byte) (uint64, error) {
	if len(b) < 10 || b[0] != recordFormat {
		return 0, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b[1:9]), nil
}

// storedResponse returns the response inside a hot record, aliasing it.
func storedResponse(b []byte) ([]byte, error) {
	if len(b) < 10 || b[0] != recordFormat {
		return nil, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	d := decoder{b: b[10:]}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: record response length", ErrCorrupt)
	}
	if n == 0 {
		return nil, nil
	}
	return d.b[:n:n], nil
}

// decodeRecord parses a record from its key, its hot part and its blobs
// (by tag; missing ones are nil). It never panics and never trusts a
// length: any inconsistency is ErrCorrupt.
func decodeRecord(key Key, hot []byte, blobs func(tag byte) []byte) (*Record, error) {
	r := new(Record)
	if err := decodeHotInto(r, []byte(key), hot); err != nil {
		return nil, err
	}
	r.IntentDER = cloneOrNil(blobs(blobIntent))
	r.PrecertDER = cloneOrNil(blobs(blobPrecert))
	r.FinalDER = cloneOrNil(blobs(blobFinal))
	if s := blobs(blobSCTs); len(s) > 0 {
		d := decoder{b: s}
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			return nil, fmt.Errorf("%w: SCT count", ErrCorrupt)
		}
		r.SCTs = make([][]byte, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			r.SCTs = append(r.SCTs, d.bytes())
		}
		if d.err == nil && len(d.b) != 0 {
			d.fail("SCT list")
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	return r, nil
}

// decodeHotInto fills r from a record's key and hot part, leaving the
// immutable fields alone.
func decodeHotInto(r *Record, key, hot []byte) error {
	var err error
	if r.Issuer, r.Serial, err = splitKey(key); err != nil {
		return err
	}
	d := decoder{b: hot}
	if format := d.byte(); d.err == nil && format != recordFormat {
		return fmt.Errorf("%w: record format %d, want %d", ErrCorrupt, format, recordFormat)
	}
	r.Version = d.uint64()
	r.State = State(d.byte())
	r.OCSP.ResponseDER = d.bytes()
	flags := d.byte()
	r.OCSP.Enabled = flags&1 != 0
	r.OCSP.Status = Status(d.byte())
	r.OCSP.RevokedAt = d.time()
	reason := d.uvarint()
	if reason > 255 {
		d.fail("reason")
	}
	r.OCSP.Reason = int(reason)
	r.OCSP.ThisUpdate = d.time()
	r.OCSP.NextUpdate = d.time()
	r.NotBefore = d.time()
	r.NotAfter = d.time()
	if owner := d.view(); len(owner) > 0 {
		r.Lease.Owner = string(owner)
	}
	r.Lease.Expires = d.time()
	r.Created = d.time()
	r.Updated = d.time()
	r.Due = d.time()
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return d.err
	}
	if !r.State.Valid() {
		return fmt.Errorf("%w: state %d", ErrCorrupt, r.State)
	}
	return nil
}

// slab hands out copies of bytes from shared chunks, so that reading many
// due entries at once costs a few allocations rather than one per entry.
// What it hands out is never reused: a chunk lives as long as anything
// handed out from it.
type slab struct {
	bytes []byte
}

// clone2 returns a copy of a followed by b, from sl (not nil).
func (sl *slab) clone2(a, b []byte) []byte {
	n := len(a) + len(b)
	if len(sl.bytes) < n {
		sl.bytes = make([]byte, max(n, 256<<10))
	}
	c := sl.bytes[:n:n]
	sl.bytes = sl.bytes[n:]
	copy(c[copy(c, a):], b)
	return c
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: record truncated or malformed at %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.fail("field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a copy, so records never alias store memory (bbolt's
// values live only as long as their transaction).
func (d *decoder) bytes() []byte {
	v := d.view()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// view is bytes without the copy: valid only as long as the input.
func (d *decoder) view() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("nanoseconds")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
