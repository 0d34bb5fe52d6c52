// Package testpki builds throwaway CA hierarchies for tests, benchmarks and
// the demo: a root, an intermediate that issues subscriber certificates, and
// a delegated OCSP responder certificate issued by that intermediate.
//
// Nothing here is fit for a real CA: keys live in memory, validity periods are
// generous, and names are fixed. What it gets right is the shape: templates
// that pass zlint's CABF_BR, RFC5280, Mozilla, RFC6962 and Chrome sources, so
// that the tests of this project exercise certificates a real CA would issue.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certpipe/precert/internal/pemfile"
)

// KeyType selects the algorithm of every key in a hierarchy.
type KeyType int

const (
	// ECDSAP256 uses ECDSA on NIST P-256 with SHA-256 signatures.
	ECDSAP256 KeyType = iota
	// RSA2048 uses 2048-bit RSA keys with SHA-256 PKCS #1 v1.5 signatures.
	RSA2048
	// ECDSAP384 uses ECDSA on NIST P-384 with SHA-384 signatures. Not in
	// KeyTypes: for the tests of issuers of every kind the pipeline takes.
	ECDSAP384
	// Ed25519 uses Ed25519 keys. Not in KeyTypes, like ECDSAP384.
	Ed25519
)

// String returns "ECDSA-P256", "RSA-2048", "ECDSA-P384" or "Ed25519".
func (k KeyType) String() string {
	switch k {
	case ECDSAP256:
		return "ECDSA-P256"
	case RSA2048:
		return "RSA-2048"
	case ECDSAP384:
		return "ECDSA-P384"
	case Ed25519:
		return "Ed25519"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// KeyTypes lists the key types every part takes (issuers, OCSP signers,
// CT logs), for tables that cover them all.
var KeyTypes = []KeyType{ECDSAP256, RSA2048}

// IssuerKeyTypes lists every key type an issuer may have: KeyTypes, and
// P-384 and Ed25519, which the issuance pipeline signs with too.
var IssuerKeyTypes = []KeyType{ECDSAP256, RSA2048, ECDSAP384, Ed25519}

// NewKey returns a fresh private key of type k.
func NewKey(k KeyType) (crypto.Signer, error) {
	switch k {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	}
	return nil, fmt.Errorf("testpki: unknown key type %d", int(k))
}

// OIDDomainValidated is the CA/Browser Forum domain-validated policy
// (2.23.140.1.2.1).
var OIDDomainValidated = asn1.ObjectIdentifier{2, 23, 140, 1, 2, 1}

// OCSPURL is the responder URL placed in every leaf's Authority Information
// Access extension. Tests serve OCSP wherever they like; clients in tests are
// always given the URL explicitly.
const OCSPURL = "http://ocsp.precert.test/"

// CA is a throwaway hierarchy: Root signs Intermediate; Intermediate signs
// subscriber certificates and the delegated Responder certificate.
type CA struct {
	KeyType KeyType

	Root    *x509.Certificate
	RootKey crypto.Signer

	Intermediate    *x509.Certificate
	IntermediateKey crypto.Signer

	// Responder is a delegated OCSP responder certificate issued by
	// Intermediate, carrying id-kp-OCSPSigning and id-pkix-ocsp-nocheck.
	Responder    *x509.Certificate
	ResponderKey crypto.Signer
}

// New creates a fresh hierarchy with keys of type k. Its names carry a
// random tag, so that two hierarchies never share a subject: clients that
// pick issuers by name (NSS) would confuse them.
func New(k KeyType) (*CA, error) {
	return NewNamed(k, fmt.Sprintf(" %x", randomSerial().Uint64()&0xffffff))
}

// NewNamed is New with the given tag in every name: hierarchies made with
// the same tag and key type share their subjects but not their keys.
func NewNamed(k KeyType, tag string) (*CA, error) {
	ca := &CA{KeyType: k}
	var err error
	if ca.RootKey, err = NewKey(k); err != nil {
		return nil, err
	}
	if ca.IntermediateKey, err = NewKey(k); err != nil {
		return nil, err
	}
	if ca.ResponderKey, err = NewKey(k); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	rootTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Country: []string{"XX"}, Organization: []string{"precert test"}, CommonName: "precert test root " + k.String() + tag},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(ca.RootKey.Public()),
	}
	if ca.Root, err = create(rootTmpl, rootTmpl, ca.RootKey.Public(), ca.RootKey); err != nil {
		return nil, fmt.Errorf("testpki: creating root: %w", err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Country: []string{"XX"}, Organization: []string{"precert test"}, CommonName: "precert test issuing CA " + k.String() + tag},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(ca.IntermediateKey.Public()),
		IssuingCertificateURL: []string{"http://ca.precert.test/root.der"},
		CRLDistributionPoints: []string{"http://ca.precert.test/root.crl"},
		Policies:              []x509.OID{mustOID(OIDDomainValidated)},
	}
	if ca.Intermediate, err = create(interTmpl, ca.Root, ca.IntermediateKey.Public(), ca.RootKey); err != nil {
		return nil, fmt.Errorf("testpki: creating intermediate: %w", err)
	}
	if ca.Responder, err = ca.NewResponder(ca.ResponderKey, true); err != nil {
		return nil, err
	}
	return ca, nil
}

// MustNew is New for tests: it fails t on error.
func MustNew(t testing.TB, k KeyType) *CA {
	t.Helper()
	ca, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

var (
	sharedMu sync.Mutex
	shared   = map[KeyType]*CA{}
)

// Shared returns a hierarchy of type k created once per process. Tests that
// only read it share it to avoid generating RSA keys over and over; tests
// that need a hierarchy nobody else knows call New.
func Shared(t testing.TB, k KeyType) *CA {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if ca, ok := shared[k]; ok {
		return ca
	}
	ca := MustNew(t, k)
	shared[k] = ca
	return ca
}

// NewResponder issues a delegated OCSP responder certificate for key,
// signed by the intermediate. With ocspSigning false the certificate lacks
// id-kp-OCSPSigning, which relying parties must refuse (RFC 6960 §4.2.2.2).
func (ca *CA) NewResponder(key crypto.Signer, ocspSigning bool) (*x509.Certificate, error) {
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:    randomSerial(),
		Subject:         pkix.Name{Country: []string{"XX"}, Organization: []string{"precert test"}, CommonName: "precert test OCSP responder " + ca.KeyType.String()},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(365 * 24 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		SubjectKeyId:    keyID(key.Public()),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{0x05, 0x00}}},
	}
	if ocspSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	cert, err := create(tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating responder: %w", err)
	}
	return cert, nil
}

// NewPrecertSigner issues a precertificate signing certificate (RFC 6962
// §3.1) for a fresh key of the CA's type, signed by the intermediate, and
// returns it with its key. eku is the CT precertificate signing EKU,
// ctsubmit.OIDPrecertSigning, passed in because ctsubmit's own tests use
// this package.
func (ca *CA) NewPrecertSigner(eku asn1.ObjectIdentifier) (*x509.Certificate, crypto.Signer, error) {
	key, err := NewKey(ca.KeyType)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "precert signing"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{eku},
		BasicConstraintsValid: true,
		IsCA:                  true,
		AuthorityKeyId:        ca.Intermediate.SubjectKeyId,
	}
	cert, err := create(tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: creating precertificate signing certificate: %w", err)
	}
	return cert, key, nil
}

// LeafTemplate returns a subscriber TLS server certificate template for the
// given DNS names, valid from now-1h for lifetime, that passes zlint's
// CABF_BR, RFC5280, Mozilla and Chrome lints once issued by the
// intermediate. Its serial number is left nil for the caller to choose.
func (ca *CA) LeafTemplate(lifetime time.Duration, dnsNames ...string) *x509.Certificate {
	if len(dnsNames) == 0 {
		dnsNames = []string{"www.precert.test"}
	}
	notBefore := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	ku := x509.KeyUsageDigitalSignature
	if ca.KeyType == RSA2048 {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: dnsNames[0]},
		DNSNames:              dnsNames,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(lifetime - time.Second),
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		OCSPServer:            []string{OCSPURL},
		IssuingCertificateURL: []string{"http://ca.precert.test/issuer.der"},
		CRLDistributionPoints: []string{"http://ca.precert.test/issuer.crl"},
		Policies:              []x509.OID{mustOID(OIDDomainValidated)},
	}
}

// IssueLeaf issues a plain (non-precert) leaf for tmpl and pub, with a fresh
// random serial when tmpl.SerialNumber is nil.
func (ca *CA) IssueLeaf(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial()
	}
	return create(tmpl, ca.Intermediate, pub, ca.IntermediateKey)
}

// MustLeaf issues a leaf for a fresh key of the CA's type, valid for 90
// days, failing t on error. It returns the certificate and its key.
func (ca *CA) MustLeaf(t testing.TB, dnsNames ...string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := NewKey(ca.KeyType)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueLeaf(ca.LeafTemplate(90*24*time.Hour, dnsNames...), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// ChainDER returns the DER of the intermediate then the root: the issuer
// chain that follows a leaf or precertificate in a CT submission.
func (ca *CA) ChainDER() [][]byte {
	return [][]byte{ca.Intermediate.Raw, ca.Root.Raw}
}

// PEM encodes certificates as concatenated CERTIFICATE blocks.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as a PKCS #8 "PRIVATE KEY" block.
func KeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// randomSerial returns a positive 127-bit serial: 16 content octets at most,
// well within RFC 5280's 20.
func randomSerial() *big.Int {
	max := new(big.Int).Lsh(big.NewInt(1), 127)
	for {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		if n.Sign() > 0 {
			return n
		}
	}
}

// RandomSerial returns a fresh positive random serial number.
func RandomSerial() *big.Int { return randomSerial() }

// keyID is the RFC 5280 §4.2.1.2 method (1) key identifier: SHA-1 of the
// subjectPublicKey BIT STRING.
func keyID(pub crypto.PublicKey) []byte {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // only called with keys this package generated
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		panic(err)
	}
	sum := sha1.Sum(info.PublicKey.RightAlign())
	return sum[:]
}

func mustOID(o asn1.ObjectIdentifier) x509.OID {
	ints := make([]uint64, len(o))
	for i, v := range o {
		if v < 0 {
			panic(errors.New("testpki: negative OID arc"))
		}
		ints[i] = uint64(v)
	}
	oid, err := x509.OIDFromInts(ints)
	if err != nil {
		panic(err)
	}
	return oid
}

// Save writes the hierarchy to dir as PEM files (root.pem, root.key,
// intermediate.pem, intermediate.key, responder.pem, responder.key; keys
// PKCS #8, mode 0600), for another process to Load.
func (ca *CA) Save(dir string) error {
	for _, f := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{
		{"root", ca.Root, ca.RootKey},
		{"intermediate", ca.Intermediate, ca.IntermediateKey},
		{"responder", ca.Responder, ca.ResponderKey},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name+".pem"), PEM(f.cert), 0o644); err != nil {
			return err
		}
		k, err := KeyPEM(f.key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.name+".key"), k, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a hierarchy that Save wrote.
func Load(dir string) (*CA, error) {
	ca := &CA{}
	for _, f := range []struct {
		name string
		cert **x509.Certificate
		key  *crypto.Signer
	}{
		{"root", &ca.Root, &ca.RootKey},
		{"intermediate", &ca.Intermediate, &ca.IntermediateKey},
		{"responder", &ca.Responder, &ca.ResponderKey},
	} {
		certs, err := ReadCertificates(filepath.Join(dir, f.name+".pem"))
		if err != nil {
			return nil, err
		}
		*f.cert = certs[0]
		if *f.key, err = ReadKey(filepath.Join(dir, f.name+".key")); err != nil {
			return nil, err
		}
	}
	if _, ok := ca.IntermediateKey.(*rsa.PrivateKey); ok {
		ca.KeyType = RSA2048
	}
	return ca, nil
}

// ReadCertificates reads every CERTIFICATE block of a PEM file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := pemfile.Certificates(data)
	if err != nil {
		return nil, fmt.Errorf("testpki: %s: %w", path, err)
	}
	return certs, nil
}

// ReadKey reads a private key from a PEM file.
func ReadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := pemfile.Key(data)
	if err != nil {
		return nil, fmt.Errorf("testpki: %s: %w", path, err)
	}
	return k, nil
}

// DomainValidated is OIDDomainValidated as an x509.OID, for
// x509.Certificate.Policies.
var DomainValidated = mustOID(OIDDomainValidated)
