package ocspstate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// responseEncoder writes signed OCSP responses (RFC 6960 §4.2.1) directly
// with cryptobyte. Everything that is the same for every response of one
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
func newResponseEncoder(issuer, responder *x509.Certificate, key crypto.Signer, certIDHash crypto.Hash) (*responseEncoder, error) {
	e := &responseEncoder{key: key}
	var sigOID asn1.ObjectIdentifier
	withNull := false
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			e.hash, sigOID = crypto.SHA256, oidECDSAWithSHA256
		case elliptic.P384():
			e.hash, sigOID = crypto.SHA384, oidECDSAWithSHA384
		case elliptic.P521():
			e.hash, sigOID = crypto.SHA512, oidECDSAWithSHA512
		default:
			return nil, fmt.Errorf("ocspstate: signing key on curve %s: only P-256, P-384 and P-521 are supported", pub.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		e.hash, sigOID, withNull = crypto.SHA256, oidSHA256WithRSA, true
	default:
		return nil, fmt.Errorf("ocspstate: signing key of type %T: only ECDSA and RSA keys are supported", pub)
	}
	hashOID := oidSHA1
	if certIDHash == crypto.SHA256 {
		hashOID = oidSHA256
	}
	var err error
	if e.nameHash, e.keyHash, err = IssuerHashes(issuer, certIDHash); err != nil {
		return nil, err
	}
	e.sigAlg = algorithmIdentifier(sigOID, withNull)
	e.certIDAlg = algorithmIdentifier(hashOID, true)
	signer := issuer
	if responder != nil {
		signer = responder
		e.cert = responder.Raw
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
		b.AddBytes(signer.RawSubject)
	})
	e.responderID = b.BytesOrPanic()
	return e, nil
}

func algorithmIdentifier(oid asn1.ObjectIdentifier, withNull bool) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if withNull {
			b.AddASN1NULL()
		}
	})
	return b.BytesOrPanic()
}

// encode signs and returns one response. status is Good or Revoked (the
// caller checked); for Revoked, revokedAt is set and reason is a CRLReason
// code, omitted when zero (unspecified), as x/crypto/ocsp does.
func (e *responseEncoder) encode(serial *big.Int, status Status, revokedAt time.Time, reason int, thisUpdate, nextUpdate, producedAt time.Time) ([]byte, error) {
	tbs := cryptobyte.NewBuilder(make([]byte, 0, 256))
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseData
		b.AddBytes(e.responderID)
		b.AddASN1GeneralizedTime(producedAt.UTC())
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // responses
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SingleResponse
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
					b.AddBytes(e.certIDAlg)
					b.AddASN1OctetString(e.nameHash)
					b.AddASN1OctetString(e.keyHash)
					b.AddASN1BigInt(serial)
				})
				if status == Revoked {
					b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // RevokedInfo
						b.AddASN1GeneralizedTime(revokedAt.UTC())
						if reason != 0 {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1Enum(int64(reason))
							})
						}
					})
				} else {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {}) // good: [0] IMPLICIT NULL
				}
				b.AddASN1GeneralizedTime(thisUpdate.UTC())
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1GeneralizedTime(nextUpdate.UTC())
				})
			})
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, err
	}
	h := e.hash.New()
	h.Write(tbsDER)
	sig, err := e.key.Sign(rand.Reader, h.Sum(nil), e.hash)
	if err != nil {
		return nil, err
	}
	out := cryptobyte.NewBuilder(make([]byte, 0, len(tbsDER)+len(sig)+len(e.cert)+64))
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPResponse
		b.AddASN1Enum(0) // successful
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseBytes
				b.AddASN1ObjectIdentifier(oidOCSPBasic)
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // BasicOCSPResponse
						b.AddBytes(tbsDER)
						b.AddBytes(e.sigAlg)
						b.AddASN1BitString(sig)
						if e.cert != nil {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddBytes(e.cert)
								})
							})
						}
					})
				})
			})
		})
	})
	return out.Bytes()
}
