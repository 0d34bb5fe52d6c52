package issuance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/tbs"
)

// OIDs of RFC 6962 §3.1, as package ctsubmit defines them.
var (
	// OIDPoison is the critical CT poison extension that makes a
	// precertificate unusable as a certificate.
	OIDPoison = ctsubmit.OIDPoison
	// OIDSCTList is the embedded SCT list extension of a final certificate.
	OIDSCTList = ctsubmit.OIDSCTList
	// OIDPrecertSigning is the CT precertificate signing EKU; this
	// pipeline signs precertificates with the issuer itself, never with a
	// precertificate signing certificate.
	OIDPrecertSigning = ctsubmit.OIDPrecertSigning
)

// poisonValue is the DER NULL that is the poison extension's value.
var poisonValue = ctsubmit.PoisonExtension().Value

// finalFrom turns a parsed precertificate TBS, which it leaves unchanged,
// into the final certificate's: the poison extension is replaced, in
// place, by the SCT list extension whose extnValue is sctListValue.
// Nothing else changes.
func finalFrom(pre *tbs.TBS, sctListValue []byte) ([]byte, error) {
	t := *pre
	t.Exts = slices.Clone(pre.Exts)
	at := t.Find(OIDPoison)
	if len(at) != 1 {
		return nil, fmt.Errorf("precertificate has %d poison extensions, want 1", len(at))
	}
	if len(t.Find(OIDSCTList)) != 0 {
		return nil, errors.New("precertificate already carries an SCT list")
	}
	ext, err := tbs.NewExtension(OIDSCTList, false, sctListValue)
	if err != nil {
		return nil, err
	}
	t.Exts[at[0]] = ext
	return t.Marshal()
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
	p, err := tbs.Parse(precertTBS)
	if err != nil {
		return &MismatchError{Field: "precertificate", Detail: err.Error()}
	}
	return correspond(p, finalTBS)
}

// correspond is Correspond with the precertificate's TBS already parsed.
func correspond(p *tbs.TBS, finalTBS []byte) error {
	f, err := tbs.Parse(finalTBS)
	if err != nil {
		return &MismatchError{Field: "final certificate", Detail: err.Error()}
	}
	for _, c := range []struct {
		name string
		a, b []byte
	}{
		{"version", p.Version, f.Version},
		{"serialNumber", p.Serial, f.Serial},
		{"signature algorithm", p.SigAlg, f.SigAlg},
		{"issuer", p.Issuer, f.Issuer},
		{"validity", p.Validity, f.Validity},
		{"subject", p.Subject, f.Subject},
		{"subjectPublicKeyInfo", p.SPKI, f.SPKI},
		{"issuerUniqueID", p.IssuerUID, f.IssuerUID},
		{"subjectUniqueID", p.SubjectUID, f.SubjectUID},
	} {
		if !bytes.Equal(c.a, c.b) {
			return &MismatchError{Field: c.name, Detail: fmt.Sprintf("precertificate has %x, final has %x", c.a, c.b)}
		}
	}
	poison := p.Find(OIDPoison)
	if len(poison) != 1 {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: fmt.Sprintf("precertificate has %d poison extensions, want 1", len(poison))}
	}
	if pe := p.Exts[poison[0]]; !pe.Critical || !bytes.Equal(pe.Value, poisonValue) {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: "poison must be critical with value NULL (RFC 6962 §3.1)"}
	}
	if n := len(p.Find(OIDSCTList)); n != 0 {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: "precertificate carries an SCT list"}
	}
	if n := len(f.Find(OIDPoison)); n != 0 {
		return &MismatchError{Field: "extension " + OIDPoison.String(), Detail: "final certificate still carries the poison"}
	}
	scts := f.Find(OIDSCTList)
	if len(scts) != 1 {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: fmt.Sprintf("final certificate has %d SCT list extensions, want 1", len(scts))}
	}
	if f.Exts[scts[0]].Critical {
		return &MismatchError{Field: "extension " + OIDSCTList.String(), Detail: "SCT list must not be critical"}
	}
	// Every other extension, in order: the precertificate's without the
	// poison against the final's without the SCT list.
	pRest, fRest := without(p.Exts, poison[0]), without(f.Exts, scts[0])
	for i := 0; i < pRest.len() || i < fRest.len(); i++ {
		switch {
		case i >= fRest.len():
			return &MismatchError{Field: "extension " + pRest.at(i).ID().String(), Detail: "missing from the final certificate"}
		case i >= pRest.len():
			return &MismatchError{Field: "extension " + fRest.at(i).ID().String(), Detail: "not in the precertificate"}
		case !bytes.Equal(pRest.at(i).Raw, fRest.at(i).Raw):
			pe, fe := pRest.at(i), fRest.at(i)
			name := pe.ID().String()
			if !bytes.Equal(pe.RawOID, fe.RawOID) {
				name += " / " + fe.ID().String()
			}
			return &MismatchError{Field: "extension " + name, Detail: fmt.Sprintf("precertificate has %x, final has %x", pe.Raw, fe.Raw)}
		}
	}
	return nil
}

// skipping is a list of extensions with the one at index skip left out,
// without copying it.
type skipping struct {
	exts []tbs.Extension
	skip int
}

func without(exts []tbs.Extension, skip int) skipping { return skipping{exts, skip} }

func (s skipping) len() int { return len(s.exts) - 1 }

func (s skipping) at(i int) *tbs.Extension {
	if i >= s.skip {
		i++
	}
	return &s.exts[i]
}
