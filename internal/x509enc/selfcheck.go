package x509enc

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/certpipe/precert/internal/tbs"
)

// selfCheck compares, once per process, TBS with x509.CreateCertificate on
// a probe template that uses every supported field. A difference means
// this process's crypto/x509 does not encode as TBS assumes (a GODEBUG
// setting such as x509usepolicies=0, or a newer Go): TBS then refuses
// every template, so its callers always use CreateCertificate.
var selfCheck = sync.OnceValue(func() error {
	tmpl, parent, pub, key, err := probe()
	if err == nil {
		err = compare(tmpl, parent, pub, key)
	}
	if err != nil {
		return fmt.Errorf("%w: self-check against crypto/x509 failed: %v", ErrUnsupported, err)
	}
	return nil
})

// compare checks that encodeTBS and CreateCertificate agree on tmpl.
func compare(tmpl, parent *x509.Certificate, pub any, key ed25519.PrivateKey) error {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return err
	}
	want, _, _, err := tbs.SplitCertificate(der)
	if err != nil {
		return err
	}
	got, err := encodeTBS(tmpl, parent, pub)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return fmt.Errorf("TBS differs:\n got %x\nwant %x", got, want)
	}
	return nil
}

// probe returns a template using every field TBS encodes, signed by an
// Ed25519 parent, with a P-256 subject key.
func probe() (tmpl, parent *x509.Certificate, pub any, key ed25519.PrivateKey, err error) {
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sub, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	policy, err := x509.ParseOID("2.23.140.1.2.1")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	uri, err := url.Parse("https://example.com/a?b=c")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	parent = &x509.Certificate{
		Subject:      pkix.Name{Country: []string{"XX"}, Organization: []string{"x509enc probe"}, CommonName: "probe CA"},
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl = &x509.Certificate{
		SerialNumber:       new(big.Int).Lsh(big.NewInt(1), 127),
		SignatureAlgorithm: x509.PureEd25519,
		Subject: pkix.Name{
			Country: []string{"XX", "YY"}, Province: []string{"p"}, Locality: []string{"l"},
			StreetAddress: []string{"s"}, PostalCode: []string{"1"}, Organization: []string{"o&o"},
			OrganizationalUnit: []string{"ou", "é"}, CommonName: "*.example.com", SerialNumber: "42",
		},
		NotBefore:             now,
		NotAfter:              time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageDecipherOnly,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{{1, 2, 3}},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		SubjectKeyId:          []byte{5, 6, 7},
		OCSPServer:            []string{"http://ocsp.example.com"},
		IssuingCertificateURL: []string{"http://ca.example.com/ca.der"},
		DNSNames:              []string{"example.com", "*.example.com"},
		EmailAddresses:        []string{"a@example.com"},
		IPAddresses:           []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		URIs:                  []*url.URL{uri},
		Policies:              []x509.OID{policy},
		CRLDistributionPoints: []string{"http://crl.example.com/1.crl"},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, Critical: true, Value: []byte{5, 0}},
		},
	}
	return tmpl, parent, &sub.PublicKey, key, nil
}
