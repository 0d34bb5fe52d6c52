package issuance

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDs of RFC 6962 §3.1.
var (
	// OIDPoison is the critical CT poison extension that makes a
	// precertificate unusable as a certificate.
	OIDPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	// OIDSCTList is the embedded SCT list extension of a final certificate.
	OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
	// OIDPrecertSigning is the CT precertificate signing EKU; this
	// pipeline signs precertificates with the issuer itself, never with a
	// precertificate signing certificate.
	OIDPrecertSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}
)

// poisonValue is the DER NULL that is the poison extension's value.
var poisonValue = []byte{0x05, 0x00}

// tbs is a TBSCertificate split into its fields, each kept as the raw DER
// element it was read from, so that comparisons and rebuilds are byte
// exact.
type tbs struct {
	version    []byte // [0] EXPLICIT element, or nil for v1
	serial     []byte
	sigAlg     []byte
	issuer     []byte
	validity   []byte
	subject    []byte
	spki       []byte
	issuerUID  []byte
	subjectUID []byte
	exts       []extension
}

type extension struct {
	oid      asn1.ObjectIdentifier
	critical bool
	value    []byte // contents of the extnValue OCTET STRING
	raw      []byte // the whole Extension element
}

func parseTBS(der []byte) (*tbs, error) {
	in := cryptobyte.String(der)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("not one DER TBSCertificate")
	}
	t := &tbs{}
	read := func(dst *[]byte, tag cbasn1.Tag, name string) error {
		var el cryptobyte.String
		if !body.ReadASN1Element(&el, tag) {
			return fmt.Errorf("TBSCertificate: bad or missing %s", name)
		}
		*dst = el
		return nil
	}
	if body.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		if err := read(&t.version, cbasn1.Tag(0).Constructed().ContextSpecific(), "version"); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		dst  *[]byte
		tag  cbasn1.Tag
		name string
	}{
		{&t.serial, cbasn1.INTEGER, "serialNumber"},
		{&t.sigAlg, cbasn1.SEQUENCE, "signature"},
		{&t.issuer, cbasn1.SEQUENCE, "issuer"},
		{&t.validity, cbasn1.SEQUENCE, "validity"},
		{&t.subject, cbasn1.SEQUENCE, "subject"},
		{&t.spki, cbasn1.SEQUENCE, "subjectPublicKeyInfo"},
	} {
		if err := read(f.dst, f.tag, f.name); err != nil {
			return nil, err
		}
	}
	if body.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific()) {
		if err := read(&t.issuerUID, cbasn1.Tag(1).ContextSpecific(), "issuerUniqueID"); err != nil {
			return nil, err
		}
	}
	if body.PeekASN1Tag(cbasn1.Tag(2).ContextSpecific()) {
		if err := read(&t.subjectUID, cbasn1.Tag(2).ContextSpecific(), "subjectUniqueID"); err != nil {
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
			var e extension
			if !outer.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.oid) ||
				(ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.critical)) ||
				!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
				return nil, errors.New("TBSCertificate: bad extension")
			}
			e.value, e.raw = val, raw
			t.exts = append(t.exts, e)
		}
	}
	if !body.Empty() {
		return nil, errors.New("TBSCertificate: trailing data")
	}
	return t, nil
}

func (t *tbs) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, f := range [][]byte{t.version, t.serial, t.sigAlg, t.issuer, t.validity, t.subject, t.spki, t.issuerUID, t.subjectUID} {
			if f != nil {
				b.AddBytes(f)
			}
		}
		if len(t.exts) > 0 {
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, e := range t.exts {
						b.AddBytes(e.raw)
					}
				})
			})
		}
	})
	return b.Bytes()
}

func (t *tbs) find(oid asn1.ObjectIdentifier) []int {
	var at []int
	for i, e := range t.exts {
		if e.oid.Equal(oid) {
			at = append(at, i)
		}
	}
	return at
}

func marshalExtension(oid asn1.ObjectIdentifier, critical bool, value []byte) ([]byte, error) {
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

// finalTBS turns a precertificate's TBS into the final certificate's: the
// poison extension is replaced, in place, by the SCT list extension whose
// extnValue is sctListValue. Nothing else changes.
func finalTBS(precertTBS, sctListValue []byte) ([]byte, error) {
	t, err := parseTBS(precertTBS)
	if err != nil {
		return nil, err
	}
	at := t.find(OIDPoison)
	if len(at) != 1 {
		return nil, fmt.Errorf("precertificate has %d poison extensions, want 1", len(at))
	}
	if len(t.find(OIDSCTList)) != 0 {
		return nil, errors.New("precertificate already carries an SCT list")
	}
	raw, err := marshalExtension(OIDSCTList, false, sctListValue)
	if err != nil {
		return nil, err
	}
	t.exts[at[0]] = extension{oid: OIDSCTList, value: sctListValue, raw: raw}
	return t.marshal()
}

// MismatchError says how a final certificate's TBS differs from its
// precertificate's (invariant I4).
type MismatchError struct {
	Field  string // "serialNumber", "issuer", "extension 2.5.29.17", …
	Detail string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("issuance: final certificate does not correspond to its precertificate: %s: %s", e.Field, e.Detail)
}

// Correspond checks invariant I4 on two DER TBSCertificates: the final's
// TBS must equal the precertificate's with the poison extension removed and
// the SCT list extension added — same version, serial, signature
// algorithm, issuer, validity, subject, public key and unique IDs, and every
// other extension byte for byte, in the same order. The precertificate must
// carry exactly one poison extension (critical, value NULL) and no SCT
// list; the final exactly one SCT list and no poison. A mismatch is a
// *MismatchError naming the field.
func Correspond(precertTBS, finalTBS []byte) error {
	p, err := parseTBS(precertTBS)
	if err != nil {
		return &MismatchError{Field: "precertificate", Detail: err.Error()}
	}
	f, err := parseTBS(finalTBS)
	if err != nil {
		return &MismatchError{Field: "final certificate", Detail: err.Error()}
	}
	for _, c := range []struct {
		name string
		a, b []byte
	}{
		{"version", p.version, f.version},
		{"serialNumber", p.serial, f.serial},
		{"signature algorithm", p.sigAlg, f.sigAlg},
		{"issuer", p.issuer, f.issuer},
		{"validity", p.validity, f.validity},
		{"subject", p.subject, f.subject},
		{"subjectPublicKeyInfo", p.spki, f.spki},
		{"issuerUniqueID", p.issuerUID, f.issuerUID},
		{"subjectUniqueID", p.subjectUID, f.subjectUID},
	} {
		if !bytes.Equal(c.a, c.b) {
			return &MismatchError{Field: c.name, Detail: fmt.Sprintf("precertificate has %x, final has %x", c.a, c.b)}
		}
	}
	poison := p.find(OIDPoison)
	if len(poison) != 1 {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: fmt.Sprintf("precertificate has %d poison extensions, want 1", len(poison))}
	}
	if pe := p.exts[poison[0]]; !pe.critical || !bytes.Equal(pe.value, poisonValue) {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: "poison must be critical with value NULL (RFC 6962 §3.1)"}
	}
	if n := len(p.find(OIDSCTList)); n != 0 {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: "precertificate carries an SCT list"}
	}
	if n := len(f.find(OIDPoison)); n != 0 {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: "final certificate still carries the poison"}
	}
	scts := f.find(OIDSCTList)
	if len(scts) != 1 {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: fmt.Sprintf("final certificate has %d SCT list extensions, want 1", len(scts))}
	}
	if f.exts[scts[0]].critical {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: "SCT list must not be critical"}
	}
	var pRest, fRest []extension
	for i, e := range p.exts {
		if i != poison[0] {
			pRest = append(pRest, e)
		}
	}
	for i, e := range f.exts {
		if i != scts[0] {
			fRest = append(fRest, e)
		}
	}
	for i := 0; i < len(pRest) || i < len(fRest); i++ {
		switch {
		case i >= len(fRest):
			return &MismatchError{Field: "extension " + pRest[i].oid.String(), Detail: "missing from the final certificate"}
		case i >= len(pRest):
			return &MismatchError{Field: "extension " + fRest[i].oid.String(), Detail: "not in the precertificate"}
		case !bytes.Equal(pRest[i].raw, fRest[i].raw):
			name := pRest[i].oid.String()
			if !pRest[i].oid.Equal(fRest[i].oid) {
				name += " / " + fRest[i].oid.String()
			}
			return &MismatchError{Field: "extension " + name, Detail: fmt.Sprintf("precertificate has %x, final has %x", pRest[i].raw, fRest[i].raw)}
		}
	}
	return nil
}
