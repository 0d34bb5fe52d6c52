package derw

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
)

// SignatureAlgorithm is a signature algorithm's OBJECT IDENTIFIER,
// whether its AlgorithmIdentifier carries NULL parameters (RSA PKCS #1
// v1.5) or none (ECDSA, Ed25519, RFC 5758 and RFC 8410), and the hash a
// signer is given the digest of (none for Ed25519, which signs the
// message itself).
type SignatureAlgorithm struct {
	Alg  x509.SignatureAlgorithm
	OID  asn1.ObjectIdentifier
	Null bool
	Hash crypto.Hash
}

// SignatureAlgorithms are the signature algorithms the certificate and
// OCSP response encoders write and the OCSP validator accepts.
var SignatureAlgorithms = []SignatureAlgorithm{
	{x509.ECDSAWithSHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false, crypto.SHA256},
	{x509.ECDSAWithSHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, false, crypto.SHA384},
	{x509.ECDSAWithSHA512, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, false, crypto.SHA512},
	{x509.SHA256WithRSA, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true, crypto.SHA256},
	{x509.SHA384WithRSA, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, true, crypto.SHA384},
	{x509.SHA512WithRSA, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, true, crypto.SHA512},
	{x509.PureEd25519, asn1.ObjectIdentifier{1, 3, 101, 112}, false, 0},
}

// SignatureHash returns the hash alg signs the digest of (0 for
// Ed25519), or false if alg is not in SignatureAlgorithms.
func SignatureHash(alg x509.SignatureAlgorithm) (crypto.Hash, bool) {
	a, ok := bySigAlg[alg]
	return a.hash, ok
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier of oid, with
// NULL parameters if null, none otherwise.
func AlgorithmIdentifier(oid asn1.ObjectIdentifier, null bool) []byte {
	var w Writer
	seq := w.Open(Sequence)
	w.ObjectIdentifier(oid)
	if null {
		w.B = append(w.B, Null, 0)
	}
	w.Close(seq)
	return w.B
}

// bySigAlg is SignatureAlgorithms by algorithm, with each
// AlgorithmIdentifier encoded.
var bySigAlg = func() map[x509.SignatureAlgorithm]encodedAlg {
	m := make(map[x509.SignatureAlgorithm]encodedAlg, len(SignatureAlgorithms))
	for _, a := range SignatureAlgorithms {
		m[a.Alg] = encodedAlg{AlgorithmIdentifier(a.OID, a.Null), a.Hash}
	}
	return m
}()

type encodedAlg struct {
	der  []byte
	hash crypto.Hash
}

// SignatureAlgorithmIdentifier returns alg's DER AlgorithmIdentifier as
// x509.CreateCertificate writes it, or false if alg is not in
// SignatureAlgorithms.
func SignatureAlgorithmIdentifier(alg x509.SignatureAlgorithm) ([]byte, bool) {
	a, ok := bySigAlg[alg]
	return a.der, ok
}
