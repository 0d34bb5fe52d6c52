package issuance

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certpipe/precert/internal/tbs"
	"github.com/certpipe/precert/internal/testpki"
)

// testPrecert issues a precertificate from the shared test CA.
func testPrecert(t *testing.T) *x509.Certificate {
	t.Helper()
	ca := testpki.Shared(t, testpki.ECDSAP256)
	key, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	tmpl := ca.LeafTemplate(90*24*time.Hour, "a.example.com", "b.example.com")
	tmpl.SerialNumber = big.NewInt(0x1234567)
	tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDPoison, Critical: true, Value: poisonValue}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func sctListValue(t *testing.T) []byte {
	t.Helper()
	// An OCTET STRING holding a TLS list with one opaque entry: enough
	// for TBS surgery, which never looks inside.
	var b cryptobyte.Builder
	b.AddASN1OctetString([]byte{0, 4, 0, 2, 0xaa, 0xbb})
	v, err := b.Bytes()
	require.NoError(t, err)
	return v
}

func mutate(t *testing.T, der []byte, fn func(*tbs.TBS)) []byte {
	t.Helper()
	x, err := tbs.Parse(der)
	require.NoError(t, err)
	fn(x)
	out, err := x.Marshal()
	require.NoError(t, err)
	return out
}

func element(t *testing.T, fn func(*cryptobyte.Builder)) []byte {
	t.Helper()
	var b cryptobyte.Builder
	fn(&b)
	v, err := b.Bytes()
	require.NoError(t, err)
	return v
}

func rawExt(t *testing.T, oid asn1.ObjectIdentifier, critical bool, value []byte) tbs.Extension {
	t.Helper()
	e, err := tbs.NewExtension(oid, critical, value)
	require.NoError(t, err)
	return e
}

func TestFinalTBSCorresponds(t *testing.T) {
	pre := testPrecert(t)
	fin, err := finalTBS(pre.RawTBSCertificate, sctListValue(t))
	require.NoError(t, err)
	require.NoError(t, Correspond(pre.RawTBSCertificate, fin))

	// Removing the SCT list from the final gives the precertificate's TBS
	// without the poison: what the log signed (RFC 6962 §3.2).
	f, err := tbs.Parse(fin)
	require.NoError(t, err)
	p, err := tbs.Parse(pre.RawTBSCertificate)
	require.NoError(t, err)
	require.Len(t, f.Exts, len(p.Exts))
	for i := range p.Exts {
		if p.Exts[i].Is(OIDPoison) {
			require.True(t, f.Exts[i].Is(OIDSCTList), "the SCT list takes the poison's place")
			continue
		}
		require.Equal(t, p.Exts[i].Raw, f.Exts[i].Raw)
	}
	// Round trip of the parser.
	again, err := p.Marshal()
	require.NoError(t, err)
	require.Equal(t, pre.RawTBSCertificate, again)
}

func TestCorrespondRejects(t *testing.T) {
	pre := testPrecert(t)
	good, err := finalTBS(pre.RawTBSCertificate, sctListValue(t))
	require.NoError(t, err)
	other := testpki.Shared(t, testpki.RSA2048)
	otherKey, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	otherSPKI, err := x509.MarshalPKIXPublicKey(otherKey.Public())
	require.NoError(t, err)
	extIndex := func(x *tbs.TBS, oid asn1.ObjectIdentifier) int {
		at := x.Find(oid)
		require.Len(t, at, 1, "extension %v", oid)
		return at[0]
	}
	oidSAN := asn1.ObjectIdentifier{2, 5, 29, 17}
	oidKU := asn1.ObjectIdentifier{2, 5, 29, 15}
	oidEKU := asn1.ObjectIdentifier{2, 5, 29, 37}
	oidAKI := asn1.ObjectIdentifier{2, 5, 29, 35}
	oidPolicies := asn1.ObjectIdentifier{2, 5, 29, 32}

	for _, tc := range []struct {
		name  string
		field string
		fin   func(*tbs.TBS)
		pre   func(*tbs.TBS) // mutates the precertificate instead, when set
	}{
		{"version", "version", func(x *tbs.TBS) {
			x.Version = element(t, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(1) })
			})
		}, nil},
		{"serial", "serialNumber", func(x *tbs.TBS) {
			x.Serial = element(t, func(b *cryptobyte.Builder) { b.AddASN1BigInt(big.NewInt(0x1234568)) })
		}, nil},
		{"signature algorithm", "signature algorithm", func(x *tbs.TBS) {
			x.SigAlg = element(t, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}) // ecdsa-with-SHA384
				})
			})
		}, nil},
		{"issuer", "issuer", func(x *tbs.TBS) { x.Issuer = other.Intermediate.RawSubject }, nil},
		{"validity", "validity", func(x *tbs.TBS) {
			x.Validity = element(t, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1UTCTime(pre.NotBefore.Add(time.Second))
					b.AddASN1UTCTime(pre.NotAfter)
				})
			})
		}, nil},
		{"subject", "subject", func(x *tbs.TBS) { x.Subject = other.Intermediate.RawSubject }, nil},
		{"public key", "subjectPublicKeyInfo", func(x *tbs.TBS) { x.SPKI = otherSPKI }, nil},
		{"issuerUniqueID", "issuerUniqueID", func(x *tbs.TBS) { x.IssuerUID = []byte{0x81, 0x02, 0x00, 0x01} }, nil},
		{"subjectUniqueID", "subjectUniqueID", func(x *tbs.TBS) { x.SubjectUID = []byte{0x82, 0x02, 0x00, 0x01} }, nil},
		{"SAN changed", "extension 2.5.29.17", func(x *tbs.TBS) {
			i := extIndex(x, oidSAN)
			v := append([]byte(nil), x.Exts[i].Value...)
			v[len(v)-1] ^= 1
			x.Exts[i] = rawExt(t, oidSAN, x.Exts[i].Critical, v)
		}, nil},
		{"key usage criticality", "extension 2.5.29.15", func(x *tbs.TBS) {
			i := extIndex(x, oidKU)
			x.Exts[i] = rawExt(t, oidKU, !x.Exts[i].Critical, x.Exts[i].Value)
		}, nil},
		{"EKU removed", "extension", func(x *tbs.TBS) {
			i := extIndex(x, oidEKU)
			x.Exts = append(x.Exts[:i], x.Exts[i+1:]...)
		}, nil},
		{"policies changed", "extension 2.5.29.32", func(x *tbs.TBS) {
			i := extIndex(x, oidPolicies)
			x.Exts[i] = rawExt(t, oidPolicies, false, element(t, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{2, 23, 140, 1, 2, 2})
					})
				})
			}))
		}, nil},
		{"AKI changed", "extension 2.5.29.35", func(x *tbs.TBS) {
			i := extIndex(x, oidAKI)
			v := append([]byte(nil), x.Exts[i].Value...)
			v[len(v)-1] ^= 0xff
			x.Exts[i] = rawExt(t, oidAKI, false, v)
		}, nil},
		{"extension added", "extension", func(x *tbs.TBS) {
			x.Exts = append(x.Exts, rawExt(t, asn1.ObjectIdentifier{1, 2, 3, 4}, false, []byte{5, 0}))
		}, nil},
		{"extensions reordered", "extension", func(x *tbs.TBS) {
			x.Exts[0], x.Exts[1] = x.Exts[1], x.Exts[0]
		}, nil},
		{"extension just before the SCT list changed", "extension", func(x *tbs.TBS) {
			i := extIndex(x, OIDSCTList) - 1
			v := append([]byte(nil), x.Exts[i].Value...)
			v[len(v)-1] ^= 1
			x.Exts[i] = rawExt(t, x.Exts[i].ID(), x.Exts[i].Critical, v)
		}, nil},
		{"SCT list under a child OID", "extension " + OIDSCTList.String(), func(x *tbs.TBS) {
			i := extIndex(x, OIDSCTList)
			x.Exts[i] = rawExt(t, append(slices.Clone(OIDSCTList), 1), false, x.Exts[i].Value)
		}, nil},
		{"poison left in final", "extension " + OIDPoison.String(), func(x *tbs.TBS) {
			x.Exts = append(x.Exts, rawExt(t, OIDPoison, true, poisonValue))
		}, nil},
		{"no SCT list", "extension " + OIDSCTList.String(), func(x *tbs.TBS) {
			i := extIndex(x, OIDSCTList)
			x.Exts = append(x.Exts[:i], x.Exts[i+1:]...)
		}, nil},
		{"two SCT lists", "extension " + OIDSCTList.String(), func(x *tbs.TBS) {
			x.Exts = append(x.Exts, x.Exts[extIndex(x, OIDSCTList)])
		}, nil},
		{"critical SCT list", "extension " + OIDSCTList.String(), func(x *tbs.TBS) {
			i := extIndex(x, OIDSCTList)
			x.Exts[i] = rawExt(t, OIDSCTList, true, x.Exts[i].Value)
		}, nil},
		{"precert without poison", "extension " + OIDPoison.String(), nil, func(x *tbs.TBS) {
			i := extIndex(x, OIDPoison)
			x.Exts = append(x.Exts[:i], x.Exts[i+1:]...)
		}},
		{"non-critical poison", "extension " + OIDPoison.String(), nil, func(x *tbs.TBS) {
			i := extIndex(x, OIDPoison)
			x.Exts[i] = rawExt(t, OIDPoison, false, poisonValue)
		}},
		{"poison not NULL", "extension " + OIDPoison.String(), nil, func(x *tbs.TBS) {
			i := extIndex(x, OIDPoison)
			x.Exts[i] = rawExt(t, OIDPoison, true, []byte{0x04, 0x00})
		}},
		{"precert with SCT list", "extension " + OIDSCTList.String(), nil, func(x *tbs.TBS) {
			x.Exts = append(x.Exts, rawExt(t, OIDSCTList, false, sctListValue(t)))
		}},
		{"garbage final", "final certificate", func(x *tbs.TBS) { x.Serial = []byte{0xff} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			preDER, finDER := pre.RawTBSCertificate, good
			if tc.pre != nil {
				preDER = mutate(t, preDER, tc.pre)
			}
			if tc.fin != nil {
				finDER = mutate(t, finDER, tc.fin)
			}
			err := Correspond(preDER, finDER)
			var me *MismatchError
			require.ErrorAs(t, err, &me, "%v", err)
			require.Contains(t, me.Field, tc.field)
		})
	}
}

// TestCorrespondPoisonInTheMiddle: with the poison between other
// extensions, the final certificate carries the SCT list in its place,
// and a change to either neighbour is a mismatch.
func TestCorrespondPoisonInTheMiddle(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	key, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	tmpl := ca.LeafTemplate(90*24*time.Hour, "a.example.com")
	tmpl.SerialNumber = big.NewInt(0x7654321)
	after := asn1.ObjectIdentifier{1, 2, 3}
	tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDPoison, Critical: true, Value: poisonValue}, {Id: after, Value: []byte{5, 0}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
	require.NoError(t, err)
	pre, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	fin, err := finalTBS(pre.RawTBSCertificate, sctListValue(t))
	require.NoError(t, err)
	require.NoError(t, Correspond(pre.RawTBSCertificate, fin))

	parsed, err := tbs.Parse(fin)
	require.NoError(t, err)
	at := parsed.Find(OIDSCTList)
	require.Len(t, at, 1)
	require.Less(t, at[0], len(parsed.Exts)-1, "the SCT list is where the poison was, not last")
	for _, i := range []int{at[0] - 1, at[0] + 1} {
		changed := mutate(t, fin, func(x *tbs.TBS) {
			v := append([]byte(nil), x.Exts[i].Value...)
			v[len(v)-1] ^= 1
			x.Exts[i] = rawExt(t, x.Exts[i].ID(), x.Exts[i].Critical, v)
		})
		var me *MismatchError
		require.ErrorAs(t, Correspond(pre.RawTBSCertificate, changed), &me, "extension %d changed", i)
	}
}

func FuzzCorrespond(f *testing.F) {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := ca.LeafTemplate(90*24*time.Hour, "fuzz.example.com")
	tmpl.SerialNumber = big.NewInt(99)
	tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDPoison, Critical: true, Value: poisonValue}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
	if err != nil {
		f.Fatal(err)
	}
	pre, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	fin, err := finalTBS(pre.RawTBSCertificate, []byte{4, 2, 0, 0})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fin)
	f.Add(pre.RawTBSCertificate)
	f.Fuzz(func(t *testing.T, finDER []byte) {
		if err := Correspond(pre.RawTBSCertificate, finDER); err == nil {
			// Whatever was accepted must be exactly the precertificate
			// with the poison replaced by some SCT list.
			x, err := tbs.Parse(finDER)
			if err != nil {
				t.Fatal("accepted an unparseable TBS")
			}
			i := x.Find(OIDSCTList)
			again, err := finalTBS(pre.RawTBSCertificate, x.Exts[i[0]].Value)
			if err != nil {
				t.Fatal(err)
			}
			if y, _ := tbs.Parse(again); len(y.Exts) != len(x.Exts) {
				t.Fatal("accepted a different extension set")
			}
		}
		// finalTBS never panics on arbitrary input either.
		finalTBS(finDER, []byte{4, 0})
	})
}

// finalTBS is finalFrom on an unparsed precertificate TBS.
func finalTBS(precertTBS, sctListValue []byte) ([]byte, error) {
	t, err := tbs.Parse(precertTBS)
	if err != nil {
		return nil, err
	}
	return finalFrom(t, sctListValue)
}
