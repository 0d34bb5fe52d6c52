package issuance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/certpipe/precert/internal/tbs"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// issuer is the signing half of the pipeline. Every signature it makes
// with the real key goes through signPrecert or signFinal, and each of
// those redeems a single-use token that only the prepare step — which runs
// the lint and, for finals, the correspondence check — can mint.
type issuer struct {
	cert    *x509.Certificate
	key     crypto.Signer
	sigAlg  x509.SignatureAlgorithm
	lintKey crypto.Signer     // throwaway key of the same type and size
	lintCA  *x509.Certificate // cert with the issuer's names and the lint key
	linter  Linter            // nil when linting is off
	chain   [][]byte          // issuer chain following the leaf in CT submissions
}

func newIssuer(cert *x509.Certificate, key crypto.Signer, linter Linter, chain [][]byte) (*issuer, error) {
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("issuance: issuer key: %w", err)
	}
	if !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("issuance: the issuer key does not match the public key of %q", cert.Subject.String())
	}
	is := &issuer{cert: cert, key: key, linter: linter, chain: chain}
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			is.sigAlg = x509.ECDSAWithSHA256
		case elliptic.P384():
			is.sigAlg = x509.ECDSAWithSHA384
		default:
			return nil, fmt.Errorf("issuance: ECDSA curve %s is not allowed by BR §6.1.5 (P-256 or P-384)", k.Curve.Params().Name)
		}
		is.lintKey, err = ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 || k.N.BitLen()%8 != 0 {
			return nil, fmt.Errorf("issuance: RSA modulus of %d bits is not allowed by BR §6.1.5", k.N.BitLen())
		}
		is.sigAlg = x509.SHA256WithRSA
		is.lintKey, err = rsa.GenerateKey(rand.Reader, k.N.BitLen())
	case ed25519.PublicKey:
		is.sigAlg = x509.PureEd25519
		_, is.lintKey, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("issuance: unsupported issuer key type %T", k)
	}
	if err != nil {
		return nil, fmt.Errorf("issuance: generating the lint key: %w", err)
	}
	// The lint CA has the issuer's names and key identifier but the lint
	// key, so x509.CreateCertificate produces the very TBS the real key
	// will sign, byte for byte.
	lintCA := *cert
	lintCA.PublicKey = is.lintKey.Public()
	is.lintCA = &lintCA
	return is, nil
}

// precertToken lets signPrecert sign exactly one precertificate: the one
// whose intent was reserved and linted.
type precertToken struct {
	intent []byte
	used   atomic.Bool
}

// finalToken lets signFinal sign exactly one final certificate TBS, which
// has been checked against its precertificate and linted.
type finalToken struct {
	tbs  []byte
	used atomic.Bool
}

// intent builds the precertificate's TBS by signing the template with the
// lint key: the returned certificate is what gets linted, and its TBS is
// the intent that is reserved and that the real signature must reproduce.
func (is *issuer) intent(tmpl *x509.Certificate) (*x509.Certificate, error) {
	tmpl.SignatureAlgorithm = is.sigAlg
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.lintCA, tmpl.PublicKey, is.lintKey)
	if err != nil {
		return nil, fmt.Errorf("building the precertificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// preparePrecert lints the lint-signed precertificate and mints the token.
func (is *issuer) preparePrecert(lintCert *x509.Certificate) (*precertToken, error) {
	if err := is.lint(lintCert); err != nil {
		return nil, err
	}
	return &precertToken{intent: lintCert.RawTBSCertificate}, nil
}

func (is *issuer) lint(cert *x509.Certificate) error {
	if is.linter == nil {
		return nil
	}
	return is.linter.Lint(cert)
}

var errTokenUsed = errors.New("issuance: signing token already used")

// signPrecert signs the reserved intent, byte for byte, with the real key.
func (is *issuer) signPrecert(tok *precertToken) (*x509.Certificate, error) {
	if tok == nil || !tok.used.CompareAndSwap(false, true) {
		return nil, errTokenUsed
	}
	cert, err := is.signReal(tok.intent)
	if err != nil {
		return nil, fmt.Errorf("signing the precertificate: %w", err)
	}
	return cert, nil
}

// prepareFinal builds the final TBS from the precertificate and the SCT
// list, checks it corresponds to the precertificate (I4), lints it signed
// with the lint key, and mints the token.
func (is *issuer) prepareFinal(precert *x509.Certificate, sctListValue []byte) (*finalToken, error) {
	tbsDER, err := finalTBS(precert.RawTBSCertificate, sctListValue)
	if err != nil {
		return nil, fmt.Errorf("building the final certificate: %w", err)
	}
	if err := Correspond(precert.RawTBSCertificate, tbsDER); err != nil {
		return nil, err
	}
	if is.linter != nil {
		lintCert, err := is.signAs(tbsDER, is.lintKey)
		if err != nil {
			return nil, fmt.Errorf("signing the final certificate for linting: %w", err)
		}
		if err := is.lint(lintCert); err != nil {
			return nil, err
		}
	}
	return &finalToken{tbs: tbsDER}, nil
}

// signFinal signs the token's TBS with the real key.
func (is *issuer) signFinal(tok *finalToken) (*x509.Certificate, error) {
	if tok == nil || !tok.used.CompareAndSwap(false, true) {
		return nil, errTokenUsed
	}
	cert, err := is.signReal(tok.tbs)
	if err != nil {
		return nil, fmt.Errorf("signing the final certificate: %w", err)
	}
	return cert, nil
}

// signReal signs tbs with the real key. The certificate must carry exactly
// tbs and its signature must verify against the issuer certificate, as
// x509.CreateCertificate checks: a faulty signer must not produce a
// certificate that anyone (a CT log, the caller) then sees.
func (is *issuer) signReal(tbs []byte) (*x509.Certificate, error) {
	cert, err := is.signAs(tbs, is.key)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cert.RawTBSCertificate, tbs) {
		return nil, errors.New("the signed certificate's TBS differs from the one meant to be signed")
	}
	if err := cert.CheckSignatureFrom(is.cert); err != nil {
		return nil, fmt.Errorf("the signature does not verify: %w", err)
	}
	return cert, nil
}

// signAs signs tbs with key and parses the certificate.
func (is *issuer) signAs(tbs []byte, key crypto.Signer) (*x509.Certificate, error) {
	der, err := signTBS(tbs, is.sigAlg, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// signTBS signs a TBSCertificate and wraps it into a Certificate.
func signTBS(tbsDER []byte, alg x509.SignatureAlgorithm, key crypto.Signer) ([]byte, error) {
	t, err := tbs.Parse(tbsDER)
	if err != nil {
		return nil, err
	}
	var digest []byte
	var opts crypto.SignerOpts
	switch alg {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		h := crypto.SHA256.New()
		h.Write(tbsDER)
		digest, opts = h.Sum(nil), crypto.SHA256
	case x509.ECDSAWithSHA384:
		h := crypto.SHA384.New()
		h.Write(tbsDER)
		digest, opts = h.Sum(nil), crypto.SHA384
	case x509.PureEd25519:
		digest, opts = tbsDER, crypto.Hash(0)
	default:
		return nil, fmt.Errorf("unsupported signature algorithm %v", alg)
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddBytes(t.SigAlg) // the outer algorithm equals the TBS's
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}
