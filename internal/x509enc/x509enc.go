// Package x509enc encodes the TBSCertificate (RFC 5280 §4.1) that
// crypto/x509.CreateCertificate would sign for a template, byte for byte,
// without signing anything.
//
// CreateCertificate builds the TBS, signs it, and then verifies its own
// signature: two public-key operations for bytes that a caller who only
// needs the unsigned TBS (the intent a CA reserves before its key signs
// anything) throws away. [TBS] produces the same bytes from the same
// template with neither.
//
// # Fallback, never different bytes
//
// TBS supports the template fields a subscriber certificate uses: serial
// number, subject (the standard [pkix.Name] attributes, or RawSubject),
// validity, an RSA, ECDSA or Ed25519 subject key, key usage, extended key
// usage (known and unknown), basic constraints, subject and authority key
// identifiers, certificate policies ([x509.Certificate.Policies]), CRL
// distribution points, authority information access (OCSP and CA issuers),
// subject alternative names (DNS, email, IP, URI) and extra extensions,
// which override the built ones as in CreateCertificate. For anything else —
// a nil serial (CreateCertificate would draw one), Subject.ExtraNames,
// PolicyIdentifiers, name constraints, a CA template without SubjectKeyId
// (whose generated identifier depends on a GODEBUG setting), an RSA-PSS
// signature algorithm — and for any template CreateCertificate might
// refuse, it returns an error, and the caller uses CreateCertificate
// instead. Its tests compare it with CreateCertificate's RawTBSCertificate
// over table-driven and randomised templates, and fuzz it.
//
// The first call also checks TBS against CreateCertificate once on a probe
// template that uses every supported field; if they differ (a GODEBUG
// setting changed CreateCertificate's encoding, say), every call returns
// [ErrUnsupported].
package x509enc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/certpipe/precert/internal/derw"
)

// ErrUnsupported is wrapped by the errors of [TBS] for templates that use a
// field or value it does not encode. Every error of TBS means the same to a
// caller: use x509.CreateCertificate.
var ErrUnsupported = errors.New("x509enc: unsupported template")

func unsupported(what string) error { return fmt.Errorf("%w: %s", ErrUnsupported, what) }

// TBS returns the DER TBSCertificate that x509.CreateCertificate(rand,
// tmpl, parent, pub, priv) puts in the RawTBSCertificate of the certificate
// it returns, for a signer priv whose key type matches
// tmpl.SignatureAlgorithm (which must be set: CreateCertificate would
// otherwise pick one from the signer's key, which TBS does not see). Of
// parent it reads RawSubject (or Subject) and SubjectKeyId, as
// CreateCertificate does.
//
// It returns an error — wrapping [ErrUnsupported] for unsupported fields —
// whenever it cannot promise those exact bytes, which includes every
// template CreateCertificate refuses with such a signer; the caller then
// falls back to CreateCertificate. It never panics on a template
// CreateCertificate accepts.
func TBS(tmpl, parent *x509.Certificate, pub any) ([]byte, error) {
	if err := selfCheck(); err != nil {
		return nil, err
	}
	return encodeTBS(tmpl, parent, pub)
}

// sizeHint is the initial buffer size: a typical subscriber TBS with a
// P-256 key is 600 to 900 bytes.
const sizeHint = 1024

func encodeTBS(tmpl, parent *x509.Certificate, pub any) ([]byte, error) {
	if tmpl == nil || parent == nil {
		return nil, unsupported("nil template or parent")
	}
	if err := checkSupported(tmpl); err != nil {
		return nil, err
	}
	if err := checkSupportedName(&parent.Subject, parent.RawSubject); err != nil {
		return nil, err
	}
	// The checks CreateCertificate makes before encoding.
	if tmpl.SerialNumber.Sign() < 0 {
		return nil, errors.New("x509enc: negative serial number")
	}
	if tmpl.BasicConstraintsValid && tmpl.MaxPathLen < -1 {
		return nil, errors.New("x509enc: MaxPathLen below -1")
	}
	if tmpl.BasicConstraintsValid && !tmpl.IsCA && tmpl.MaxPathLen != -1 && (tmpl.MaxPathLen != 0 || tmpl.MaxPathLenZero) {
		return nil, errors.New("x509enc: MaxPathLen on a non-CA template")
	}
	sigAlg, err := algorithmIdentifier(tmpl.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	d := &der{Writer: derw.Writer{B: make([]byte, 0, sizeHint)}}
	tbs := d.Open(derw.Sequence)
	v := d.Open(derw.ContextCons) // [0]
	d.Int64(2)                    // v3
	d.Close(v)
	d.BigInt(tmpl.SerialNumber)
	d.Raw(sigAlg)
	issuerAt := len(d.B)
	d.rawOrName(parent.RawSubject, &parent.Subject)
	issuerEnd := len(d.B)
	validity := d.Open(derw.Sequence)
	d.Time(tmpl.NotBefore)
	d.Time(tmpl.NotAfter)
	d.Close(validity)
	subjectAt := len(d.B)
	d.rawOrName(tmpl.RawSubject, &tmpl.Subject)
	issuer, subject := d.B[issuerAt:issuerEnd], d.B[subjectAt:len(d.B)]
	aki := tmpl.AuthorityKeyId
	if !bytes.Equal(issuer, subject) && len(parent.SubjectKeyId) > 0 {
		aki = parent.SubjectKeyId
	}
	subjectEmpty := bytes.Equal(subject, emptyName)
	d.publicKeyInfo(pub)
	d.extensions(tmpl, subjectEmpty, aki)
	d.Close(tbs)
	if d.Err != nil {
		return nil, d.Err
	}
	return d.B, nil
}

// checkSupported refuses templates that use a field TBS does not encode.
func checkSupported(t *x509.Certificate) error {
	switch {
	case t.SerialNumber == nil:
		return unsupported("nil SerialNumber")
	case t.SignatureAlgorithm == x509.UnknownSignatureAlgorithm:
		return unsupported("no SignatureAlgorithm")
	case len(t.PolicyIdentifiers) > 0:
		return unsupported("PolicyIdentifiers")
	case t.IsCA && len(t.SubjectKeyId) == 0:
		return unsupported("CA template without SubjectKeyId")
	case len(t.PermittedDNSDomains) > 0, len(t.ExcludedDNSDomains) > 0,
		len(t.PermittedIPRanges) > 0, len(t.ExcludedIPRanges) > 0,
		len(t.PermittedEmailAddresses) > 0, len(t.ExcludedEmailAddresses) > 0,
		len(t.PermittedURIDomains) > 0, len(t.ExcludedURIDomains) > 0:
		return unsupported("name constraints")
	}
	return checkSupportedName(&t.Subject, t.RawSubject)
}

func checkSupportedName(n *pkix.Name, raw []byte) error {
	if len(raw) == 0 && len(n.ExtraNames) > 0 {
		return unsupported("Subject.ExtraNames")
	}
	return nil
}

// Object identifiers, as x509 and pkix use them.
var (
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtAIA              = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidExtSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtPolicies         = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidExtCRLDP            = asn1.ObjectIdentifier{2, 5, 29, 31}

	oidAIAOCSP    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	oidAIAIssuers = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}

	oidPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// emptyName is the DER of an empty RDNSequence.
var emptyName = []byte{0x30, 0x00}

// extKeyUsageOIDs maps x509's ExtKeyUsage values to their OIDs.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageAny:                            {2, 5, 29, 37, 0},
	x509.ExtKeyUsageServerAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection:                {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageIPSECEndSystem:                 {1, 3, 6, 1, 5, 5, 7, 3, 5},
	x509.ExtKeyUsageIPSECTunnel:                    {1, 3, 6, 1, 5, 5, 7, 3, 6},
	x509.ExtKeyUsageIPSECUser:                      {1, 3, 6, 1, 5, 5, 7, 3, 7},
	x509.ExtKeyUsageTimeStamping:                   {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 9},
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     {1, 3, 6, 1, 4, 1, 311, 10, 3, 3},
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      {2, 16, 840, 1, 113730, 4, 1},
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: {1, 3, 6, 1, 4, 1, 311, 2, 1, 22},
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     {1, 3, 6, 1, 4, 1, 311, 61, 1, 1},
}

// algorithmIdentifier returns the DER AlgorithmIdentifier CreateCertificate
// writes for alg: no parameters for ECDSA and Ed25519, NULL for RSA
// PKCS #1 v1.5.
func algorithmIdentifier(alg x509.SignatureAlgorithm) ([]byte, error) {
	der, ok := derw.SignatureAlgorithmIdentifier(alg)
	if !ok {
		return nil, unsupported("signature algorithm " + alg.String())
	}
	return der, nil
}

// namedCurves maps the curves x509 supports to their OIDs.
var namedCurves = map[elliptic.Curve]asn1.ObjectIdentifier{
	elliptic.P224(): {1, 3, 132, 0, 33},
	elliptic.P256(): {1, 2, 840, 10045, 3, 1, 7},
	elliptic.P384(): {1, 3, 132, 0, 34},
	elliptic.P521(): {1, 3, 132, 0, 35},
}

// publicKeyInfo writes the SubjectPublicKeyInfo CreateCertificate writes
// for pub.
func (d *der) publicKeyInfo(pub any) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			d.Fail(unsupported("nil ECDSA key"))
			return
		}
		oid, ok := namedCurves[k.Curve]
		if !ok {
			d.Fail(unsupported("elliptic curve"))
			return
		}
		point, err := k.Bytes()
		if err != nil {
			d.Fail(fmt.Errorf("x509enc: ECDSA key: %w", err))
			return
		}
		spki := d.Open(derw.Sequence)
		alg := d.Open(derw.Sequence)
		d.ObjectIdentifier(oidPublicKeyECDSA)
		d.ObjectIdentifier(oid)
		d.Close(alg)
		d.BitStringBytes(point)
		d.Close(spki)
	case *rsa.PublicKey, ed25519.PublicKey:
		if k, ok := k.(*rsa.PublicKey); ok && (k == nil || k.N == nil) {
			d.Fail(unsupported("nil RSA key"))
			return
		}
		// x509's own encoder, which CreateCertificate uses too: these
		// keys are rare enough here.
		spki, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			d.Fail(err)
			return
		}
		d.Raw(spki)
	default:
		d.Fail(unsupported(fmt.Sprintf("public key type %T", pub)))
	}
}

// Name attribute OIDs, in the order pkix.Name.ToRDNSequence emits them.
var nameAttrs = []struct {
	oid asn1.ObjectIdentifier
	get func(*pkix.Name) []string
}{
	{asn1.ObjectIdentifier{2, 5, 4, 6}, func(n *pkix.Name) []string { return n.Country }},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, func(n *pkix.Name) []string { return n.Province }},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, func(n *pkix.Name) []string { return n.Locality }},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, func(n *pkix.Name) []string { return n.StreetAddress }},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, func(n *pkix.Name) []string { return n.PostalCode }},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, func(n *pkix.Name) []string { return n.Organization }},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, func(n *pkix.Name) []string { return n.OrganizationalUnit }},
	{asn1.ObjectIdentifier{2, 5, 4, 3}, func(n *pkix.Name) []string { return single(n.CommonName) }},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, func(n *pkix.Name) []string { return single(n.SerialNumber) }},
}

func single(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// rawOrName writes raw, a Name already encoded, or else encodes n, as
// CreateCertificate does with RawSubject and Subject.
func (d *der) rawOrName(raw []byte, n *pkix.Name) {
	if len(raw) > 0 {
		d.Raw(raw)
		return
	}
	d.name(n)
}

// name writes n as asn1.Marshal(n.ToRDNSequence()) does, for a name
// without ExtraNames: one RDN per attribute type, holding all its values,
// sorted by their encodings (a DER SET OF); each value a PrintableString if
// encoding/asn1 would choose one, else a UTF8String.
func (d *der) name(n *pkix.Name) {
	seq := d.Open(derw.Sequence)
	for _, a := range nameAttrs {
		values := a.get(n)
		switch len(values) {
		case 0:
		case 1:
			set := d.Open(derw.Set)
			d.atv(a.oid, values[0])
			d.Close(set)
		default:
			atvs := make([][]byte, len(values))
			for i, v := range values {
				var e der
				e.atv(a.oid, v)
				if e.Err != nil {
					d.Fail(e.Err)
					return
				}
				atvs[i] = e.B
			}
			slices.SortFunc(atvs, bytes.Compare)
			set := d.Open(derw.Set)
			for _, atv := range atvs {
				d.Raw(atv)
			}
			d.Close(set)
		}
	}
	d.Close(seq)
}

// atv writes an AttributeTypeAndValue with a string value.
func (d *der) atv(oid asn1.ObjectIdentifier, v string) {
	tag := byte(derw.PrintableString)
	for i := 0; i < len(v); i++ {
		if !printable(v[i]) {
			if !utf8.ValidString(v) {
				d.Fail(errors.New("x509enc: name attribute is not valid UTF-8"))
				return
			}
			tag = derw.UTF8String
			break
		}
	}
	s := d.Open(derw.Sequence)
	d.ObjectIdentifier(oid)
	str := d.Open(tag)
	d.B = append(d.B, v...)
	d.Close(str)
	d.Close(s)
}

// printable reports whether c is in the PrintableString set encoding/asn1
// uses when marshalling: no '*', no '&', nothing above 0x7f.
func printable(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		'\'' <= c && c <= ')' || '+' <= c && c <= '/' ||
		c == ' ' || c == ':' || c == '=' || c == '?'
}

// extensions writes the [3] extensions field in CreateCertificate's
// order (key usage, extended key usage, basic constraints, subject and
// authority key identifiers, AIA, SAN, policies, CRL distribution points,
// then the extra extensions), each built one left out when an extra
// extension has its OID. Nothing is written when there are no
// extensions.
func (d *der) extensions(t *x509.Certificate, subjectEmpty bool, aki []byte) {
	built := func(oid asn1.ObjectIdentifier) bool {
		for _, e := range t.ExtraExtensions {
			if e.Id.Equal(oid) {
				return false
			}
		}
		return true
	}
	wrapper := d.Open(derw.ContextCons | 3)
	seq := d.Open(derw.Sequence)
	start := len(d.B)
	if t.KeyUsage != 0 && built(oidExtKeyUsage) {
		s, o := d.openExtension(oidExtKeyUsage, true)
		d.keyUsage(t.KeyUsage)
		d.closeExtension(s, o)
	}
	if (len(t.ExtKeyUsage) > 0 || len(t.UnknownExtKeyUsage) > 0) && built(oidExtExtKeyUsage) {
		s, o := d.openExtension(oidExtExtKeyUsage, false)
		list := d.Open(derw.Sequence)
		for _, u := range t.ExtKeyUsage {
			oid, ok := extKeyUsageOIDs[u]
			if !ok {
				d.Fail(errors.New("x509enc: unknown extended key usage"))
				return
			}
			d.ObjectIdentifier(oid)
		}
		for _, oid := range t.UnknownExtKeyUsage {
			d.ObjectIdentifier(oid)
		}
		d.Close(list)
		d.closeExtension(s, o)
	}
	if t.BasicConstraintsValid && built(oidExtBasicConstraints) {
		s, o := d.openExtension(oidExtBasicConstraints, true)
		maxPathLen := t.MaxPathLen
		if maxPathLen == 0 && !t.MaxPathLenZero {
			maxPathLen = -1
		}
		bc := d.Open(derw.Sequence)
		if t.IsCA {
			d.BoolTrue()
		}
		if maxPathLen != -1 {
			d.Int64(int64(maxPathLen))
		}
		d.Close(bc)
		d.closeExtension(s, o)
	}
	if len(t.SubjectKeyId) > 0 && built(oidExtSubjectKeyID) {
		s, o := d.openExtension(oidExtSubjectKeyID, false)
		d.Primitive(derw.OctetString, t.SubjectKeyId)
		d.closeExtension(s, o)
	}
	if len(aki) > 0 && built(oidExtAuthorityKeyID) {
		s, o := d.openExtension(oidExtAuthorityKeyID, false)
		seq := d.Open(derw.Sequence)
		d.Primitive(derw.Context, aki) // keyIdentifier [0] IMPLICIT
		d.Close(seq)
		d.closeExtension(s, o)
	}
	if (len(t.OCSPServer) > 0 || len(t.IssuingCertificateURL) > 0) && built(oidExtAIA) {
		s, o := d.openExtension(oidExtAIA, false)
		list := d.Open(derw.Sequence)
		for _, group := range [...]struct {
			method asn1.ObjectIdentifier
			urls   []string
		}{{oidAIAOCSP, t.OCSPServer}, {oidAIAIssuers, t.IssuingCertificateURL}} {
			for _, u := range group.urls {
				ad := d.Open(derw.Sequence)
				d.ObjectIdentifier(group.method)
				d.generalName(6, u)
				d.Close(ad)
			}
		}
		d.Close(list)
		d.closeExtension(s, o)
	}
	if (len(t.DNSNames) > 0 || len(t.EmailAddresses) > 0 || len(t.IPAddresses) > 0 || len(t.URIs) > 0) && built(oidExtSAN) {
		// RFC 5280 §4.2.1.6: critical when the subject is empty.
		s, o := d.openExtension(oidExtSAN, subjectEmpty)
		d.sans(t.DNSNames, t.EmailAddresses, t.IPAddresses, t.URIs)
		d.closeExtension(s, o)
	}
	if len(t.Policies) > 0 && built(oidExtPolicies) {
		s, o := d.openExtension(oidExtPolicies, false)
		list := d.Open(derw.Sequence)
		for _, p := range t.Policies {
			oid, err := p.MarshalBinary()
			if err != nil || len(oid) == 0 {
				d.Fail(errors.New("x509enc: invalid policy object identifier"))
				return
			}
			info := d.Open(derw.Sequence)
			d.Primitive(derw.OID, oid)
			d.Close(info)
		}
		d.Close(list)
		d.closeExtension(s, o)
	}
	if len(t.CRLDistributionPoints) > 0 && built(oidExtCRLDP) {
		s, o := d.openExtension(oidExtCRLDP, false)
		list := d.Open(derw.Sequence)
		for _, u := range t.CRLDistributionPoints {
			// DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
			dp := d.Open(derw.Sequence)
			dpn := d.Open(derw.ContextCons)  // [0]
			full := d.Open(derw.ContextCons) // [0]
			d.generalName(6, u)
			d.Close(full)
			d.Close(dpn)
			d.Close(dp)
		}
		d.Close(list)
		d.closeExtension(s, o)
	}
	for _, e := range t.ExtraExtensions {
		s, o := d.openExtension(e.Id, e.Critical)
		d.Raw(e.Value)
		d.closeExtension(s, o)
	}
	if len(d.B) == start { // no extensions: no field
		d.B = d.B[:wrapper-2]
		return
	}
	d.Close(seq)
	d.Close(wrapper)
}

// openExtension starts an Extension and its extnValue; closeExtension
// ends them.
func (d *der) openExtension(oid asn1.ObjectIdentifier, critical bool) (seq, value int) {
	seq = d.Open(derw.Sequence)
	d.ObjectIdentifier(oid)
	if critical {
		d.BoolTrue()
	}
	return seq, d.Open(derw.OctetString)
}

func (d *der) closeExtension(seq, value int) {
	d.Close(value)
	d.Close(seq)
}

// keyUsage writes the key usage BIT STRING as x509 marshals it: bits 0 to
// 15 of ku, one octet or two, the unused bits those after the last one set.
func (d *der) keyUsage(ku x509.KeyUsage) {
	a := [2]byte{bits.Reverse8(byte(ku)), bits.Reverse8(byte(ku >> 8))}
	s := a[:1]
	if a[1] != 0 {
		s = a[:2]
	}
	unused := 0 // also when no bit is set: a bit length of 0
	if last := s[len(s)-1]; last != 0 {
		unused = bits.TrailingZeros8(last)
	}
	bs := d.Open(derw.BitString)
	d.B = append(d.B, byte(unused))
	d.Raw(s)
	d.Close(bs)
}

// generalName writes a primitive GeneralName of the given context tag.
func (d *der) generalName(tag byte, value string) {
	s := d.Open(derw.Context | tag)
	d.B = append(d.B, value...)
	d.Close(s)
}

// sans writes a GeneralNames as x509 marshals it: DNS names, then email
// addresses, then IP addresses (IPv4 in four octets), then URIs; DNS
// names, email addresses and URIs must be ASCII (IA5String).
func (d *der) sans(dns, emails []string, ips []net.IP, uris []*url.URL) {
	seq := d.Open(derw.Sequence)
	for _, name := range dns {
		if !ascii(name) {
			d.Fail(errors.New("x509enc: DNS name is not an IA5String"))
			return
		}
		d.generalName(2, name)
	}
	for _, email := range emails {
		if !ascii(email) {
			d.Fail(errors.New("x509enc: email address is not an IA5String"))
			return
		}
		d.generalName(1, email)
	}
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		d.Primitive(derw.Context|7, ip)
	}
	for _, u := range uris {
		if u == nil {
			d.Fail(errors.New("x509enc: nil URI"))
			return
		}
		s := u.String()
		if !ascii(s) {
			d.Fail(errors.New("x509enc: URI is not an IA5String"))
			return
		}
		d.generalName(6, s)
	}
	d.Close(seq)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
