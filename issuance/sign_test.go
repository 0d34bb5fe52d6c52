package issuance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/tbs"
	"github.com/certpipe/precert/internal/testpki"
)

// acceptAll is a linter that passes everything.
type acceptAll struct{}

func (acceptAll) Lint(*x509.Certificate) error { return nil }

// requests returns requests of every kind the pipeline takes, for a CA.
func requests(t *testing.T, ca *testpki.CA) map[string]*Request {
	t.Helper()
	tmpl := ca.LeafTemplate(90*24*time.Hour, "www.example.com", "example.com")
	base := func(pub crypto.PublicKey) *Request {
		return &Request{
			PublicKey: pub, Subject: tmpl.Subject, DNSNames: tmpl.DNSNames,
			NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, KeyUsage: tmpl.KeyUsage, ExtKeyUsage: tmpl.ExtKeyUsage,
			Policies: tmpl.Policies, OCSPServer: tmpl.OCSPServer, IssuingCertificateURL: tmpl.IssuingCertificateURL,
			CRLDistributionPoints: tmpl.CRLDistributionPoints,
		}
	}
	rsaKey, err := testpki.NewKey(testpki.RSA2048)
	require.NoError(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	u, err := url.Parse("spiffe://example.com/x")
	require.NoError(t, err)
	all := base(&p256.PublicKey)
	all.Subject = pkix.Name{Country: []string{"XX"}, Organization: []string{"Example & Co"}, OrganizationalUnit: []string{"Ünit"}, CommonName: "www.example.com"}
	all.IPAddresses = []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")}
	all.EmailAddresses = []string{"admin@example.com"}
	all.URIs = []*url.URL{u}
	all.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	all.NotBefore = tmpl.NotBefore.Add(123 * time.Millisecond).In(time.FixedZone("x", 3600))
	all.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}}
	extraNames := base(&p256.PublicKey)
	extraNames.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "VATXX-1"}}
	return map[string]*Request{
		"P-256":                    base(&p256.PublicKey),
		"P-384":                    base(&p384.PublicKey),
		"RSA-2048":                 base(rsaKey.Public()),
		"Ed25519":                  base(ed),
		"every field":              all,
		"ExtraNames (x509 path)":   extraNames,
		"no extensions but poison": {PublicKey: &p256.PublicKey, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter},
	}
}

// TestIntentWithoutLintKey checks that with linting off the intent — built
// without the lint key for the templates x509enc supports — is byte for
// byte the TBS the lint-key path builds with x509.CreateCertificate, with
// the same validity, for every kind of request and every issuer key type.
func TestIntentWithoutLintKey(t *testing.T) {
	// Every issuer key newIssuer takes, P-384 (SHA-384) and Ed25519
	// included, whose precertificates are signed by sign, not x509.
	for _, kt := range testpki.IssuerKeyTypes {
		ca := testpki.Shared(t, kt)
		off, err := newIssuer(ca.Intermediate, ca.IntermediateKey, nil, nil)
		require.NoError(t, err)
		on, err := newIssuer(ca.Intermediate, ca.IntermediateKey, acceptAll{}, nil)
		require.NoError(t, err)
		p := &Pipeline{cfg: Config{Issuer: ca.Intermediate}}
		for name, req := range requests(t, ca) {
			t.Run(kt.String()+"/"+name, func(t *testing.T) {
				tmpl, err := p.template(req)
				require.NoError(t, err)
				tmpl.SerialNumber = new(big.Int).SetBytes([]byte{0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
				fast, err := off.intent(tmpl)
				require.NoError(t, err)
				slow, err := on.intent(tmpl)
				require.NoError(t, err)
				require.NotEmpty(t, slow.Signature, "lint-signed")
				// Only a template x509enc does not support takes the
				// lint-key path with linting off.
				require.Equal(t, name == "ExtraNames (x509 path)", len(fast.Signature) > 0)
				require.Equal(t, slow.RawTBSCertificate, fast.RawTBSCertificate)
				require.True(t, slow.NotBefore.Equal(fast.NotBefore))
				require.True(t, slow.NotAfter.Equal(fast.NotAfter))
				require.True(t, tmpl.NotBefore.Equal(fast.NotBefore))

				// The intent is what the real key signs, byte for byte,
				// and the certificate returned is crypto/x509's parse of
				// the signed DER, whichever parse it was derived from.
				for _, c := range []struct {
					is *issuer
					in *x509.Certificate
				}{{off, fast}, {on, slow}} {
					tok, err := c.is.preparePrecert(c.in)
					require.NoError(t, err)
					precert, err := c.is.signPrecert(tok)
					require.NoError(t, err)
					require.Equal(t, fast.RawTBSCertificate, precert.RawTBSCertificate)
					require.NoError(t, precert.CheckSignatureFrom(ca.Intermediate))
					reparsed, err := x509.ParseCertificate(precert.Raw)
					require.NoError(t, err)
					require.Equal(t, reparsed, precert)

					ftok, err := c.is.prepareFinal(precert, oneSCTList(t))
					require.NoError(t, err)
					require.Equal(t, c.is == on, ftok.parsed != nil)
					final, err := c.is.signFinal(ftok)
					require.NoError(t, err)
					require.NoError(t, final.CheckSignatureFrom(ca.Intermediate))
					reparsed, err = x509.ParseCertificate(final.Raw)
					require.NoError(t, err)
					require.Equal(t, reparsed, final)
					require.NoError(t, Correspond(precert.RawTBSCertificate, final.RawTBSCertificate))
				}
			})
		}
	}
}

// TestIntentRefusesMalformed: with linting off too, a request whose
// certificate would not parse fails before anything is reserved.
func TestIntentRefusesMalformed(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	off, err := newIssuer(ca.Intermediate, ca.IntermediateKey, nil, nil)
	require.NoError(t, err)
	p := &Pipeline{cfg: Config{Issuer: ca.Intermediate}}
	for name, ext := range map[string][]pkix.Extension{
		"malformed SAN":       {{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0x30, 0x03, 0x82, 0x05}}},
		"duplicate extension": {{Id: asn1.ObjectIdentifier{1, 2, 3}}, {Id: asn1.ObjectIdentifier{1, 2, 3}}},
	} {
		t.Run(name, func(t *testing.T) {
			req := requests(t, ca)["P-256"]
			req.ExtraExtensions = ext
			tmpl, err := p.template(req)
			require.NoError(t, err)
			tmpl.SerialNumber = big.NewInt(1)
			_, err = off.intent(tmpl)
			require.ErrorContains(t, err, "building the precertificate")
		})
	}
	_, err = p.template(&Request{PublicKey: ca.IntermediateKey.Public(), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{nil}})
	require.ErrorContains(t, err, "nil URI")
}

// oneSCTList returns an SCT list extension value with one well-formed
// (unsigned) SCT.
func oneSCTList(t *testing.T) []byte {
	t.Helper()
	raw := make([]byte, 1+32+8+2+4)
	raw[len(raw)-4], raw[len(raw)-3] = 4, 3 // SHA-256, ECDSA, empty signature
	ext, err := ctsubmit.SCTListExtension([][]byte{raw})
	require.NoError(t, err)
	return ext.Value
}

// TestFinalMustCorrespond is invariant I4 where it is enforced: a final
// TBS that differs from its precertificate in anything but the poison and
// the SCT list is refused before the issuer key signs anything, for any
// linter setting.
func TestFinalMustCorrespond(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	for _, linter := range []Linter{nil, acceptAll{}} {
		key := &countingSigner{Signer: ca.IntermediateKey}
		is, err := newIssuer(ca.Intermediate, key, linter, nil)
		require.NoError(t, err)
		p := &Pipeline{cfg: Config{Issuer: ca.Intermediate}}
		req := requests(t, ca)["every field"]
		tmpl, err := p.template(req)
		require.NoError(t, err)
		tmpl.SerialNumber = big.NewInt(0x4d5e)
		in, err := is.intent(tmpl)
		require.NoError(t, err)
		tok, err := is.preparePrecert(in)
		require.NoError(t, err)
		precert, err := is.signPrecert(tok)
		require.NoError(t, err)
		signed := key.n

		for name, tamper := range map[string]func(*tbs.TBS){
			"serial": func(f *tbs.TBS) { f.Serial = []byte{0x02, 0x01, 0x07} },
			"another extension": func(f *tbs.TBS) {
				f.Exts = append(f.Exts, rawExt(t, asn1.ObjectIdentifier{1, 2, 3}, false, []byte{0x05, 0x00}))
			},
		} {
			t.Run(name, func(t *testing.T) {
				is.buildFinal = func(pre *tbs.TBS, scts []byte) ([]byte, error) {
					good, err := finalFrom(pre, scts)
					require.NoError(t, err)
					f, err := tbs.Parse(good)
					require.NoError(t, err)
					tamper(f)
					return f.Marshal()
				}
				_, err := is.prepareFinal(precert, sctListValue(t))
				var me *MismatchError
				require.ErrorAs(t, err, &me)
				require.Equal(t, signed, key.n, "nothing signed with the issuer key")
			})
		}
		is.buildFinal = finalFrom
		_, err = is.prepareFinal(precert, sctListValue(t))
		require.NoError(t, err, "the untampered final corresponds")
	}
}

// countingSigner counts signatures.
type countingSigner struct {
	crypto.Signer
	n int
}

func (c *countingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n++
	return c.Signer.Sign(rand, digest, opts)
}
