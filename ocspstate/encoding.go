package ocspstate

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"time"
)

// The stored form of a record: a format byte, the version as a fixed
// big-endian uint64 (so a compare-and-swap reads 9 bytes, not the record),
// then every field in order, variable-length ones prefixed with a uvarint
// length. Times are a varint of Unix seconds and a uvarint of nanoseconds.
const recordFormat = 1

func encodeRecord(r *Record) []byte {
	n := 128 + len(r.IntentDER) + len(r.PrecertDER) + len(r.FinalDER) + len(r.OCSP.ResponseDER) + len(r.Lease.Owner)
	for _, s := range r.SCTs {
		n += len(s) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = append(b, r.Issuer[:]...)
	b = append(b, byte(r.State))
	b = appendBytes(b, r.Serial.Bytes())
	b = appendBytes(b, r.IntentDER)
	b = appendBytes(b, r.PrecertDER)
	b = binary.AppendUvarint(b, uint64(len(r.SCTs)))
	for _, s := range r.SCTs {
		b = appendBytes(b, s)
	}
	b = appendBytes(b, r.FinalDER)
	b = appendTime(b, r.NotBefore)
	b = appendTime(b, r.NotAfter)
	var flags byte
	if r.OCSP.Enabled {
		flags |= 1
	}
	b = append(b, flags, byte(r.OCSP.Status))
	b = appendTime(b, r.OCSP.RevokedAt)
	b = binary.AppendUvarint(b, uint64(r.OCSP.Reason))
	b = appendBytes(b, r.OCSP.ResponseDER)
	b = appendTime(b, r.OCSP.ThisUpdate)
	b = appendTime(b, r.OCSP.NextUpdate)
	b = appendBytes(b, []byte(r.Lease.Owner))
	b = appendTime(b, r.Lease.Expires)
	b = appendTime(b, r.Created)
	b = appendTime(b, r.Updated)
	b = appendTime(b, r.Due)
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// storedVersion reads the version of an encoded record without decoding it.
func storedVersion(b []byte) (uint64, error) {
	if len(b) < 9 || b[0] != recordFormat {
		return 0, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b[1:9]), nil
}

// decodeRecord parses what encodeRecord wrote. It never panics and never
// trusts a length: any inconsistency is ErrCorrupt.
func decodeRecord(b []byte) (*Record, error) {
	d := decoder{b: b}
	format := d.byte()
	if d.err == nil && format != recordFormat {
		return nil, fmt.Errorf("%w: record format %d, want %d", ErrCorrupt, format, recordFormat)
	}
	r := &Record{}
	r.Version = d.uint64()
	copy(r.Issuer[:], d.take(len(r.Issuer)))
	r.State = State(d.byte())
	r.Serial = new(big.Int).SetBytes(d.bytes())
	r.IntentDER = d.bytes()
	r.PrecertDER = d.bytes()
	if n := d.uvarint(); n > 0 {
		if n > uint64(len(d.b)) {
			d.fail("SCT count")
		} else {
			r.SCTs = make([][]byte, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				r.SCTs = append(r.SCTs, d.bytes())
			}
		}
	}
	r.FinalDER = d.bytes()
	r.NotBefore = d.time()
	r.NotAfter = d.time()
	flags := d.byte()
	r.OCSP.Enabled = flags&1 != 0
	r.OCSP.Status = Status(d.byte())
	r.OCSP.RevokedAt = d.time()
	reason := d.uvarint()
	if reason > 255 {
		d.fail("reason")
	}
	r.OCSP.Reason = int(reason)
	r.OCSP.ResponseDER = d.bytes()
	r.OCSP.ThisUpdate = d.time()
	r.OCSP.NextUpdate = d.time()
	r.Lease.Owner = string(d.bytes())
	r.Lease.Expires = d.time()
	r.Created = d.time()
	r.Updated = d.time()
	r.Due = d.time()
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, d.err
	}
	if !r.State.Valid() {
		return nil, fmt.Errorf("%w: state %d", ErrCorrupt, r.State)
	}
	return r, nil
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
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	v := d.take(int(n))
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
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
