package ocspstate

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/certpipe/precert/internal/derw"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrInvalidResponse is wrapped by every [*ValidationError].
var ErrInvalidResponse = errors.New("ocspstate: invalid OCSP response")

// Problem names what was wrong with a response that failed validation, so
// that responders, auditors and metrics can count problems by kind.
type Problem uint8

// The problems [Validate] reports.
const (
	ProblemMalformed     Problem = iota + 1 // not a parseable OCSPResponse
	ProblemNotSuccessful                    // responseStatus other than successful (e.g. the 5-byte unauthorized)
	ProblemShape                            // not exactly one SingleResponse, or not a basic response
	ProblemNoCertStatus                     // the SingleResponse has no certStatus
	ProblemCertID                           // CertID hash algorithm or issuer hashes do not match the issuer
	ProblemSerial                           // the response is for another serial
	ProblemStatus                           // the status, revocation time or reason is not what was expected
	ProblemSigner                           // the signer is neither the issuer nor a valid delegated responder
	ProblemSignature                        // the signature does not verify
	ProblemNoNextUpdate                     // nextUpdate is absent
	ProblemInterval                         // validity interval outside BR §4.9.9's 8 hours to 10 days
	ProblemFuture                           // thisUpdate is in the future
	ProblemExpired                          // nextUpdate has passed
	ProblemUnknownIssuer                    // no certificate for the issuer the record names
)

var problemNames = [...]string{
	ProblemMalformed:     "malformed",
	ProblemNotSuccessful: "not-successful",
	ProblemShape:         "shape",
	ProblemNoCertStatus:  "no-cert-status",
	ProblemCertID:        "cert-id",
	ProblemSerial:        "serial",
	ProblemStatus:        "status",
	ProblemSigner:        "signer",
	ProblemSignature:     "signature",
	ProblemNoNextUpdate:  "no-next-update",
	ProblemInterval:      "interval",
	ProblemFuture:        "future",
	ProblemExpired:       "expired",
	ProblemUnknownIssuer: "unknown-issuer",
}

// String returns a short kebab-case name, used as a metric label.
func (p Problem) String() string {
	if int(p) < len(problemNames) && problemNames[p] != "" {
		return problemNames[p]
	}
	return fmt.Sprintf("Problem(%d)", uint8(p))
}

// ValidationError says why a response was refused.
type ValidationError struct {
	Problem Problem
	Serial  *big.Int // the serial the response was checked for, if known
	Detail  string
}

func (e *ValidationError) Error() string {
	if e.Serial != nil {
		return fmt.Sprintf("ocspstate: invalid OCSP response for serial %s: %s: %s", SerialHex(e.Serial), e.Problem, e.Detail)
	}
	return fmt.Sprintf("ocspstate: invalid OCSP response: %s: %s", e.Problem, e.Detail)
}

// Is makes every ValidationError match [ErrInvalidResponse].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidResponse }

// ProblemOf returns the Problem of a validation error, or 0 if err is not one.
func ProblemOf(err error) Problem {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problem
	}
	return 0
}

// ResponseInfo is what validation learned from an accepted response.
type ResponseInfo struct {
	Serial     *big.Int
	Status     Status
	RevokedAt  time.Time
	Reason     int
	ProducedAt time.Time
	ThisUpdate time.Time
	NextUpdate time.Time
	// CertIDHash is the hash algorithm of the response's CertID.
	CertIDHash crypto.Hash
	// Delegated is true when a delegated responder certificate signed it;
	// SignerNotAfter is the end of that signer's validity (the issuer's
	// otherwise).
	Delegated      bool
	SignerNotAfter time.Time

	issuer IssuerID
}

// Expect is what a response must say to be accepted.
type Expect struct {
	// Serial is required.
	Serial *big.Int
	// Status, when non-zero, must match; for Revoked, RevokedAt (to the
	// second) and Reason must match too.
	Status    Status
	RevokedAt time.Time
	Reason    int
	// Now, when non-zero, turns on the freshness checks: thisUpdate no
	// later than Now plus Skew, nextUpdate after Now, and a delegated
	// signer's certificate valid at Now.
	Now  time.Time
	Skew time.Duration
}

// ExpectRecord returns what r's stored response must say at now.
func ExpectRecord(r *Record, now time.Time, skew time.Duration) Expect {
	return Expect{Serial: r.Serial, Status: r.OCSP.Status, RevokedAt: r.OCSP.RevokedAt, Reason: r.OCSP.Reason, Now: now, Skew: skew}
}

// Validate checks that der is a well-formed, successful OCSP response about
// exactly one certificate, issued by issuer, with a certStatus of good or
// revoked; that its CertID names issuer; that it is signed either by issuer
// or by a delegated responder certificate (id-kp-OCSPSigning, signed by
// issuer) embedded in it; that its validity interval is within BR §4.9.9's
// bounds; and that it says what want expects. It verifies the signature
// every time: use a [Validator] for many responses.
func Validate(der []byte, issuer *x509.Certificate, want Expect) (*ResponseInfo, error) {
	ik, err := newIssuerKey(issuer)
	if err != nil {
		return nil, err
	}
	info, err := parseAndVerify(der, ik, true)
	if err != nil {
		return nil, withSerial(err, want.Serial)
	}
	if err := info.check(want); err != nil {
		return nil, err
	}
	return info, nil
}

// Validator validates responses for a set of issuers and remembers, by the
// SHA-256 of their bytes, which responses it (or a [ResponseSigner] in this
// process) has already verified, so that validating the same bytes again
// costs a hash and a map lookup. Freshness and expectations are checked on
// every call. A Validator is safe for concurrent use.
type Validator struct {
	issuers map[IssuerID]*issuerKey
}

// issuerKey is an issuer certificate with what checking a CertID against
// it needs, computed once.
type issuerKey struct {
	cert                  *x509.Certificate
	id                    IssuerID
	sha1Name, sha1Key     []byte
	sha256Name, sha256Key []byte
}

func newIssuerKey(c *x509.Certificate) (*issuerKey, error) {
	if c == nil {
		return nil, errors.New("ocspstate: nil issuer certificate")
	}
	k := &issuerKey{cert: c, id: IssuerIDOf(c)}
	var err error
	if k.sha1Name, k.sha1Key, err = IssuerHashes(c, crypto.SHA1); err != nil {
		return nil, err
	}
	if k.sha256Name, k.sha256Key, err = IssuerHashes(c, crypto.SHA256); err != nil {
		return nil, err
	}
	return k, nil
}

// hashes returns the issuer's CertID hashes under h, SHA-1 or SHA-256.
func (k *issuerKey) hashes(h crypto.Hash) (name, key []byte) {
	if h == crypto.SHA256 {
		return k.sha256Name, k.sha256Key
	}
	return k.sha1Name, k.sha1Key
}

// NewValidator returns a Validator for responses about certificates issued
// by issuers.
func NewValidator(issuers ...*x509.Certificate) (*Validator, error) {
	v := &Validator{issuers: make(map[IssuerID]*issuerKey, len(issuers))}
	for _, c := range issuers {
		k, err := newIssuerKey(c)
		if err != nil {
			return nil, err
		}
		v.issuers[k.id] = k
	}
	return v, nil
}

// Issuer returns the issuer certificate for id.
func (v *Validator) Issuer(id IssuerID) (*x509.Certificate, bool) {
	k, ok := v.issuers[id]
	if !ok {
		return nil, false
	}
	return k.cert, true
}

// Issuers returns every issuer certificate the Validator knows.
func (v *Validator) Issuers() []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(v.issuers))
	for _, k := range v.issuers {
		out = append(out, k.cert)
	}
	return out
}

// Validate is [Validate] for the issuer named by id, with the signature
// check skipped for bytes already verified in this process. On error the
// info is nil.
func (v *Validator) Validate(der []byte, id IssuerID, want Expect) (*ResponseInfo, error) {
	// Only issuers this Validator knows, even for bytes verified
	// elsewhere in the process.
	ik, ok := v.issuers[id]
	if !ok {
		return nil, &ValidationError{Problem: ProblemUnknownIssuer, Serial: want.Serial, Detail: fmt.Sprintf("no certificate configured for issuer %s", id)}
	}
	sum := sha256.Sum256(der)
	if info, ok := verified.get(sum, id); ok {
		if err := info.check(want); err != nil {
			return nil, err
		}
		return info, nil
	}
	info, err := parseAndVerify(der, ik, true)
	if err != nil {
		return nil, withSerial(err, want.Serial)
	}
	verified.put(sum, info)
	if err := info.check(want); err != nil {
		return nil, err
	}
	return info, nil
}

// CheckRecord validates r's stored response at now: present, about r's
// serial, saying r's status, fresh.
func (v *Validator) CheckRecord(r *Record, now time.Time, skew time.Duration) (*ResponseInfo, error) {
	if len(r.OCSP.ResponseDER) == 0 {
		return nil, &ValidationError{Problem: ProblemMalformed, Serial: r.Serial, Detail: "no response stored"}
	}
	info, err := v.Validate(r.OCSP.ResponseDER, r.Issuer, ExpectRecord(r, now, skew))
	if err != nil {
		return nil, err
	}
	if !info.ThisUpdate.Equal(r.OCSP.ThisUpdate) || !info.NextUpdate.Equal(r.OCSP.NextUpdate) {
		return nil, &ValidationError{Problem: ProblemInterval, Serial: r.Serial, Detail: fmt.Sprintf(
			"record says thisUpdate %s nextUpdate %s, response says %s and %s (use Record.SetResponse)",
			fmtTime(r.OCSP.ThisUpdate), fmtTime(r.OCSP.NextUpdate), fmtTime(info.ThisUpdate), fmtTime(info.NextUpdate))}
	}
	return info, nil
}

func (info *ResponseInfo) check(want Expect) error {
	fail := func(p Problem, format string, args ...any) error {
		return &ValidationError{Problem: p, Serial: want.Serial, Detail: fmt.Sprintf(format, args...)}
	}
	if want.Serial == nil || info.Serial.Cmp(want.Serial) != 0 {
		return fail(ProblemSerial, "response is for serial %s", SerialHex(info.Serial))
	}
	if want.Status != 0 {
		if info.Status != want.Status {
			return fail(ProblemStatus, "response says %s, want %s", info.Status, want.Status)
		}
		if want.Status == Revoked {
			if wantAt := want.RevokedAt.Truncate(time.Second); !info.RevokedAt.Equal(wantAt) {
				return fail(ProblemStatus, "revocation time %s, want %s", fmtTime(info.RevokedAt), fmtTime(wantAt))
			}
			if info.Reason != want.Reason {
				return fail(ProblemStatus, "revocation reason %d, want %d", info.Reason, want.Reason)
			}
		}
	}
	if !want.Now.IsZero() {
		if p, detail := info.Fresh(want.Now, want.Skew); p != 0 {
			return fail(p, "%s", detail)
		}
	}
	return nil
}

// Fresh applies the checks of a response that depend on the clock, the
// same wherever a response is judged (store, responder, probe):
// thisUpdate no later than now plus skew, nextUpdate after now, and a
// delegated responder's certificate not expired. It returns 0, or the
// problem and what is wrong; only the time fields and Delegated are read.
func (info *ResponseInfo) Fresh(now time.Time, skew time.Duration) (Problem, string) {
	switch {
	case info.ThisUpdate.After(now.Add(skew)):
		return ProblemFuture, fmt.Sprintf("thisUpdate %s is after now %s", fmtTime(info.ThisUpdate), fmtTime(now))
	case !info.NextUpdate.After(now):
		return ProblemExpired, fmt.Sprintf("nextUpdate %s has passed (now %s)", fmtTime(info.NextUpdate), fmtTime(now))
	case info.Delegated && now.After(info.SignerNotAfter):
		return ProblemSigner, fmt.Sprintf("delegated responder certificate expired at %s", fmtTime(info.SignerNotAfter))
	}
	return 0, ""
}

func withSerial(err error, serial *big.Int) error {
	var ve *ValidationError
	if errors.As(err, &ve) && ve.Serial == nil && serial != nil {
		c := *ve
		c.Serial = serial
		return &c
	}
	return err
}

// Validity bounds of BR §4.9.9, where the interval is nextUpdate minus
// thisUpdate, inclusive: one second more than the plain difference.
const (
	MinResponseValidity = 8 * time.Hour
	MaxResponseValidity = 10 * 24 * time.Hour
)

// parseAndVerify does every check that depends only on the bytes and the
// issuer; verifySig false skips only the signature check (for responses a
// ResponseSigner just produced with a key it proved at construction).
func parseAndVerify(der []byte, ik *issuerKey, verifySig bool) (*ResponseInfo, error) {
	issuer, id := ik.cert, ik.id
	raw, err := parseResponse(der)
	if err != nil {
		return nil, err
	}
	info := &ResponseInfo{
		Serial:     raw.serial,
		RevokedAt:  raw.revokedAt,
		Reason:     raw.reason,
		ProducedAt: raw.producedAt,
		ThisUpdate: raw.thisUpdate,
		NextUpdate: raw.nextUpdate,
		issuer:     id,
	}
	switch raw.statusTag {
	case tagGood:
		info.Status = Good
	case tagRevoked:
		info.Status = Revoked
	default:
		return nil, &ValidationError{Problem: ProblemStatus, Serial: info.Serial, Detail: "status is unknown; only good and revoked are ever valid for a stored serial"}
	}
	if info.Serial.Sign() <= 0 {
		return nil, &ValidationError{Problem: ProblemSerial, Detail: "serial is not positive"}
	}

	// CertID must name the issuer under its own hash algorithm.
	switch {
	case raw.hashOID.Equal(oidSHA1):
		info.CertIDHash = crypto.SHA1
	case raw.hashOID.Equal(oidSHA256):
		info.CertIDHash = crypto.SHA256
	default:
		return nil, &ValidationError{Problem: ProblemCertID, Serial: info.Serial, Detail: fmt.Sprintf("CertID hash algorithm %v is neither SHA-1 nor SHA-256", raw.hashOID)}
	}
	nameHash, keyHash := ik.hashes(info.CertIDHash)
	if !bytes.Equal(raw.nameHash, nameHash) || !bytes.Equal(raw.keyHash, keyHash) {
		return nil, &ValidationError{Problem: ProblemCertID, Serial: info.Serial, Detail: "CertID issuer hashes do not match issuer " + issuer.Subject.String()}
	}

	if info.NextUpdate.IsZero() {
		return nil, &ValidationError{Problem: ProblemNoNextUpdate, Serial: info.Serial, Detail: "nextUpdate is absent; BR §4.9.9 requires it"}
	}
	if d := info.NextUpdate.Sub(info.ThisUpdate) + time.Second; d < MinResponseValidity || d > MaxResponseValidity {
		return nil, &ValidationError{Problem: ProblemInterval, Serial: info.Serial, Detail: fmt.Sprintf("validity interval %s (inclusive) is outside BR §4.9.9's %s..%s", d, MinResponseValidity, MaxResponseValidity)}
	}

	signer := issuer
	if raw.cert != nil {
		rc, err := x509.ParseCertificate(raw.cert)
		if err != nil {
			return nil, &ValidationError{Problem: ProblemSigner, Serial: info.Serial, Detail: fmt.Sprintf("embedded responder certificate does not parse: %v", err)}
		}
		if !hasOCSPSigning(rc) {
			return nil, &ValidationError{Problem: ProblemSigner, Serial: info.Serial, Detail: fmt.Sprintf("delegated responder %q lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", rc.Subject.String())}
		}
		if err := rc.CheckSignatureFrom(issuer); err != nil {
			return nil, &ValidationError{Problem: ProblemSigner, Serial: info.Serial, Detail: fmt.Sprintf("delegated responder %q is not signed by the issuer: %v", rc.Subject.String(), err)}
		}
		signer = rc
		info.Delegated = true
	}
	info.SignerNotAfter = signer.NotAfter
	if !responderIDMatches(raw, signer) {
		return nil, &ValidationError{Problem: ProblemSigner, Serial: info.Serial, Detail: fmt.Sprintf("responderID does not name the signer %q", signer.Subject.String())}
	}
	if verifySig {
		alg, ok := signatureAlgorithms[string(raw.sigAlg)]
		if !ok {
			return nil, &ValidationError{Problem: ProblemSignature, Serial: info.Serial, Detail: fmt.Sprintf("unsupported signature algorithm %x", raw.sigAlg)}
		}
		if err := signer.CheckSignature(alg, raw.tbs, raw.signature); err != nil {
			return nil, &ValidationError{Problem: ProblemSignature, Serial: info.Serial, Detail: fmt.Sprintf("signature does not verify with %q: %v", signer.Subject.String(), err)}
		}
	}
	return info, nil
}

// signatureAlgorithms maps the DER AlgorithmIdentifiers this package
// accepts (without parameters, or with an explicit NULL for RSA) to Go's
// names.
var signatureAlgorithms = map[string]x509.SignatureAlgorithm{}

func init() {
	for _, a := range derw.SignatureAlgorithms {
		signatureAlgorithms[string(derw.AlgorithmIdentifier(a.OID, a.Null))] = a.Alg
		if a.Null { // some encoders omit the NULL
			signatureAlgorithms[string(derw.AlgorithmIdentifier(a.OID, false))] = a.Alg
		}
	}
}

func hasOCSPSigning(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			return true
		}
	}
	return false
}

func responderIDMatches(raw *rawResponse, signer *x509.Certificate) bool {
	switch raw.responderTag {
	case 1:
		return bytes.Equal(raw.responderID, signer.RawSubject)
	case 2:
		_, keyHash, err := IssuerHashes(signer, crypto.SHA1)
		return err == nil && bytes.Equal(raw.responderID, keyHash)
	}
	return false
}

// IssuerHashes returns the CertID issuerNameHash and issuerKeyHash of
// issuer under h (SHA-1 or SHA-256): the hash of its DER subject and of its
// subjectPublicKey BIT STRING contents (RFC 6960 §4.1.1).
func IssuerHashes(issuer *x509.Certificate, h crypto.Hash) (nameHash, keyHash []byte, err error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) != 0 {
		return nil, nil, fmt.Errorf("ocspstate: parsing issuer public key: %v", err)
	}
	switch h {
	case crypto.SHA1:
		n, k := sha1.Sum(issuer.RawSubject), sha1.Sum(spki.PublicKey.RightAlign())
		return n[:], k[:], nil
	case crypto.SHA256:
		n, k := sha256.Sum256(issuer.RawSubject), sha256.Sum256(spki.PublicKey.RightAlign())
		return n[:], k[:], nil
	}
	return nil, nil, fmt.Errorf("ocspstate: CertID hash %v is not SHA-1 or SHA-256", h)
}

var (
	oidSHA1        = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidOCSPBasic   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	tagGood        = cbasn1.Tag(0).ContextSpecific()
	tagRevoked     = cbasn1.Tag(1).ContextSpecific().Constructed()
	tagUnknown     = cbasn1.Tag(2).ContextSpecific()
	tagResponderID = cbasn1.Tag(0).ContextSpecific().Constructed() // base; +1 byName, +2 byKey
)

type rawResponse struct {
	tbs, sigAlg, signature []byte
	cert                   []byte // the first embedded certificate, if any
	responderTag           int    // 1 byName, 2 byKey
	responderID            []byte
	producedAt             time.Time

	hashOID           asn1.ObjectIdentifier
	nameHash, keyHash []byte
	serial            *big.Int
	statusTag         cbasn1.Tag
	revokedAt         time.Time
	reason            int
	thisUpdate        time.Time
	nextUpdate        time.Time
}

// parseResponse reads a DER OCSPResponse (RFC 6960 §4.2.1) holding a basic
// response with exactly one SingleResponse. It is written here rather than
// taken from x/crypto/ocsp, which reads a SingleResponse without a
// certStatus as revoked and does not expose the CertID's issuer hashes; the
// auditor in package recovery parses with x/crypto, so two independent
// parsers check every stored response.
func parseResponse(der []byte) (*rawResponse, error) {
	malformed := func(what string) error {
		return &ValidationError{Problem: ProblemMalformed, Detail: what}
	}
	if len(der) == 0 {
		return nil, malformed("empty body")
	}
	in := cryptobyte.String(der)
	var resp cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed(fmt.Sprintf("%d bytes are not one DER OCSPResponse", len(der)))
	}
	var status int
	if !resp.ReadASN1Enum(&status) {
		return nil, malformed("no responseStatus")
	}
	if status != 0 {
		return nil, &ValidationError{Problem: ProblemNotSuccessful, Detail: fmt.Sprintf("responseStatus is %s (%d), not successful", responseStatusName(status), status)}
	}
	var rbExplicit, rb, octets cryptobyte.String
	var typ asn1.ObjectIdentifier
	if !resp.ReadASN1(&rbExplicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !resp.Empty() ||
		!rbExplicit.ReadASN1(&rb, cbasn1.SEQUENCE) || !rbExplicit.Empty() || !rb.ReadASN1ObjectIdentifier(&typ) ||
		!rb.ReadASN1(&octets, cbasn1.OCTET_STRING) || !rb.Empty() {
		return nil, malformed("no responseBytes")
	}
	if !typ.Equal(oidOCSPBasic) {
		return nil, &ValidationError{Problem: ProblemShape, Detail: fmt.Sprintf("response type %v is not id-pkix-ocsp-basic", typ)}
	}
	out := &rawResponse{}
	var basic, tbsEl, tbs, responses, sigAlg cryptobyte.String
	var sig asn1.BitString
	if !octets.ReadASN1(&basic, cbasn1.SEQUENCE) || !octets.Empty() ||
		!basic.ReadASN1Element(&tbsEl, cbasn1.SEQUENCE) || !basic.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) ||
		!basic.ReadASN1BitString(&sig) || sig.BitLength%8 != 0 {
		return nil, malformed("bad BasicOCSPResponse")
	}
	out.tbs, out.sigAlg, out.signature = tbsEl, sigAlg, sig.Bytes
	if basic.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var certsExplicit, certs, cert cryptobyte.String
		if !basic.ReadASN1(&certsExplicit, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
			!certsExplicit.ReadASN1(&certs, cbasn1.SEQUENCE) || !certsExplicit.Empty() {
			return nil, malformed("bad certs")
		}
		if !certs.Empty() {
			if !certs.ReadASN1Element(&cert, cbasn1.SEQUENCE) {
				return nil, malformed("bad embedded certificate")
			}
			out.cert = cert
		}
	}
	if !basic.Empty() {
		return nil, malformed("trailing data in BasicOCSPResponse")
	}

	tbsEl.ReadASN1(&tbs, cbasn1.SEQUENCE)
	if tbs.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var v cryptobyte.String
		var version int64
		if !tbs.ReadASN1(&v, cbasn1.Tag(0).ContextSpecific().Constructed()) || !v.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 0 {
			return nil, malformed("bad version (only v1 exists)")
		}
	}
	var rid cryptobyte.String
	var ridTag cbasn1.Tag
	if !tbs.ReadAnyASN1(&rid, &ridTag) {
		return nil, malformed("no responderID")
	}
	switch ridTag {
	case tagResponderID + 1:
		out.responderTag = 1
		var name cryptobyte.String
		if !rid.ReadASN1Element(&name, cbasn1.SEQUENCE) || !rid.Empty() {
			return nil, malformed("bad responderID byName")
		}
		out.responderID = name
	case tagResponderID + 2:
		out.responderTag = 2
		var kh cryptobyte.String
		if !rid.ReadASN1(&kh, cbasn1.OCTET_STRING) || !rid.Empty() {
			return nil, malformed("bad responderID byKey")
		}
		out.responderID = kh
	default:
		return nil, malformed("responderID is neither byName nor byKey")
	}
	if !readGeneralizedTime(&tbs, &out.producedAt) || !tbs.ReadASN1(&responses, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific().Constructed()) || !tbs.Empty() {
		return nil, malformed("bad producedAt, responses or responseExtensions")
	}
	var first cryptobyte.String
	n := 0
	for !responses.Empty() {
		var single cryptobyte.String
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) {
			return nil, malformed("bad SingleResponse")
		}
		if n == 0 {
			first = single
		}
		n++
	}
	if n != 1 {
		return nil, &ValidationError{Problem: ProblemShape, Detail: fmt.Sprintf("%d SingleResponses, want exactly 1", n)}
	}
	var certID, alg, nameHash, keyHash cryptobyte.String
	out.serial = new(big.Int)
	if !first.ReadASN1(&certID, cbasn1.SEQUENCE) || !certID.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&out.hashOID) || !certID.ReadASN1(&nameHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1(&keyHash, cbasn1.OCTET_STRING) || !certID.ReadASN1Integer(out.serial) || !certID.Empty() {
		return nil, malformed("bad CertID")
	}
	out.nameHash, out.keyHash = nameHash, keyHash
	var statusBody cryptobyte.String
	if !first.ReadAnyASN1(&statusBody, &out.statusTag) {
		return nil, &ValidationError{Problem: ProblemNoCertStatus, Detail: "SingleResponse ends after CertID"}
	}
	switch out.statusTag {
	case tagGood, tagUnknown:
		if !statusBody.Empty() {
			return nil, malformed("certStatus good/unknown is not NULL")
		}
	case tagRevoked:
		if !readGeneralizedTime(&statusBody, &out.revokedAt) {
			return nil, malformed("bad revocationTime")
		}
		if statusBody.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
			var r cryptobyte.String
			if !statusBody.ReadASN1(&r, cbasn1.Tag(0).ContextSpecific().Constructed()) || !r.ReadASN1Enum(&out.reason) || !r.Empty() {
				return nil, malformed("bad revocationReason")
			}
		}
		if !statusBody.Empty() {
			return nil, malformed("trailing data in revokedInfo")
		}
	default:
		return nil, &ValidationError{Problem: ProblemNoCertStatus, Detail: fmt.Sprintf("SingleResponse has no certStatus (found tag %#x after CertID)", uint8(out.statusTag))}
	}
	if !readGeneralizedTime(&first, &out.thisUpdate) {
		return nil, malformed("bad thisUpdate")
	}
	if first.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var nu cryptobyte.String
		if !first.ReadASN1(&nu, cbasn1.Tag(0).ContextSpecific().Constructed()) || !readGeneralizedTime(&nu, &out.nextUpdate) || !nu.Empty() {
			return nil, malformed("bad nextUpdate")
		}
	}
	if first.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		var extsExplicit, exts cryptobyte.String
		if !first.ReadASN1(&extsExplicit, cbasn1.Tag(1).ContextSpecific().Constructed()) || !extsExplicit.ReadASN1(&exts, cbasn1.SEQUENCE) {
			return nil, malformed("bad singleExtensions")
		}
		for !exts.Empty() {
			var ext cryptobyte.String
			var oid asn1.ObjectIdentifier
			critical := false
			if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
				(ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical)) {
				return nil, malformed("bad singleExtension")
			}
			if critical {
				return nil, &ValidationError{Problem: ProblemShape, Detail: fmt.Sprintf("critical single extension %v", oid)}
			}
		}
	}
	if !first.Empty() {
		return nil, malformed("trailing data in SingleResponse")
	}
	return out, nil
}

func responseStatusName(s int) string {
	switch s {
	case 1:
		return "malformedRequest"
	case 2:
		return "internalError"
	case 3:
		return "tryLater"
	case 5:
		return "sigRequired"
	case 6:
		return "unauthorized"
	}
	return "unassigned"
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// verified remembers responses whose signature has been checked (or which
// a ResponseSigner produced with a proven key), keyed by SHA-256 of their
// bytes. Bounded: each shard is dropped whole when full. Entries hold no
// pointers, so that a full cache (a quarter of a million responses, in a
// process that signs or serves them all day) costs the garbage collector
// nothing to mark; each hit builds a fresh ResponseInfo.
var verified = newVerifiedCache(1 << 18)

type verifiedCache struct {
	shards   [16]verifiedShard
	perShard int
}

type verifiedShard struct {
	mu sync.RWMutex
	m  map[[32]byte]verifiedInfo
}

// verifiedInfo is a ResponseInfo packed without pointers.
type verifiedInfo struct {
	issuer                                                   IssuerID
	serial                                                   [MaxSerialOctets]byte // big-endian, right-aligned
	status                                                   Status
	reason, certIDHash                                       uint8
	delegated                                                bool
	revokedAt, producedAt, thisUpdate, nextUpdate, signerEnd packedTime
}

// packedTime is a time.Time without its location (ResponseInfo's times
// are UTC). The zero time round-trips: time.Unix of its seconds and
// nanoseconds, in UTC, is time.Time{}.
type packedTime struct {
	sec  int64
	nsec int32
}

func packTime(t time.Time) packedTime { return packedTime{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (p packedTime) time() time.Time { return time.Unix(p.sec, int64(p.nsec)).UTC() }

// pack reports false for what the packed form cannot hold exactly; such a
// response is simply not remembered.
func pack(info *ResponseInfo) (verifiedInfo, bool) {
	v := verifiedInfo{issuer: info.issuer, status: info.Status, delegated: info.Delegated,
		revokedAt: packTime(info.RevokedAt), producedAt: packTime(info.ProducedAt), thisUpdate: packTime(info.ThisUpdate),
		nextUpdate: packTime(info.NextUpdate), signerEnd: packTime(info.SignerNotAfter)}
	if info.Serial == nil || info.Serial.Sign() <= 0 || (info.Serial.BitLen()+7)/8 > MaxSerialOctets ||
		info.Reason < 0 || info.Reason > 255 || info.CertIDHash > 255 {
		return v, false
	}
	for _, t := range []time.Time{info.RevokedAt, info.ProducedAt, info.ThisUpdate, info.NextUpdate, info.SignerNotAfter} {
		if !t.IsZero() && t.Location() != time.UTC {
			return v, false
		}
	}
	info.Serial.FillBytes(v.serial[:])
	v.reason, v.certIDHash = uint8(info.Reason), uint8(info.CertIDHash)
	return v, true
}

func (v *verifiedInfo) unpack() *ResponseInfo {
	return &ResponseInfo{
		Serial: new(big.Int).SetBytes(v.serial[:]), Status: v.status,
		RevokedAt: v.revokedAt.time(), Reason: int(v.reason), ProducedAt: v.producedAt.time(),
		ThisUpdate: v.thisUpdate.time(), NextUpdate: v.nextUpdate.time(),
		CertIDHash: crypto.Hash(v.certIDHash), Delegated: v.delegated, SignerNotAfter: v.signerEnd.time(),
		issuer: v.issuer,
	}
}

func newVerifiedCache(size int) *verifiedCache {
	c := &verifiedCache{perShard: size / 16}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]verifiedInfo)
	}
	return c
}

// get returns what is remembered of the bytes whose SHA-256 is sum, if
// they were verified for issuer.
func (c *verifiedCache) get(sum [32]byte, issuer IssuerID) (*ResponseInfo, bool) {
	s := &c.shards[sum[0]&15]
	s.mu.RLock()
	v, ok := s.m[sum]
	s.mu.RUnlock()
	if !ok || v.issuer != issuer {
		return nil, false
	}
	return v.unpack(), true
}

func (c *verifiedCache) put(sum [32]byte, info *ResponseInfo) {
	v, ok := pack(info)
	if !ok {
		return
	}
	s := &c.shards[sum[0]&15]
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		s.m = make(map[[32]byte]verifiedInfo, c.perShard)
	}
	s.m[sum] = v
	s.mu.Unlock()
}

// readGeneralizedTime is cryptobyte's ReadASN1GeneralizedTime, with a fast
// path for the one form a DER GeneralizedTime of whole seconds has
// ("YYYYMMDDHHMMSSZ", what every response of ours carries): it accepts
// and returns exactly what cryptobyte would, without cryptobyte's
// formatting of the result back to text to compare, which costs an
// allocation per time. Anything else goes to cryptobyte.
func readGeneralizedTime(s *cryptobyte.String, out *time.Time) bool {
	b := []byte(*s)
	if len(b) >= 2+15 && b[0] == byte(cbasn1.GeneralizedTime) && b[1] == 15 && b[16] == 'Z' {
		var v [6]int
		ok := true
		for i, w := range []int{4, 2, 2, 2, 2, 2} {
			at := 2 + 4*min(i, 1) + 2*max(i-1, 0)
			for j := range w {
				c := b[at+j]
				if c < '0' || c > '9' {
					ok = false
				}
				v[i] = v[i]*10 + int(c-'0')
			}
		}
		if ok {
			t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, time.UTC)
			// time.Date normalizes out-of-range fields (February 30,
			// hour 24, second 60); cryptobyte refuses them.
			if y, m, d := t.Date(); y == v[0] && int(m) == v[1] && d == v[2] && t.Hour() == v[3] && t.Minute() == v[4] && t.Second() == v[5] {
				*out = t
				*s = (*s)[17:]
				return true
			}
		}
	}
	return s.ReadASN1GeneralizedTime(out)
}
