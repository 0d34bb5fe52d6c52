package tbs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/derw"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// certificates returns DER certificates with no, few and many extensions,
// one of them over 64 KiB.
func certificates(t testing.TB) [][]byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var out [][]byte
	for _, exts := range [][]pkix.Extension{
		nil,
		{{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}}},
		{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: make([]byte, 70000)}, {Id: asn1.ObjectIdentifier{1, 2, 4}, Value: make([]byte, 200)}},
	} {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "tbs test"},
			NotBefore: time.Unix(0, 0), NotAfter: time.Date(2050+len(exts), 1, 2, 3, 4, 5, 0, time.UTC), ExtraExtensions: exts,
		}
		if exts != nil {
			tmpl.DNSNames = []string{"example.com"}
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			tmpl.BasicConstraintsValid = true
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		require.NoError(t, err)
		out = append(out, der)
	}
	return out
}

// TestRoundTrip: Parse then Marshal gives the TBS back, byte for byte, and
// SplitCertificate and SignatureAlgorithm agree with crypto/x509 and Parse.
func TestRoundTrip(t *testing.T) {
	for _, der := range certificates(t) {
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		tbsDER, sigAlg, sig, err := SplitCertificate(der)
		require.NoError(t, err)
		require.Equal(t, cert.RawTBSCertificate, []byte(tbsDER))
		require.Equal(t, byte(0x30), sigAlg[0])
		require.Equal(t, byte(0x03), sig[0])
		x, err := Parse(tbsDER)
		require.NoError(t, err)
		require.Len(t, x.Exts, len(cert.Extensions))
		require.Equal(t, cap(x.Exts), len(x.Exts), "extensions allocated once")
		for i, e := range cert.Extensions {
			require.True(t, e.Id.Equal(x.Exts[i].ID()))
			require.True(t, x.Exts[i].Is(e.Id))
			require.False(t, x.Exts[i].Is(asn1.ObjectIdentifier{1, 2, 3, 4, 5}))
			require.Equal(t, e.Critical, x.Exts[i].Critical)
			require.Equal(t, e.Value, x.Exts[i].Value)
		}
		got, err := x.Marshal()
		require.NoError(t, err)
		require.Equal(t, cert.RawTBSCertificate, got)
		nb, na, err := x.Times()
		require.NoError(t, err)
		require.Equal(t, cert.NotBefore, nb)
		require.Equal(t, cert.NotAfter, na)
		alg, err := SignatureAlgorithm(tbsDER)
		require.NoError(t, err)
		require.Equal(t, x.SigAlg, alg)
		require.Equal(t, []byte(sigAlg), alg)

		var bits asn1.BitString
		sigStr := cryptobyte.String(sig)
		require.True(t, sigStr.ReadASN1BitString(&bits))
		joined, err := JoinCertificate(tbsDER, sigAlg, bits.Bytes)
		require.NoError(t, err)
		require.Equal(t, der, joined)
	}
	_, _, _, err := SplitCertificate([]byte{0x30, 0})
	require.Error(t, err)
	_, err = SignatureAlgorithm([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	require.Error(t, err)
}

// TestMarshalMatchesCryptobyte compares Marshal's hand-written headers
// with cryptobyte's for contents around every length-octet boundary.
func TestMarshalMatchesCryptobyte(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f - 40, 0x7f, 0x80, 0xff, 0x100, 0xffff - 30, 0xffff, 0x10000, 0xffffff - 20, 0xffffff, 0x1000000} {
		ext := []byte{0x30, 0x00}
		if n > 0 {
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, n)) })
			ext = b.BytesOrPanic()
		}
		x := &TBS{Serial: []byte{2, 1, 1}, SigAlg: []byte{0x30, 0}, Issuer: []byte{0x30, 0}, Validity: []byte{0x30, 0},
			Subject: []byte{0x30, 0}, SPKI: []byte{0x30, 0}, Exts: []Extension{{Raw: ext}}}
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, f := range [][]byte{x.Serial, x.SigAlg, x.Issuer, x.Validity, x.Subject, x.SPKI} {
				b.AddBytes(f)
			}
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(ext) })
			})
		})
		want := b.BytesOrPanic()
		got, err := x.Marshal()
		require.NoError(t, err)
		require.Equal(t, len(want), len(got), "content of %d", n)
		require.Equal(t, want, got, "content of %d", n)
	}
}

// TestJoinMatchesCryptobyte compares JoinCertificate with cryptobyte
// across the length-octet boundaries.
func TestJoinMatchesCryptobyte(t *testing.T) {
	tbsDER := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	alg := []byte{0x30, 0x00}
	for _, n := range []int{0, 1, 70, 0x7e, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0xfffe, 0x10000} {
		sig := make([]byte, n)
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(tbsDER)
			b.AddBytes(alg)
			b.AddASN1BitString(sig)
		})
		got, err := JoinCertificate(tbsDER, alg, sig)
		require.NoError(t, err)
		require.Equal(t, b.BytesOrPanic(), got, "signature of %d", n)
	}
}

// FuzzParse: whatever parses marshals back to itself, and the signature
// algorithm read alone is the one Parse finds. Nothing panics.
func FuzzParse(f *testing.F) {
	for _, der := range certificates(f)[:2] {
		tbsDER, _, _, err := SplitCertificate(der)
		require.NoError(f, err)
		f.Add([]byte(tbsDER))
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _, _, _ = SplitCertificate(der)
		x, err := Parse(der)
		alg, aerr := SignatureAlgorithm(der)
		if err != nil {
			return
		}
		require.NoError(t, aerr)
		require.Equal(t, x.SigAlg, alg)
		got, err := x.Marshal()
		require.NoError(t, err)
		require.Equal(t, der, got)
		// Where crypto/x509 reads the validity, Times reads the same.
		certDER, err := JoinCertificate(der, x.SigAlg, nil)
		require.NoError(t, err)
		if cert, err := x509.ParseCertificate(certDER); err == nil {
			nb, na, err := x.Times()
			require.NoError(t, err)
			require.Equal(t, cert.NotBefore, nb)
			require.Equal(t, cert.NotAfter, na)
		}
	})
}

// TestOIDsMatchCryptobyte compares validOID with cryptobyte's decoder on
// edge cases, and checks that Extension.Is and ID read back what
// derw.AppendOID (held to cryptobyte's encoder by derw's tests) writes.
func TestOIDsMatchCryptobyte(t *testing.T) {
	for _, contents := range [][]byte{
		nil, {0}, {0x80}, {0x80, 1}, {0x81}, {0x81, 0}, {1, 0x80, 1}, {0x87, 0xff, 0xff, 0xff, 0x7f}, {0x88, 0x80, 0x80, 0x80, 0},
		{0x8f, 0xff, 0xff, 0xff, 0x7f}, {0x81, 0x80, 0x80, 0x80, 0x80, 0}, {0x2a, 0x86, 0x48},
	} {
		compareOIDContents(t, contents)
	}
	for _, oid := range []asn1.ObjectIdentifier{
		{0, 0}, {0, 39}, {1, 39}, {2, 0}, {2, 47}, {2, 48}, {2, 1 << 30}, {1, 2, 840, 113549}, {2, 5, 29, 17}, {1, 2, 1<<31 - 1},
	} {
		raw, ok := derw.AppendOID(nil, oid)
		require.True(t, ok, "%v", oid)
		e := Extension{RawOID: raw}
		require.True(t, e.Is(oid))
		require.True(t, e.ID().Equal(oid))
	}
	for _, bad := range []asn1.ObjectIdentifier{nil, {1}, {3, 1}, {1, 40}, {-1, 2}, {1, 2, -3}} {
		require.False(t, Extension{RawOID: []byte{0x2a}}.Is(bad))
	}
}

func compareOIDContents(t testing.TB, contents []byte) {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(contents) })
	der := cryptobyte.String(b.BytesOrPanic())
	var oid asn1.ObjectIdentifier
	require.Equal(t, der.ReadASN1ObjectIdentifier(&oid), validOID(contents), "%x", contents)
}

// FuzzOID compares validOID with cryptobyte's decoder.
func FuzzOID(f *testing.F) {
	f.Add([]byte{0x2a, 0x86, 0x48})
	f.Add([]byte{0x88, 0x80, 0x80, 0x80, 0})
	f.Fuzz(func(t *testing.T, contents []byte) { compareOIDContents(t, contents) })
}
