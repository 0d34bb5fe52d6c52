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

// Extension is one Extension element of a TBS.
type Extension struct {
	OID      asn1.ObjectIdentifier
	Critical bool
	Value    []byte // contents of the extnValue OCTET STRING
	Raw      []byte // the whole Extension element
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
		for !exts.Empty() {
			var raw, outer, ext, val cryptobyte.String
			if !exts.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
				return nil, errors.New("TBSCertificate: bad extension")
			}
			outer = raw
			var e Extension
			if !outer.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.OID) ||
				(ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical)) ||
				!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
				return nil, errors.New("TBSCertificate: bad extension")
			}
			e.Value, e.Raw = val, raw
			t.Exts = append(t.Exts, e)
		}
	}
	if !body.Empty() {
		return nil, errors.New("TBSCertificate: trailing data")
	}
	return t, nil
}

// Marshal encodes t, each field as it is held.
func (t *TBS) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, f := range [][]byte{t.Version, t.Serial, t.SigAlg, t.Issuer, t.Validity, t.Subject, t.SPKI, t.IssuerUID, t.SubjectUID} {
			if f != nil {
				b.AddBytes(f)
			}
		}
		if len(t.Exts) > 0 {
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, e := range t.Exts {
						b.AddBytes(e.Raw)
					}
				})
			})
		}
	})
	return b.Bytes()
}

// Find returns the indexes of the extensions with oid.
func (t *TBS) Find(oid asn1.ObjectIdentifier) []int {
	var at []int
	for i, e := range t.Exts {
		if e.OID.Equal(oid) {
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

// Without returns the DER of tbsDER with every extension of oid removed
// (and the extensions field dropped if none remain).
func Without(tbsDER []byte, oid asn1.ObjectIdentifier) ([]byte, error) {
	t, err := Parse(tbsDER)
	if err != nil {
		return nil, err
	}
	kept := t.Exts[:0]
	for _, e := range t.Exts {
		if !e.OID.Equal(oid) {
			kept = append(kept, e)
		}
	}
	t.Exts = kept
	return t.Marshal()
}
