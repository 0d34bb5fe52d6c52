// Package tbs splits a DER TBSCertificate into its fields and rebuilds it,
// byte for byte, for the few edits RFC 6962 needs: removing the poison
// extension (the entry a CT log signs) and replacing it with the SCT list
// (the final certificate). One implementation serves the pipeline, the CT
// submitter and the test log; ctsubmit's tests check it against
// certificate-transparency-go's.
package tbs

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/certpipe/precert/internal/derw"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TBS is a TBSCertificate (RFC 5280 §4.1) split into its fields, each kept
// as the raw DER element it was read from, so that comparisons and rebuilds
// are byte exact.
type TBS struct {
	Version    []byte // [0] EXPLICIT element, or nil for v1
	Serial     []byte
	SigAlg     []byte
	Issuer     []byte
	Validity   []byte
	Subject    []byte
	SPKI       []byte
	IssuerUID  []byte
	SubjectUID []byte
	Exts       []Extension
}

// Extension is one Extension element of a TBS. Its OID is kept encoded:
// comparing encodings ([Extension.Is]) spares decoding every OID of every
// certificate parsed.
type Extension struct {
	RawOID   []byte // contents of the extnID OBJECT IDENTIFIER
	Critical bool
	Value    []byte // contents of the extnValue OCTET STRING
	Raw      []byte // the whole Extension element
}

// NewExtension returns the Extension of oid, criticality and value.
func NewExtension(oid asn1.ObjectIdentifier, critical bool, value []byte) (Extension, error) {
	raw, err := MarshalExtension(oid, critical, value)
	if err != nil {
		return Extension{}, err
	}
	rawOID, ok := derw.AppendOID(nil, oid)
	if !ok {
		return Extension{}, fmt.Errorf("invalid OID %v", oid)
	}
	return Extension{RawOID: rawOID, Critical: critical, Value: value, Raw: raw}, nil
}

// Is reports whether e's OID is oid.
func (e Extension) Is(oid asn1.ObjectIdentifier) bool {
	var buf [64]byte
	enc, ok := derw.AppendOID(buf[:0], oid)
	return ok && string(enc) == string(e.RawOID)
}

// ID returns e's OID, decoded; nil if it does not decode.
func (e Extension) ID() asn1.ObjectIdentifier {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(e.RawOID) })
	der, err := b.Bytes()
	if err != nil {
		return nil
	}
	var oid asn1.ObjectIdentifier
	in := cryptobyte.String(der)
	if !in.ReadASN1ObjectIdentifier(&oid) {
		return nil
	}
	return oid
}

// Parse splits a DER TBSCertificate. It never panics; anything but one
// well-formed TBSCertificate is an error.
func Parse(der []byte) (*TBS, error) {
	in := cryptobyte.String(der)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("not one DER TBSCertificate")
	}
	t := &TBS{}
	read := func(dst *[]byte, tag cbasn1.Tag, name string) error {
		var el cryptobyte.String
		if !body.ReadASN1Element(&el, tag) {
			return fmt.Errorf("TBSCertificate: bad or missing %s", name)
		}
		*dst = el
		return nil
	}
	if body.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		if err := read(&t.Version, cbasn1.Tag(0).Constructed().ContextSpecific(), "version"); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		dst  *[]byte
		tag  cbasn1.Tag
		name string
	}{
		{&t.Serial, cbasn1.INTEGER, "serialNumber"},
		{&t.SigAlg, cbasn1.SEQUENCE, "signature"},
		{&t.Issuer, cbasn1.SEQUENCE, "issuer"},
		{&t.Validity, cbasn1.SEQUENCE, "validity"},
		{&t.Subject, cbasn1.SEQUENCE, "subject"},
		{&t.SPKI, cbasn1.SEQUENCE, "subjectPublicKeyInfo"},
	} {
		if err := read(f.dst, f.tag, f.name); err != nil {
			return nil, err
		}
	}
	if body.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific()) {
		if err := read(&t.IssuerUID, cbasn1.Tag(1).ContextSpecific(), "issuerUniqueID"); err != nil {
			return nil, err
		}
	}
	if body.PeekASN1Tag(cbasn1.Tag(2).ContextSpecific()) {
		if err := read(&t.SubjectUID, cbasn1.Tag(2).ContextSpecific(), "subjectUniqueID"); err != nil {
			return nil, err
		}
	}
	if body.PeekASN1Tag(cbasn1.Tag(3).Constructed().ContextSpecific()) {
		var wrapper, exts cryptobyte.String
		if !body.ReadASN1(&wrapper, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
			!wrapper.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrapper.Empty() {
			return nil, errors.New("TBSCertificate: bad extensions")
		}
		n := 0
		for count := exts; count.SkipASN1(cbasn1.SEQUENCE); n++ {
		}
		t.Exts = make([]Extension, 0, n)
		for !exts.Empty() {
			var raw, outer, ext, val cryptobyte.String
			if !exts.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
				return nil, errors.New("TBSCertificate: bad extension")
			}
			outer = raw
			var e Extension
			var oid cryptobyte.String
			if !outer.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !validOID(oid) ||
				(ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical)) ||
				!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
				return nil, errors.New("TBSCertificate: bad extension")
			}
			e.RawOID, e.Value, e.Raw = oid, val, raw
			t.Exts = append(t.Exts, e)
		}
	}
	if !body.Empty() {
		return nil, errors.New("TBSCertificate: trailing data")
	}
	return t, nil
}

// validOID reports whether contents are the contents of an OBJECT
// IDENTIFIER that cryptobyte's ReadASN1ObjectIdentifier decodes: at least
// one component, each in base 128 with no leading 0x80 octet, complete,
// and below 2^31. It allocates nothing.
func validOID(contents []byte) bool {
	if len(contents) == 0 {
		return false
	}
	for len(contents) > 0 {
		v, n := 0, 0
		for {
			if n == 5 || n == len(contents) || v >= 1<<(31-7) {
				return false
			}
			c := contents[n]
			if n == 0 && c == 0x80 {
				return false
			}
			v = v<<7 | int(c&0x7f)
			n++
			if c&0x80 == 0 {
				break
			}
		}
		contents = contents[n:]
	}
	return true
}

// Marshal encodes t, each field as it is held, into one buffer of the
// exact size.
func (t *TBS) Marshal() ([]byte, error) {
	fields := [...][]byte{t.Version, t.Serial, t.SigAlg, t.Issuer, t.Validity, t.Subject, t.SPKI, t.IssuerUID, t.SubjectUID}
	body := 0
	for _, f := range fields {
		body += len(f)
	}
	exts, seq := 0, 0
	if len(t.Exts) > 0 {
		for _, e := range t.Exts {
			exts += len(e.Raw)
		}
		seq = derw.HeaderLen(exts) + exts
		body += derw.HeaderLen(seq) + seq
	}
	if body > derw.MaxLen {
		return nil, errors.New("TBSCertificate: too long")
	}
	out := make([]byte, 0, derw.HeaderLen(body)+body)
	out = derw.AppendHeader(out, byte(cbasn1.SEQUENCE), body)
	for _, f := range fields {
		out = append(out, f...)
	}
	if len(t.Exts) > 0 {
		out = derw.AppendHeader(out, byte(cbasn1.Tag(3).Constructed().ContextSpecific()), seq)
		out = derw.AppendHeader(out, byte(cbasn1.SEQUENCE), exts)
		for _, e := range t.Exts {
			out = append(out, e.Raw...)
		}
	}
	return out, nil
}

// SignatureAlgorithm returns the signature AlgorithmIdentifier element of
// a DER TBSCertificate, reading no further and allocating nothing. It
// never panics.
func SignatureAlgorithm(der []byte) ([]byte, error) {
	in := cryptobyte.String(der)
	var body, alg cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() ||
		!body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.SkipASN1(cbasn1.INTEGER) ||
		!body.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, errors.New("TBSCertificate: bad or missing signature algorithm")
	}
	return alg, nil
}

// Find returns the indexes of the extensions with oid.
func (t *TBS) Find(oid asn1.ObjectIdentifier) []int {
	var at []int
	for i, e := range t.Exts {
		if e.Is(oid) {
			at = append(at, i)
		}
	}
	return at
}

// MarshalExtension encodes an Extension; critical false is omitted (DER).
func MarshalExtension(oid asn1.ObjectIdentifier, critical bool, value []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
	return b.Bytes()
}

// SplitCertificate splits a DER Certificate (RFC 5280 §4.1) into its
// three fields, each the raw DER element, without parsing any of them
// further: for the callers that need only the TBS bytes of a certificate,
// not an x509.Certificate. It never panics; anything but one Certificate
// SEQUENCE of a SEQUENCE, a SEQUENCE and a BIT STRING is an error.
func SplitCertificate(der []byte) (tbsDER, sigAlg, sig []byte, err error) {
	in := cryptobyte.String(der)
	var body, t, a, s cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() ||
		!body.ReadASN1Element(&t, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&a, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&s, cbasn1.BIT_STRING) || !body.Empty() {
		return nil, nil, nil, errors.New("not one DER Certificate")
	}
	return t, a, s, nil
}

// JoinCertificate is the inverse of SplitCertificate: it wraps a DER
// TBSCertificate, a DER AlgorithmIdentifier and signature octets into a
// DER Certificate, in one buffer of the exact size. It does not check
// its inputs.
func JoinCertificate(tbsDER, sigAlg, sig []byte) ([]byte, error) {
	bits := 1 + len(sig) // the unused-bits octet, then the signature
	body := len(tbsDER) + len(sigAlg) + derw.HeaderLen(bits) + bits
	if body > derw.MaxLen {
		return nil, errors.New("certificate too long")
	}
	out := make([]byte, 0, derw.HeaderLen(body)+body)
	out = derw.AppendHeader(out, byte(cbasn1.SEQUENCE), body)
	out = append(out, tbsDER...)
	out = append(out, sigAlg...)
	out = derw.AppendHeader(out, byte(cbasn1.BIT_STRING), bits)
	out = append(out, 0)
	return append(out, sig...), nil
}

// Times reads notBefore and notAfter from t.Validity, UTCTime or
// GeneralizedTime, as crypto/x509 does.
func (t *TBS) Times() (notBefore, notAfter time.Time, err error) {
	in := cryptobyte.String(t.Validity)
	var v cryptobyte.String
	if !in.ReadASN1(&v, cbasn1.SEQUENCE) || !in.Empty() {
		return notBefore, notAfter, errors.New("TBSCertificate: bad validity")
	}
	if notBefore, err = readTime(&v); err != nil {
		return notBefore, notAfter, err
	}
	if notAfter, err = readTime(&v); err != nil {
		return notBefore, notAfter, err
	}
	if !v.Empty() {
		return notBefore, notAfter, errors.New("TBSCertificate: trailing data in validity")
	}
	return notBefore, notAfter, nil
}

func readTime(v *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case v.PeekASN1Tag(cbasn1.UTCTime):
		if !v.ReadASN1UTCTime(&t) {
			return t, errors.New("TBSCertificate: malformed UTCTime")
		}
	case v.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !v.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("TBSCertificate: malformed GeneralizedTime")
		}
	default:
		return t, errors.New("TBSCertificate: unsupported time format")
	}
	return t, nil
}
