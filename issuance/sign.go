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

	"github.com/certpipe/precert/internal/derw"
	"github.com/certpipe/precert/internal/tbs"
	"github.com/certpipe/precert/internal/x509enc"
)

// issuer is the signing half of the pipeline. Every signature it makes
// with the real key goes through signPrecert or signFinal, and each of
// those redeems a single-use token that only the prepare step — which runs
// the lint and, for finals, the correspondence check — can mint.
type issuer struct {
	cert    *x509.Certificate
	key     crypto.Signer
	sigAlg  x509.SignatureAlgorithm
	hash    crypto.Hash       // sigAlg's digest (0: Ed25519 signs the message)
	lintKey crypto.Signer     // throwaway key of the same type and size
	lintCA  *x509.Certificate // cert with the issuer's names and the lint key
	linter  Linter            // nil when linting is off
	chain   [][]byte          // issuer chain following the leaf in CT submissions
	// buildFinal builds the final TBS from the precertificate's: finalFrom,
	// but for tests of the correspondence check (I4) that guards it.
	buildFinal func(pre *tbs.TBS, sctListValue []byte) ([]byte, error)
}

func newIssuer(cert *x509.Certificate, key crypto.Signer, linter Linter, chain [][]byte) (*issuer, error) {
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("issuance: issuer key: %w", err)
	}
	if !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("issuance: the issuer key does not match the public key of %q", cert.Subject.String())
	}
	is := &issuer{cert: cert, key: key, linter: linter, chain: chain, buildFinal: finalFrom}
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
	var ok bool
	if is.hash, ok = derw.SignatureHash(is.sigAlg); !ok {
		return nil, fmt.Errorf("issuance: unsupported signature algorithm %v", is.sigAlg)
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
	parsed *x509.Certificate // a parse of intent under another signature
	used   atomic.Bool
}

// finalToken lets signFinal sign exactly one final certificate TBS, which
// has been checked against its precertificate and linted.
type finalToken struct {
	tbs    []byte
	parsed *x509.Certificate // a parse of tbs under another signature, or nil
	used   atomic.Bool
}

// intent builds the precertificate's TBS. With linting on, it signs the
// template with the lint key: the certificate is what gets linted, and its
// TBS is the intent that is reserved and that the real signature must
// reproduce. With linting off, that signature (and x509's check of it)
// would serve nobody: x509enc encodes the very same TBS directly, and
// x509.CreateCertificate still builds it for any template x509enc does not
// support. Either way the TBS is parsed as a certificate before anything
// is reserved, so a request that would make a malformed certificate fails
// here. The certificate returned carries the intent as its
// RawTBSCertificate: lint-signed, or (linting off, x509enc) with an empty
// signature, which x509.ParseCertificate does not check.
func (is *issuer) intent(tmpl *x509.Certificate) (*x509.Certificate, error) {
	tmpl.SignatureAlgorithm = is.sigAlg
	if is.linter == nil {
		if tbsDER, err := x509enc.TBS(tmpl, is.lintCA, tmpl.PublicKey); err == nil {
			cert, err := is.parseUnsigned(tbsDER)
			if err != nil {
				return nil, fmt.Errorf("building the precertificate: %w", err)
			}
			return cert, nil
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.lintCA, tmpl.PublicKey, is.lintKey)
	if err != nil {
		return nil, fmt.Errorf("building the precertificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("building the precertificate: %w", err)
	}
	return cert, nil
}

// parseUnsigned parses tbsDER as a certificate with an empty signature.
func (is *issuer) parseUnsigned(tbsDER []byte) (*x509.Certificate, error) {
	sigAlg, err := tbs.SignatureAlgorithm(tbsDER)
	if err != nil {
		return nil, err
	}
	der, err := tbs.JoinCertificate(tbsDER, sigAlg, nil) // the outer algorithm equals the TBS's
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// preparePrecert lints the intent's certificate (lint-signed whenever a
// linter is set) and mints the token.
func (is *issuer) preparePrecert(in *x509.Certificate) (*precertToken, error) {
	if err := is.lint(in); err != nil {
		return nil, err
	}
	return &precertToken{intent: in.RawTBSCertificate, parsed: in}, nil
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
	cert, err := is.signReal(tok.intent, tok.parsed)
	if err != nil {
		return nil, fmt.Errorf("signing the precertificate: %w", err)
	}
	return cert, nil
}

// prepareFinal builds the final TBS from the precertificate and the SCT
// list, checks it corresponds to the precertificate (I4), lints it signed
// with the lint key, and mints the token.
func (is *issuer) prepareFinal(precert *x509.Certificate, sctListValue []byte) (*finalToken, error) {
	p, err := tbs.Parse(precert.RawTBSCertificate)
	if err != nil {
		return nil, fmt.Errorf("building the final certificate: %w", err)
	}
	tbsDER, err := is.buildFinal(p, sctListValue)
	if err != nil {
		return nil, fmt.Errorf("building the final certificate: %w", err)
	}
	// The check parses the final TBS afresh: it does not trust the builder.
	if err := correspond(p, tbsDER); err != nil {
		return nil, err
	}
	var lintCert *x509.Certificate
	if is.linter != nil {
		if lintCert, err = is.signAs(tbsDER, is.lintKey); err != nil {
			return nil, fmt.Errorf("signing the final certificate for linting: %w", err)
		}
		if err := is.lint(lintCert); err != nil {
			return nil, err
		}
	}
	return &finalToken{tbs: tbsDER, parsed: lintCert}, nil
}

// signFinal signs the token's TBS with the real key.
func (is *issuer) signFinal(tok *finalToken) (*x509.Certificate, error) {
	if tok == nil || !tok.used.CompareAndSwap(false, true) {
		return nil, errTokenUsed
	}
	cert, err := is.signReal(tok.tbs, tok.parsed)
	if err != nil {
		return nil, fmt.Errorf("signing the final certificate: %w", err)
	}
	return cert, nil
}

// signReal signs tbsDER with the real key. The certificate must carry
// exactly tbsDER and its signature must verify against the issuer
// certificate, as x509.CreateCertificate checks: a faulty signer must not
// produce a certificate that anyone (a CT log, the caller) then sees.
//
// parsed, if not nil, is crypto/x509's parse of a certificate with the
// same TBS and signature algorithm but another signature (the lint key's,
// or none): x509.ParseCertificate reads the signature as opaque bytes, so
// that parse is this certificate's but for Raw and Signature, and parsing
// again would only repeat it.
func (is *issuer) signReal(tbsDER []byte, parsed *x509.Certificate) (*x509.Certificate, error) {
	der, sig, err := signTBS(tbsDER, is.hash, is.key)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	if parsed != nil && bytes.Equal(parsed.RawTBSCertificate, tbsDER) && parsed.SignatureAlgorithm == is.sigAlg {
		c := *parsed
		c.Raw, c.Signature = der, sig
		cert = &c
	} else if cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	// The certificate is built around tbsDER itself, so this holds by
	// construction; it is the step-3 check (the signed TBS is the intent),
	// stated where an edit to the signing could break it.
	if !bytes.Equal(cert.RawTBSCertificate, tbsDER) {
		return nil, errors.New("the signed certificate's TBS differs from the one meant to be signed")
	}
	if err := cert.CheckSignatureFrom(is.cert); err != nil {
		return nil, fmt.Errorf("the signature does not verify: %w", err)
	}
	return cert, nil
}

// signAs signs tbs with key and parses the certificate.
func (is *issuer) signAs(tbs []byte, key crypto.Signer) (*x509.Certificate, error) {
	der, _, err := signTBS(tbs, is.hash, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// signTBS signs a TBSCertificate, taking the digest with hash (none if
// 0), and wraps it into a Certificate. It returns the certificate's DER
// and the signature.
func signTBS(tbsDER []byte, hash crypto.Hash, key crypto.Signer) (der, sig []byte, err error) {
	sigAlg, err := tbs.SignatureAlgorithm(tbsDER)
	if err != nil {
		return nil, nil, err
	}
	digest := tbsDER // Ed25519 signs the message itself
	if hash != 0 {
		h := hash.New()
		h.Write(tbsDER)
		digest = h.Sum(nil)
	}
	if sig, err = key.Sign(rand.Reader, digest, hash); err != nil {
		return nil, nil, err
	}
	der, err = tbs.JoinCertificate(tbsDER, sigAlg, sig) // the outer algorithm equals the TBS's
	return der, sig, err
}
