package ctsubmit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
)

// Log is a CT log a [Submitter] may submit to and whose SCTs it trusts.
//
// Build one by hand, or load Chrome's list with [LoadLogList]. A Log is
// read-only once handed to [New]: the Submitter keeps the pointer and
// returns it in [SCT.Log].
type Log struct {
	// Name identifies the log in errors, log lines and metrics (the
	// "description" of the v3 log list). Required, unique per Submitter.
	Name string
	// Operator is the organisation running the log. The policies count
	// operators by this name, so logs of one operator must carry the same
	// string (the log list's operator "name"). Required.
	Operator string
	// URL is where the log takes submissions: the RFC 6962 base URL, or a
	// static-ct-api log's submission prefix. add-pre-chain is POSTed to
	// URL + "/ct/v1/add-pre-chain". Required; http or https.
	URL string
	// Key is the log's public key as a DER SubjectPublicKeyInfo: ECDSA
	// P-256 or RSA of at least 2048 bits (RFC 6962 §2.1.4). The log's ID
	// is its SHA-256. Required.
	Key []byte
	// Tiled marks a static-ct-api (tiled) log. Submission is the same;
	// the policies require at least one SCT from a log that is not tiled.
	Tiled bool
	// TemporalStart and TemporalEnd bound the NotAfter of the certificates
	// the log accepts: TemporalStart ≤ NotAfter < TemporalEnd. A zero
	// value leaves that side open.
	TemporalStart, TemporalEnd time.Time
	// Retired is when the log was retired; zero means it is not. An SCT
	// from a retired log counts towards a policy only if it was issued
	// before that instant, and a Submitter never submits to a log retired
	// at the time of the call. [LoadLogList] never returns retired logs:
	// set this by hand to audit older certificates.
	Retired time.Time
}

// ID returns the log's ID: the SHA-256 of its DER public key (RFC 6962
// §3.2). Every SCT the log issues must carry it.
func (l *Log) ID() [sha256.Size]byte { return sha256.Sum256(l.Key) }

// Accepts reports whether the log's temporal interval admits a certificate
// with this NotAfter.
func (l *Log) Accepts(notAfter time.Time) bool {
	if !l.TemporalStart.IsZero() && notAfter.Before(l.TemporalStart) {
		return false
	}
	if !l.TemporalEnd.IsZero() && !notAfter.Before(l.TemporalEnd) {
		return false
	}
	return true
}

// RetiredAt reports whether the log is retired at t.
func (l *Log) RetiredAt(t time.Time) bool {
	return !l.Retired.IsZero() && !t.Before(l.Retired)
}

// String returns the name, operator and URL, for messages.
func (l *Log) String() string {
	return fmt.Sprintf("%q (%s, %s)", l.Name, l.Operator, l.URL)
}

// check validates l and returns its parsed key: an *ecdsa.PublicKey on
// P-256 or an *rsa.PublicKey of at least 2048 bits.
func (l *Log) check() (crypto.PublicKey, error) {
	if l.Name == "" {
		return nil, fmt.Errorf("log at %q has no Name", l.URL)
	}
	if l.Operator == "" {
		return nil, fmt.Errorf("log %q has no Operator", l.Name)
	}
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("log %q: URL %q is not an absolute http or https URL", l.Name, l.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("log %q: URL %q has a query or fragment", l.Name, l.URL)
	}
	if len(l.Key) == 0 {
		return nil, fmt.Errorf("log %q has no Key", l.Name)
	}
	pub, err := x509.ParsePKIXPublicKey(l.Key)
	if err != nil {
		return nil, fmt.Errorf("log %q: parsing Key: %w", l.Name, err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("log %q: Key is ECDSA on %s, RFC 6962 logs use P-256", l.Name, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("log %q: Key is RSA-%d, RFC 6962 logs use at least 2048 bits", l.Name, k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("log %q: Key is a %T, RFC 6962 logs use ECDSA P-256 or RSA", l.Name, pub)
	}
	if !l.TemporalStart.IsZero() && !l.TemporalEnd.IsZero() && !l.TemporalStart.Before(l.TemporalEnd) {
		return nil, fmt.Errorf("log %q: empty temporal interval [%s, %s)", l.Name,
			l.TemporalStart.Format(time.RFC3339), l.TemporalEnd.Format(time.RFC3339))
	}
	return pub, nil
}

// submitURL is where add-pre-chain is POSTed.
func (l *Log) submitURL() string {
	return strings.TrimRight(l.URL, "/") + ct.AddPreChainPath
}
