package ocspstate

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Response is a signed OCSP response and its validity interval, as
// [ResponseSigner.Sign] returns it. Store it with [Record.SetResponse].
type Response struct {
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
}

// SignerConfig configures a [ResponseSigner].
type SignerConfig struct {
	// Issuer is the CA certificate whose subscribers' status is signed.
	// Required.
	Issuer *x509.Certificate
	// Responder, if set, is a delegated OCSP responder certificate: issued
	// by Issuer, carrying id-kp-OCSPSigning, and embedded in every
	// response. If nil, Issuer signs directly.
	Responder *x509.Certificate
	// Key signs responses: Responder's key if Responder is set, Issuer's
	// otherwise. Any crypto.Signer fits, so an HSM does. Required.
	Key crypto.Signer
	// Validity is the response's validity interval as BR §4.9.9 counts
	// it: nextUpdate minus thisUpdate, inclusive, so nextUpdate is
	// thisUpdate + Validity - 1s. Zero means 96 hours. Values outside 8
	// hours to 10 days are refused.
	Validity time.Duration
	// Backdate moves thisUpdate into the past to absorb relying parties'
	// clock skew. Zero means one minute; negative means none. It may not
	// exceed a quarter of Validity.
	Backdate time.Duration
	// CertIDHash is the CertID hash algorithm: crypto.SHA1 (the zero value
	// means SHA-1, what RFC 5019 clients send) or crypto.SHA256.
	CertIDHash crypto.Hash
	// VerifySignatures, when true, verifies each response's signature
	// right after signing it, which costs about one more ECDSA signature.
	// When false, the key is proven once in NewResponseSigner and every
	// response is still parsed and checked for structure, serial, status,
	// CertID and interval before it is returned; the responder verifies
	// signatures before first serving them, and Audit verifies all.
	VerifySignatures bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// ResponseSigner signs good and revoked OCSP responses for one issuer. It
// is safe for concurrent use. Every response it returns has been checked
// (see [SignerConfig.VerifySignatures]), and is recorded as verified for
// any [Validator] in this process.
type ResponseSigner struct {
	cfg SignerConfig
	enc *responseEncoder
	ik  *issuerKey // the issuer, with its CertID hashes
}

// DefaultResponseValidity is the validity used when
// [SignerConfig.Validity] is zero.
const DefaultResponseValidity = 96 * time.Hour

// NewResponseSigner checks cfg and proves the key: it signs a probe
// response and validates it against the issuer, so a key that does not
// match its certificate, or a delegated certificate the issuer did not sign
// or that lacks id-kp-OCSPSigning, is refused here rather than discovered by
// relying parties.
func NewResponseSigner(cfg SignerConfig) (*ResponseSigner, error) {
	if cfg.Issuer == nil {
		return nil, errors.New("ocspstate: SignerConfig.Issuer is required")
	}
	if cfg.Key == nil {
		return nil, errors.New("ocspstate: SignerConfig.Key is required")
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultResponseValidity
	}
	if cfg.Validity < MinResponseValidity || cfg.Validity > MaxResponseValidity {
		return nil, fmt.Errorf("ocspstate: response validity %s is outside BR §4.9.9's %s to %s", cfg.Validity, MinResponseValidity, MaxResponseValidity)
	}
	switch {
	case cfg.Backdate == 0:
		cfg.Backdate = time.Minute
	case cfg.Backdate < 0:
		cfg.Backdate = 0
	}
	if cfg.Backdate > cfg.Validity/4 {
		return nil, fmt.Errorf("ocspstate: backdate %s exceeds a quarter of the validity %s", cfg.Backdate, cfg.Validity)
	}
	switch cfg.CertIDHash {
	case 0:
		cfg.CertIDHash = crypto.SHA1
	case crypto.SHA1, crypto.SHA256:
	default:
		return nil, fmt.Errorf("ocspstate: CertID hash %v is not SHA-1 or SHA-256", cfg.CertIDHash)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &ResponseSigner{cfg: cfg}
	signer := cfg.Issuer // the certificate of the key
	if cfg.Responder != nil {
		signer = cfg.Responder
	}
	var err error
	if s.ik, err = newIssuerKey(cfg.Issuer); err != nil {
		return nil, err
	}
	if s.enc, err = newResponseEncoder(s.ik, cfg.Responder, cfg.Key, cfg.CertIDHash); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(cfg.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("ocspstate: signing key: %w", err)
	}
	if !bytes.Equal(pub, signer.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("ocspstate: the signing key does not match the public key of %q", signer.Subject.String())
	}
	// Prove the key and the chain once, verifying the signature.
	probe, err := s.sign(big.NewInt(1), Good, time.Time{}, 0, true)
	if err != nil {
		return nil, fmt.Errorf("ocspstate: proving the signing key: %w", err)
	}
	if _, err := Validate(probe.DER, cfg.Issuer, Expect{Serial: big.NewInt(1), Status: Good, Now: cfg.Now(), Skew: time.Minute}); err != nil {
		return nil, fmt.Errorf("ocspstate: proving the signing key: %w", err)
	}
	return s, nil
}

// Issuer returns the issuer certificate.
func (s *ResponseSigner) Issuer() *x509.Certificate { return s.cfg.Issuer }

// IssuerID returns the IssuerID of the issuer.
func (s *ResponseSigner) IssuerID() IssuerID { return s.ik.id }

// Validity returns the configured validity interval (inclusive).
func (s *ResponseSigner) Validity() time.Duration { return s.cfg.Validity }

// Sign signs a response for serial. status must be Good or Revoked: any
// other value is refused (a response without a good or revoked certStatus
// is junk to relying parties). For Revoked, revokedAt is required and reason must be an
// RFC 5280 CRLReason (0–10 except 7); 0 omits the reason, as BR §7.2.2
// requires for "unspecified".
func (s *ResponseSigner) Sign(serial *big.Int, status Status, revokedAt time.Time, reason int) (*Response, error) {
	return s.sign(serial, status, revokedAt, reason, s.cfg.VerifySignatures)
}

// SignRecord signs a response saying r's current OCSP status.
func (s *ResponseSigner) SignRecord(r *Record) (*Response, error) {
	if r.Issuer != s.ik.id {
		return nil, fmt.Errorf("ocspstate: record %s belongs to another issuer than this signer's (%s)", r, s.ik.id)
	}
	status := r.OCSP.Status
	if status == 0 {
		status = Good
	}
	return s.Sign(r.Serial, status, r.OCSP.RevokedAt, r.OCSP.Reason)
}

func (s *ResponseSigner) sign(serial *big.Int, status Status, revokedAt time.Time, reason int, verifySig bool) (*Response, error) {
	if err := CheckSerial(serial); err != nil {
		return nil, err
	}
	switch status {
	case Good:
		revokedAt, reason = time.Time{}, 0
	case Revoked:
		if revokedAt.IsZero() {
			return nil, fmt.Errorf("ocspstate: revoked response for serial %s needs a revocation time", SerialHex(serial))
		}
		if err := CheckReason(reason); err != nil {
			return nil, err
		}
		revokedAt = revokedAt.UTC().Truncate(time.Second)
	default:
		return nil, fmt.Errorf("ocspstate: refusing to sign status %v for serial %s: only good and revoked are signed", status, SerialHex(serial))
	}
	now := s.cfg.Now().UTC()
	thisUpdate := now.Add(-s.cfg.Backdate).Truncate(time.Second)
	nextUpdate := thisUpdate.Add(s.cfg.Validity - time.Second)
	der, err := s.enc.encode(serial, status, revokedAt, reason, thisUpdate, nextUpdate, now.Truncate(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("ocspstate: signing response for serial %s: %w", SerialHex(serial), err)
	}
	// Check what was signed before anyone sees it.
	info, err := parseAndVerify(der, s.ik, verifySig)
	if err == nil {
		err = info.check(Expect{Serial: serial, Status: status, RevokedAt: revokedAt, Reason: reason})
	}
	if err != nil {
		return nil, fmt.Errorf("ocspstate: response just signed for serial %s fails validation: %w", SerialHex(serial), err)
	}
	verified.put(sha256.Sum256(der), info)
	return &Response{DER: der, ThisUpdate: info.ThisUpdate, NextUpdate: info.NextUpdate}, nil
}

// CheckReason reports whether reason is an RFC 5280 §5.3.1 CRLReason code:
// 0 to 10, 7 being unassigned.
func CheckReason(reason int) error {
	if reason < 0 || reason > 10 || reason == 7 {
		return fmt.Errorf("ocspstate: %d is not an RFC 5280 CRLReason code", reason)
	}
	return nil
}

// RFC 5280 CRLReason codes allowed for subscriber certificates by BR
// §7.2.2 (CRL and OCSP reason codes must agree).
const (
	ReasonUnspecified          = 0 // encoded by omitting the reason
	ReasonKeyCompromise        = 1
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonPrivilegeWithdrawn   = 9
)

// CheckSubscriberReason reports whether reason may be used to revoke a
// subscriber certificate under BR §7.2.2: unspecified (0),
// keyCompromise (1), affiliationChanged (3), superseded (4),
// cessationOfOperation (5) or privilegeWithdrawn (9). cACompromise,
// certificateHold, removeFromCRL and aACompromise are refused.
func CheckSubscriberReason(reason int) error {
	switch reason {
	case ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged, ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn:
		return nil
	}
	if err := CheckReason(reason); err != nil {
		return err
	}
	return fmt.Errorf("ocspstate: CRLReason %d is not allowed for subscriber certificates (BR §7.2.2 allows 0, 1, 3, 4, 5, 9)", reason)
}
