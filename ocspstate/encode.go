package ocspstate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	"github.com/certpipe/precert/internal/derw"
)

// responseEncoder writes signed OCSP responses (RFC 6960 §4.2.1) directly,
// with internal/derw (one buffer, no allocation per element). Everything that is the same for every response of one
// signer — the responder ID, the CertID's hash algorithm and issuer
// hashes, the signature algorithm, the delegated responder's certificate —
// is encoded once, so a response costs its signature and a few hundred
// bytes of copying rather than encoding/asn1's reflection. The encoding is
// byte for byte what golang.org/x/crypto/ocsp.CreateResponse writes for
// the same input (TestEncoderMatchesXCrypto holds it to that), and every
// response is parsed back and checked before it leaves the signer.
type responseEncoder struct {
	key         crypto.Signer
	hash        crypto.Hash // of the signature
	sigAlg      []byte      // DER AlgorithmIdentifier
	responderID []byte      // DER [1] EXPLICIT Name
	certIDAlg   []byte      // DER AlgorithmIdentifier of the CertID hash, NULL parameters
	nameHash    []byte
	keyHash     []byte
	cert        []byte // the delegated responder's certificate, or nil
}

// newResponseEncoder prepares an encoder for key: ECDSA on P-256, P-384 or
// P-521, or RSA (the key types x/crypto/ocsp signs with, less P-224, which
// BR §6.1.5 does not allow).
func newResponseEncoder(ik *issuerKey, responder *x509.Certificate, key crypto.Signer, certIDHash crypto.Hash) (*responseEncoder, error) {
	e := &responseEncoder{key: key}
	var alg x509.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			alg = x509.ECDSAWithSHA256
		case elliptic.P384():
			alg = x509.ECDSAWithSHA384
		case elliptic.P521():
			alg = x509.ECDSAWithSHA512
		default:
			return nil, fmt.Errorf("ocspstate: signing key on curve %s: only P-256, P-384 and P-521 are supported", pub.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		alg = x509.SHA256WithRSA
	default:
		return nil, fmt.Errorf("ocspstate: signing key of type %T: only ECDSA and RSA keys are supported", pub)
	}
	var ok bool
	if e.sigAlg, ok = derw.SignatureAlgorithmIdentifier(alg); !ok {
		return nil, fmt.Errorf("ocspstate: no AlgorithmIdentifier for %s", alg)
	}
	e.hash, _ = derw.SignatureHash(alg) // in the same table
	hashOID := oidSHA1
	if certIDHash == crypto.SHA256 {
		hashOID = oidSHA256
	}
	e.certIDAlg = derw.AlgorithmIdentifier(hashOID, true)
	e.nameHash, e.keyHash = ik.hashes(certIDHash)
	signer := ik.cert
	if responder != nil {
		signer = responder
		e.cert = responder.Raw
	}
	var w derw.Writer
	id := w.Open(derw.ContextCons | 1) // responderID byName: [1] EXPLICIT Name
	w.Raw(signer.RawSubject)
	w.Close(id)
	e.responderID = w.B
	return e, nil
}

// encode signs and returns one response. status is Good or Revoked (the
// caller checked); for Revoked, revokedAt is set and reason is a CRLReason
// code, omitted when zero (unspecified), as x/crypto/ocsp does.
func (e *responseEncoder) encode(serial *big.Int, status Status, revokedAt time.Time, reason int, thisUpdate, nextUpdate, producedAt time.Time) ([]byte, error) {
	w := derw.Writer{B: make([]byte, 0, 256)}
	rd := w.Open(derw.Sequence) // ResponseData
	w.Raw(e.responderID)
	w.GeneralizedTime(producedAt)
	rs := w.Open(derw.Sequence)  // responses
	sr := w.Open(derw.Sequence)  // SingleResponse
	cid := w.Open(derw.Sequence) // CertID
	w.Raw(e.certIDAlg)
	w.Primitive(derw.OctetString, e.nameHash)
	w.Primitive(derw.OctetString, e.keyHash)
	w.BigInt(serial)
	w.Close(cid)
	switch status {
	case Revoked:
		ri := w.Open(derw.ContextCons | 1) // RevokedInfo
		w.GeneralizedTime(revokedAt)
		if reason != 0 {
			r := w.Open(derw.ContextCons) // [0] EXPLICIT CRLReason
			w.Enum(int64(reason))
			w.Close(r)
		}
		w.Close(ri)
	case Good:
		w.Primitive(derw.Context, nil) // good: [0] IMPLICIT NULL
	default:
		return nil, fmt.Errorf("status %v is neither good nor revoked", status)
	}
	w.GeneralizedTime(thisUpdate)
	nu := w.Open(derw.ContextCons) // [0] EXPLICIT nextUpdate
	w.GeneralizedTime(nextUpdate)
	w.Close(nu)
	w.Close(sr)
	w.Close(rs)
	w.Close(rd)
	tbsDER, err := w.Bytes()
	if err != nil {
		return nil, err
	}
	h := e.hash.New()
	h.Write(tbsDER)
	sig, err := e.key.Sign(rand.Reader, h.Sum(nil), e.hash)
	if err != nil {
		return nil, err
	}
	out := derw.Writer{B: make([]byte, 0, len(tbsDER)+len(sig)+len(e.cert)+64)}
	resp := out.Open(derw.Sequence) // OCSPResponse
	out.Enum(0)                     // successful
	rb0 := out.Open(derw.ContextCons)
	rb := out.Open(derw.Sequence) // ResponseBytes
	out.Raw(derOIDOCSPBasic)
	os := out.Open(derw.OctetString)
	basic := out.Open(derw.Sequence) // BasicOCSPResponse
	out.Raw(tbsDER)
	out.Raw(e.sigAlg)
	out.BitStringBytes(sig)
	if e.cert != nil {
		certs := out.Open(derw.ContextCons)
		seq := out.Open(derw.Sequence)
		out.Raw(e.cert)
		out.Close(seq)
		out.Close(certs)
	}
	out.Close(basic)
	out.Close(os)
	out.Close(rb)
	out.Close(rb0)
	out.Close(resp)
	return out.Bytes()
}

// derOIDOCSPBasic is the DER OBJECT IDENTIFIER id-pkix-ocsp-basic.
var derOIDOCSPBasic = func() []byte {
	var w derw.Writer
	w.ObjectIdentifier(oidOCSPBasic)
	return w.B
}()
