package x509enc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/tbs"
)

// signer is an issuer the tests sign with: its certificate, key, and the
// signature algorithms CreateCertificate accepts for that key.
type signer struct {
	name string
	cert *x509.Certificate
	key  crypto.Signer
	algs []x509.SignatureAlgorithm
}

type keys struct {
	signers []*signer
	pubs    []crypto.PublicKey
}

var fixtures = sync.OnceValues(func() (*keys, error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ecdsaAlgs := []x509.SignatureAlgorithm{x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512}
	var signers []*signer
	for _, s := range []struct {
		name string
		key  crypto.Signer
		algs []x509.SignatureAlgorithm
	}{
		{"RSA-2048", rsaKey, []x509.SignatureAlgorithm{x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA}},
		{"P-256", p256, ecdsaAlgs},
		{"P-384", p384, ecdsaAlgs},
		{"Ed25519", ed, []x509.SignatureAlgorithm{x509.PureEd25519}},
	} {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{Country: []string{"XX"}, Organization: []string{"x509enc test"}, CommonName: "issuer " + s.name},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
			SubjectKeyId:          []byte(s.name),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.key.Public(), s.key)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		signers = append(signers, &signer{s.name, cert, s.key, s.algs})
	}
	pubs := []crypto.PublicKey{&rsaKey.PublicKey, &p256.PublicKey, &p384.PublicKey, &p521.PublicKey, ed.Public()}
	return &keys{signers, pubs}, nil
})

func mustFixtures(t testing.TB) ([]*signer, []crypto.PublicKey) {
	t.Helper()
	k, err := fixtures()
	require.NoError(t, err)
	return k.signers, k.pubs
}

// differential returns TBS's output for tmpl, or its error, after
// checking that when TBS succeeds, CreateCertificate succeeds too and its
// RawTBSCertificate is the same bytes. It fails t otherwise.
func differential(t testing.TB, tmpl, parent *x509.Certificate, pub any, key crypto.Signer) ([]byte, error) {
	t.Helper()
	got, err := encodeTBS(tmpl, parent, pub)
	der, cerr := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		t.Fatalf("TBS encoded a template CreateCertificate refuses (%v):\n%#v", cerr, tmpl)
	}
	cert, perr := x509.ParseCertificate(der)
	want := []byte(nil)
	if perr == nil {
		want = cert.RawTBSCertificate
	} else { // CreateCertificate writes what some templates make unparsable
		want, _, _, perr = tbs.SplitCertificate(der)
		require.NoError(t, perr)
	}
	if string(got) != string(want) {
		t.Fatalf("TBS differs from CreateCertificate's:\n got %x\nwant %x\ntemplate %#v", got, want, tmpl)
	}
	return got, nil
}

// subscriber is the shape of template the issuance pipeline builds.
func subscriber(alg x509.SignatureAlgorithm, pub any) *x509.Certificate {
	policy, _ := x509.ParseOID("2.23.140.1.2.1")
	now := time.Now().UTC().Truncate(time.Second)
	return &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}),
		SignatureAlgorithm:    alg,
		PublicKey:             pub,
		Subject:               pkix.Name{CommonName: "www.example.com"},
		DNSNames:              []string{"www.example.com", "example.com"},
		NotBefore:             now,
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies:              []x509.OID{policy},
		OCSPServer:            []string{"http://ocsp.example.com/"},
		IssuingCertificateURL: []string{"http://ca.example.com/ca.der"},
		CRLDistributionPoints: []string{"http://ca.example.com/ca.crl"},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, Critical: true, Value: []byte{5, 0}}},
	}
}

func TestSelfCheck(t *testing.T) {
	require.NoError(t, selfCheck())
	signers, _ := mustFixtures(t)
	s := signers[1]
	tmpl := subscriber(x509.ECDSAWithSHA256, s.key.Public())
	got, err := TBS(tmpl, s.cert, s.key.Public())
	require.NoError(t, err)
	want, err := differential(t, tmpl, s.cert, s.key.Public(), s.key)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// envSelfCheckChild marks the child process of
// TestSelfCheckRefusesOtherEncoding.
const envSelfCheckChild = "X509ENC_SELFCHECK_CHILD"

// TestSelfCheckRefusesOtherEncoding runs this test binary again under
// GODEBUG=x509usepolicies=0, with which CreateCertificate encodes the
// certificate policies from PolicyIdentifiers rather than Policies, so its
// bytes differ from TBS's for the probe. In that process the self-check
// must fail and TBS must refuse even a template it otherwise encodes, so
// that every caller falls back to CreateCertificate.
func TestSelfCheckRefusesOtherEncoding(t *testing.T) {
	const done = "self-check child: refused as it must"
	if os.Getenv(envSelfCheckChild) == "1" {
		err := selfCheck()
		require.ErrorIs(t, err, ErrUnsupported)
		require.ErrorContains(t, err, "self-check against crypto/x509 failed")
		signers, _ := mustFixtures(t)
		s := signers[1]
		_, err = TBS(subscriber(x509.ECDSAWithSHA256, s.key.Public()), s.cert, s.key.Public())
		require.ErrorIs(t, err, ErrUnsupported, "TBS must refuse every template after a failed self-check")
		fmt.Println(done)
		return
	}
	godebug := "x509usepolicies=0"
	if prev := os.Getenv("GODEBUG"); prev != "" {
		godebug = prev + "," + godebug // the last setting of a key wins
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSelfCheckRefusesOtherEncoding$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envSelfCheckChild+"=1", "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child process:\n%s", out)
	require.True(t, strings.Contains(string(out), done), "the child never reached its checks:\n%s", out)
}

// TestTable covers each field kind on its own and in the pipeline's
// shape, for every issuer and subject key type: each must be encoded (no
// fallback) and equal CreateCertificate's TBS.
func TestTable(t *testing.T) {
	signers, pubs := mustFixtures(t)
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	bigOID, err := x509.OIDFromInts([]uint64{1, 2, 1 << 40, 3})
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(*x509.Certificate)
	}{
		{"pipeline shape", func(*x509.Certificate) {}},
		{"no extensions", func(c *x509.Certificate) {
			*c = x509.Certificate{SerialNumber: c.SerialNumber, SignatureAlgorithm: c.SignatureAlgorithm, NotBefore: c.NotBefore, NotAfter: c.NotAfter}
		}},
		{"serial zero", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0) }},
		{"serial 127", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(127) }},
		{"serial 128", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(128) }},
		{"serial 20 octets high bit", func(c *x509.Certificate) {
			c.SerialNumber = new(big.Int).SetBytes([]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
		}},
		{"empty subject makes SAN critical", func(c *x509.Certificate) { c.Subject = pkix.Name{} }},
		{"full subject", func(c *x509.Certificate) {
			c.Subject = pkix.Name{
				Country: []string{"XX", "AA"}, Province: []string{"Province"}, Locality: []string{"Town", "City"},
				StreetAddress: []string{"1 Street"}, PostalCode: []string{"12345"}, Organization: []string{"Org & Co", "Org*"},
				OrganizationalUnit: []string{"Unit", "Ünit", "单位"}, CommonName: "*.example.com", SerialNumber: "SN-1",
			}
		}},
		{"multi-valued RDN sort by length", func(c *x509.Certificate) {
			c.Subject = pkix.Name{Organization: []string{"bbbbbbbbbbbbbbbb", "a", "b", "aa"}}
		}},
		{"long subject (multi-octet lengths)", func(c *x509.Certificate) {
			long := make([]byte, 300)
			for i := range long {
				long[i] = 'a' + byte(i%26)
			}
			c.Subject = pkix.Name{CommonName: string(long), Organization: []string{string(long[:130])}}
		}},
		{"raw subject", func(c *x509.Certificate) {
			c.RawSubject = []byte{0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, 'x'}
		}},
		{"UTCTime edges", func(c *x509.Certificate) {
			c.NotBefore = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
			c.NotAfter = time.Date(2049, 12, 31, 23, 59, 59, 999999999, time.UTC)
		}},
		{"GeneralizedTime edges", func(c *x509.Certificate) {
			c.NotBefore = time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC)
			c.NotAfter = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
		{"non-UTC zone crossing a year", func(c *x509.Certificate) {
			c.NotBefore = time.Date(2050, 1, 1, 1, 0, 0, 0, time.FixedZone("x", 2*3600))
			c.NotAfter = time.Date(9999, 12, 31, 18, 29, 59, 0, time.FixedZone("y", -5*3600-1800))
		}},
		{"every key usage", func(c *x509.Certificate) { c.KeyUsage = 1<<9 - 1 }},
		{"decipherOnly alone", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDecipherOnly }},
		{"key usage bit 7", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageEncipherOnly }},
		{"key usage above bit 15 only", func(c *x509.Certificate) { c.KeyUsage = 1 << 20 }},
		{"every extended key usage", func(c *x509.Certificate) {
			c.ExtKeyUsage = nil
			for u := x509.ExtKeyUsageAny; u <= x509.ExtKeyUsageMicrosoftKernelCodeSigning; u++ {
				c.ExtKeyUsage = append(c.ExtKeyUsage, u)
			}
			c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}, {2, 999, 1}}
		}},
		{"unknown EKU only", func(c *x509.Certificate) {
			c.ExtKeyUsage = nil
			c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 2, 3}}
		}},
		{"no basic constraints", func(c *x509.Certificate) { c.BasicConstraintsValid = false }},
		{"CA with path length", func(c *x509.Certificate) { c.IsCA, c.MaxPathLen, c.SubjectKeyId = true, 3, []byte{1} }},
		{"CA with path length zero", func(c *x509.Certificate) { c.IsCA, c.MaxPathLenZero, c.SubjectKeyId = true, true, []byte{1} }},
		{"CA path length -1", func(c *x509.Certificate) { c.IsCA, c.MaxPathLen, c.SubjectKeyId = true, -1, []byte{1} }},
		{"leaf MaxPathLen -1", func(c *x509.Certificate) { c.MaxPathLen = -1 }},
		{"subject key ID", func(c *x509.Certificate) {
			c.SubjectKeyId = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
		}},
		{"authority key ID from template (issuer has it)", func(c *x509.Certificate) { c.AuthorityKeyId = []byte{9, 9} }},
		{"many SANs", func(c *x509.Certificate) {
			c.DNSNames = []string{"a.example", "", "*.b.example"}
			c.EmailAddresses = []string{"x@example.com", ""}
			c.IPAddresses = []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("::ffff:198.51.100.1"), net.ParseIP("2001:db8::1"), nil, {1, 2, 3}}
			c.URIs = []*url.URL{mustURL("https://example.com/p?q=1#f"), mustURL("urn:x:y"), {}}
		}},
		{"IP only", func(c *x509.Certificate) { c.DNSNames, c.IPAddresses = nil, []net.IP{net.IPv4(10, 0, 0, 1)} }},
		{"policies", func(c *x509.Certificate) {
			a, _ := x509.ParseOID("1.2.3.4")
			c.Policies = []x509.OID{a, bigOID}
		}},
		{"many CRL DPs and AIA URLs", func(c *x509.Certificate) {
			c.CRLDistributionPoints = []string{"http://a/1.crl", "ldap://b/éé", ""}
			c.OCSPServer = []string{"http://o1", "http://o2"}
			c.IssuingCertificateURL = nil
		}},
		{"AIA issuers only", func(c *x509.Certificate) { c.OCSPServer, c.IssuingCertificateURL = nil, []string{"http://ca/x"} }},
		{"extra extensions override built ones", func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions,
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{3, 2, 7, 0x80}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0x30, 0}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 32}, Value: []byte{0x30, 0}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 31}},
				pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}, Value: make([]byte, 70000)},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: []byte{0x30, 0}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 14}, Value: []byte{4, 0}},
				pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 35}, Value: []byte{0x30, 0}},
			)
			c.SubjectKeyId = []byte{1}
		}},
		{"extra extensions only", func(c *x509.Certificate) {
			*c = x509.Certificate{SerialNumber: c.SerialNumber, SignatureAlgorithm: c.SignatureAlgorithm, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2}, Critical: true}, {Id: asn1.ObjectIdentifier{1, 2}}}}
		}},
	}
	for _, s := range signers {
		for _, alg := range s.algs {
			for _, pub := range pubs {
				for _, c := range cases {
					name := fmt.Sprintf("%s/%s/%T/%s", s.name, alg, pub, c.name)
					tmpl := subscriber(alg, pub)
					c.edit(tmpl)
					_, err := differential(t, tmpl, s.cert, pub, s.key)
					require.NoError(t, err, "%s: not encoded", name)
				}
			}
		}
	}
}

// TestParentWithoutRawSubject: a parent built by hand, not parsed, is
// encoded from its Subject, as CreateCertificate does.
func TestParentWithoutRawSubject(t *testing.T) {
	signers, _ := mustFixtures(t)
	s := signers[1]
	parent := *s.cert
	parent.RawSubject = nil
	parent.Subject = pkix.Name{CommonName: "hand-made", Organization: []string{"b", "a"}}
	for _, ski := range [][]byte{nil, {1, 2}} {
		parent.SubjectKeyId = ski
		tmpl := subscriber(x509.ECDSAWithSHA256, s.key.Public())
		tmpl.AuthorityKeyId = []byte{7}
		_, err := differential(t, tmpl, &parent, s.key.Public(), s.key)
		require.NoError(t, err)
		// Self-issued: subject equals issuer, the template's AKI is used.
		tmpl.Subject = parent.Subject
		_, err = differential(t, tmpl, &parent, s.key.Public(), s.key)
		require.NoError(t, err)
	}
}

// TestUnsupported: templates using what TBS does not encode fall back,
// and so do templates CreateCertificate refuses.
func TestUnsupported(t *testing.T) {
	signers, _ := mustFixtures(t)
	s := signers[1]
	pub := s.key.Public()
	_, ipNet, _ := net.ParseCIDR("10.0.0.0/8")
	cases := []struct {
		name        string
		edit        func(*x509.Certificate)
		unsupported bool // else: an encoding error CreateCertificate shares
	}{
		{"nil serial", func(c *x509.Certificate) { c.SerialNumber = nil }, true},
		{"no signature algorithm", func(c *x509.Certificate) { c.SignatureAlgorithm = 0 }, true},
		{"RSA-PSS", func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA256WithRSAPSS }, true},
		{"ExtraNames", func(c *x509.Certificate) {
			c.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "x"}}
		}, true},
		{"PolicyIdentifiers", func(c *x509.Certificate) { c.PolicyIdentifiers = []asn1.ObjectIdentifier{{1, 2, 3}} }, true},
		{"name constraints", func(c *x509.Certificate) { c.PermittedIPRanges = []*net.IPNet{ipNet} }, true},
		{"CA without SKI", func(c *x509.Certificate) { c.IsCA = true }, true},
		{"negative serial", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(-1) }, false},
		{"MaxPathLen -2", func(c *x509.Certificate) { c.MaxPathLen = -2 }, false},
		{"leaf MaxPathLen", func(c *x509.Certificate) { c.MaxPathLen = 1 }, false},
		{"leaf MaxPathLenZero", func(c *x509.Certificate) { c.MaxPathLenZero = true }, false},
		{"non-ASCII DNS name", func(c *x509.Certificate) { c.DNSNames = []string{"é.example"} }, false},
		{"non-ASCII email", func(c *x509.Certificate) { c.EmailAddresses = []string{"é@example"} }, false},
		{"nil URI", func(c *x509.Certificate) { c.URIs = []*url.URL{nil} }, false},
		{"invalid UTF-8 in subject", func(c *x509.Certificate) { c.Subject.CommonName = "a*\xff" }, false},
		{"unknown EKU", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{99} }, false},
		{"invalid unknown EKU", func(c *x509.Certificate) { c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 40}} }, false},
		{"zero policy", func(c *x509.Certificate) { c.Policies = []x509.OID{{}} }, false},
		{"year 10000", func(c *x509.Certificate) { c.NotAfter = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"invalid extension OID", func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{3, 1}}} }, false},
		{"unsupported key type", func(c *x509.Certificate) {}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl := subscriber(x509.ECDSAWithSHA256, pub)
			c.edit(tmpl)
			key := any(pub)
			if c.name == "unsupported key type" {
				key = "not a key"
			}
			_, err := TBS(tmpl, s.cert, key)
			require.Error(t, err)
			require.Equal(t, c.unsupported, errors.Is(err, ErrUnsupported), "%v", err)
			if c.name != "nil URI" && c.name != "unsupported key type" { // CreateCertificate panics on a nil URI
				_, cerr := x509.CreateCertificate(rand.Reader, tmpl, s.cert, pub, s.key)
				if !c.unsupported {
					require.Error(t, cerr, "CreateCertificate accepts what TBS refuses as invalid")
				}
			}
		})
	}
}

// TestRandomTemplates compares TBS with CreateCertificate over random
// templates for every issuer and subject key type: equal bytes, or a
// fallback. Most must be encoded, or the comparison proves little.
func TestRandomTemplates(t *testing.T) {
	signers, pubs := mustFixtures(t)
	n := 1500
	if testing.Short() {
		n = 300
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, seed>>1))
	encoded := 0
	for i := range n {
		s := signers[i%len(signers)]
		pub := pubs[r.IntN(len(pubs))]
		tmpl := randomTemplate(randSource{r}, s.algs, pub)
		if _, err := differential(t, tmpl, s.cert, pub, s.key); err == nil {
			encoded++
		}
	}
	t.Logf("%d of %d random templates encoded, the rest fell back", encoded, n)
	require.Greater(t, encoded, n/2)
}

// FuzzTBS builds a template from the fuzzer's bytes and checks that TBS
// either encodes exactly CreateCertificate's TBS or falls back, without
// panicking.
func FuzzTBS(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x01\x02\x03\x04\x05\x06\x07\x08", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
		f.Add([]byte(seed))
	}
	signers, pubs := mustFixtures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{data: data}
		s := signers[src.IntN(len(signers))]
		pub := pubs[src.IntN(len(pubs))]
		tmpl := randomTemplate(src, s.algs, pub)
		_, _ = differential(t, tmpl, s.cert, pub, s.key)
	})
}

// source is the randomness randomTemplate draws from.
type source interface {
	IntN(n int) int
}

type randSource struct{ r *mrand.Rand }

func (s randSource) IntN(n int) int { return s.r.IntN(n) }

// byteSource draws from fuzzer bytes, then zeros.
type byteSource struct {
	data []byte
	off  int
}

func (s *byteSource) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	var v uint32
	for k := 0; k < 4; k++ {
		var c byte
		if s.off < len(s.data) {
			c = s.data[s.off]
			s.off++
		}
		v = v<<8 | uint32(c)
		if n <= 1<<(8*(k+1)) {
			break
		}
	}
	return int(v % uint32(n))
}

// gen draws template fields from a source. A wild generator also picks
// values that CreateCertificate refuses or TBS does not support; a tame
// one only valid, supported values (edge cases included).
type gen struct {
	src  source
	wild bool
}

func (g gen) n(k int) int { return g.src.IntN(k) }

// odd is true one time in k, and never for a tame generator.
func (g gen) odd(k int) bool { return g.wild && g.n(k) == 0 }

var (
	tameStrings = []string{
		"", "a", "example.com", "*.example.com", "Org & Co", "tab\there", "a\x00b", "x@example.com",
		"http://ocsp.example.com/", "PrintableString 'quoted' (x)+,-./:=?", string(make([]byte, 130)), "ldap://host/cn=x,o=y",
	}
	utf8Strings = []string{"é", "单位", "Ünit ok"}
	badStrings  = []string{"\xff\xfe", "a*\xc3"}
)

// str returns a string for a field that takes any valid UTF-8 (names),
// or only ASCII when ascii is set (SANs).
func (g gen) str(ascii bool) string {
	switch {
	case g.odd(8):
		return badStrings[g.n(len(badStrings))]
	case !ascii && g.n(4) == 0, g.odd(8):
		return utf8Strings[g.n(len(utf8Strings))]
	}
	return tameStrings[g.n(len(tameStrings))]
}

func (g gen) strs(max int, ascii bool) []string {
	n := g.n(max + 1)
	if n == 0 {
		if g.n(2) == 0 {
			return nil
		}
		return []string{}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = g.str(ascii)
	}
	return out
}

// urls returns strings for AIA and CRL DP fields, which x509 writes
// whatever their bytes.
func (g gen) urls(max int) []string {
	out := g.strs(max, false)
	for i := range out {
		if g.n(6) == 0 {
			out[i] = badStrings[g.n(len(badStrings))]
		}
	}
	return out
}

func (g gen) bytes(max int) []byte {
	n := g.n(max + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.n(256))
	}
	return b
}

var (
	goodOIDs = []asn1.ObjectIdentifier{
		{2, 5, 29, 15}, {2, 5, 29, 37}, {2, 5, 29, 19}, {2, 5, 29, 14}, {2, 5, 29, 35}, {1, 3, 6, 1, 5, 5, 7, 1, 1},
		{2, 5, 29, 17}, {2, 5, 29, 32}, {2, 5, 29, 31}, {1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, {1, 2, 3},
		{2, 999, 1 << 30}, {1, 39}, {0, 0},
	}
	badOIDs = []asn1.ObjectIdentifier{{1, 40}, {1}, {3, 1}, {1, 2, -1}}
)

func (g gen) oid() asn1.ObjectIdentifier {
	if g.odd(10) {
		return badOIDs[g.n(len(badOIDs))]
	}
	return goodOIDs[g.n(len(goodOIDs))]
}

var (
	goodTimes = []time.Time{
		time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2049, 12, 31, 23, 59, 59, 999, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 28, 12, 30, 45, 123456789, time.UTC),
		time.Date(2050, 1, 1, 0, 30, 0, 0, time.FixedZone("e", 3600)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		{},
	}
	badTimes = []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("w", -3600)),
	}
)

func (g gen) time() time.Time {
	if g.odd(10) {
		return badTimes[g.n(len(badTimes))]
	}
	return goodTimes[g.n(len(goodTimes))]
}

// randomTemplate builds a template from src that may use any field
// CreateCertificate reads, supported by TBS or not.
func randomTemplate(src source, algs []x509.SignatureAlgorithm, pub any) *x509.Certificate {
	g := gen{src: src}
	g.wild = g.n(2) == 0
	c := &x509.Certificate{SignatureAlgorithm: algs[g.n(len(algs))], PublicKey: pub}
	switch {
	case g.odd(10):
		c.SerialNumber = nil
	case g.odd(10):
		c.SerialNumber = big.NewInt(-1 - int64(g.n(300)))
	case g.n(4) == 0:
		c.SerialNumber = big.NewInt(int64(g.n(300)))
	default:
		c.SerialNumber = new(big.Int).SetBytes(g.bytes(21))
	}
	c.Subject = pkix.Name{
		Country: g.strs(2, false), Province: g.strs(1, false), Locality: g.strs(1, false), StreetAddress: g.strs(1, false),
		PostalCode: g.strs(1, false), Organization: g.strs(3, false), OrganizationalUnit: g.strs(2, false),
	}
	if g.n(2) == 0 {
		c.Subject.CommonName = g.str(false)
	}
	if g.n(4) == 0 {
		c.Subject.SerialNumber = g.str(false)
	}
	switch {
	case g.odd(10):
		c.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: g.oid(), Value: g.str(false)}}
	case g.n(12) == 0:
		c.RawSubject = g.bytes(20)
	}
	c.NotBefore, c.NotAfter = g.time(), g.time()
	if g.n(2) == 0 {
		c.KeyUsage = x509.KeyUsage(g.n(1 << 9))
	} else if g.n(4) == 0 {
		c.KeyUsage = x509.KeyUsage(g.n(1<<17) - 1000)
	}
	for range g.n(4) {
		u := x509.ExtKeyUsage(g.n(14))
		if g.odd(10) {
			u = 14 + x509.ExtKeyUsage(g.n(100))
		}
		c.ExtKeyUsage = append(c.ExtKeyUsage, u)
	}
	for range g.n(3) {
		c.UnknownExtKeyUsage = append(c.UnknownExtKeyUsage, g.oid())
	}
	c.BasicConstraintsValid = g.n(3) > 0
	c.IsCA = g.n(4) == 0
	if c.IsCA || g.n(2) == 0 {
		c.SubjectKeyId = g.bytes(21)
	}
	if c.IsCA && len(c.SubjectKeyId) == 0 && !g.wild {
		c.SubjectKeyId = []byte{1}
	}
	switch {
	case c.IsCA || g.odd(4):
		c.MaxPathLen = g.n(5) - 2
		c.MaxPathLenZero = g.n(4) == 0
	case g.n(2) == 0:
		c.MaxPathLen = -1
	}
	if !g.wild && c.MaxPathLen < -1 {
		c.MaxPathLen = -1
	}
	c.AuthorityKeyId = g.bytes(3)
	c.OCSPServer = g.urls(2)
	c.IssuingCertificateURL = g.urls(2)
	c.CRLDistributionPoints = g.urls(2)
	c.DNSNames = g.strs(3, true)
	c.EmailAddresses = g.strs(1, true)
	for range g.n(3) {
		ip := []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1"), net.ParseIP("::ffff:10.0.0.1"), nil, {1, 2, 3, 4, 5}}
		c.IPAddresses = append(c.IPAddresses, ip[g.n(len(ip))])
	}
	for range g.n(3) {
		u := []*url.URL{{Scheme: "https", Host: "example.com", Path: "/a b"}, {Scheme: "urn", Opaque: "x:y"}, {}, {Scheme: "http", Host: "é.example"}}
		c.URIs = append(c.URIs, u[g.n(len(u))])
	}
	for range g.n(3) {
		var p x509.OID
		if !g.odd(6) {
			p, _ = x509.OIDFromInts([]uint64{uint64(g.n(3)), uint64(g.n(40)), uint64(g.n(1 << 20)), 1 << 50})
		}
		c.Policies = append(c.Policies, p)
	}
	if g.odd(10) {
		c.PolicyIdentifiers = []asn1.ObjectIdentifier{{1, 2, 3}}
	}
	if g.odd(10) {
		c.PermittedDNSDomains = []string{"example.com"}
	}
	for range g.n(4) {
		c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: g.oid(), Critical: g.n(2) == 0, Value: g.bytes(5)})
	}
	return c
}
