package recovery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/ocspstate"
)

// Kinds of violation the auditor reports.
const (
	KindOCSPDisabled      = "ocsp-disabled"      // I1: a published record without OCSP
	KindNoResponse        = "no-response"        // I2: a published record without a response
	KindResponseInvalid   = "response-invalid"   // I2/I5: does not parse, or not signed by the issuer or a valid delegate
	KindResponseSerial    = "response-serial"    // the response is about another serial
	KindResponseCertID    = "response-cert-id"   // the response's CertID does not name the issuer
	KindResponseStatus    = "response-status"    // status, revocation time or reason differ from the record
	KindResponseStale     = "response-stale"     // I6: not fresh now, or past its BR re-signing deadline
	KindResponseInterval  = "response-interval"  // I6: validity interval outside 8h..10d
	KindPrecert           = "precert"            // the precertificate is not what the record says
	KindIntent            = "intent"             // the precertificate's TBS differs from the reserved intent
	KindFinalMismatch     = "final-mismatch"     // I4: the final certificate does not correspond
	KindSCT               = "sct"                // embedded SCTs missing, different from the record's, or not verifying
	KindDuplicateSerial   = "duplicate-serial"   // I3: one serial held by two records of one issuer
	KindStaleReservation  = "stale-reservation"  // a reservation older than its lease
	KindStalled           = "stalled"            // a precertificate in flight with an expired lease
	KindUnknownIssuer     = "unknown-issuer"     // a record of an issuer the audit was not given
	KindAbandonedResidual = "abandoned-residual" // an abandoned record holding signed material
)

// Violation is one broken invariant on one record.
type Violation struct {
	Issuer ocspstate.IssuerID
	Serial *big.Int
	State  ocspstate.State
	Kind   string
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s [%s] %s: %s", v.Issuer, ocspstate.SerialHex(v.Serial), v.State, v.Kind, v.Detail)
}

// Auditor checks invariants I1–I6 over every record of a store. It shares
// no code path with the pipeline or the store's own validation: responses
// are parsed with x/crypto/ocsp and checked here, final certificates are
// compared field by field from Go's parsed certificates, SCTs are verified
// with certificate-transparency-go.
type Auditor struct {
	// Issuers are the issuing CA certificates. Records of other issuers
	// are reported.
	Issuers []*x509.Certificate
	// Logs verify the SCTs embedded in final certificates. Nil checks
	// that they are present and match the record, without signatures.
	Logs []*ctsubmit.Log
	// ExpiryMargin must match the store's due policy: responses must stay
	// fresh until NotAfter plus this margin.
	ExpiryMargin time.Duration
	// Skew is the tolerance for thisUpdate ahead of now. Zero means 5
	// minutes.
	Skew time.Duration
	// Workers verify records concurrently. Zero means 4.
	Workers int
}

// Audit is Auditor{Issuers: issuers}.Audit: every check but the SCT
// signatures (which need the logs' keys).
func Audit(ctx context.Context, store ocspstate.Store, issuers []*x509.Certificate, now time.Time) ([]Violation, error) {
	a := &Auditor{Issuers: issuers}
	return a.Audit(ctx, store, now)
}

// Audit scans every record of store and returns the violations found at
// now, sorted by serial. It reads only; a store that is being written to
// may show a record mid-way, so audit a quiet store (or accept that
// in-flight records are judged by their leases).
func (a *Auditor) Audit(ctx context.Context, store ocspstate.Store, now time.Time) ([]Violation, error) {
	issuers := map[ocspstate.IssuerID]*x509.Certificate{}
	for _, c := range a.Issuers {
		issuers[ocspstate.IssuerIDOf(c)] = c
	}
	logs := map[[32]byte]*ctsubmit.Log{}
	for _, l := range a.Logs {
		logs[l.ID()] = l
	}
	skew := a.Skew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	workers := a.Workers
	if workers <= 0 {
		workers = 4
	}
	var (
		mu    sync.Mutex
		out   []Violation
		seen  = map[string]ocspstate.Key{} // issuer ‖ precert serial → record key
		work  = make(chan *ocspstate.Record, workers)
		wg    sync.WaitGroup
		check = &recordCheck{issuers: issuers, logs: logs, now: now, skew: skew, margin: a.ExpiryMargin}
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				vs := check.run(r)
				mu.Lock()
				out = append(out, vs...)
				mu.Unlock()
			}
		}()
	}
	scanErr := store.Scan(ctx, func(r *ocspstate.Record) error {
		if len(r.PrecertDER) > 0 {
			if p, err := x509.ParseCertificate(r.PrecertDER); err == nil {
				k := string(r.Issuer[:]) + string(p.SerialNumber.Bytes())
				mu.Lock()
				if prev, dup := seen[k]; dup {
					out = append(out, Violation{r.Issuer, r.Serial, r.State, KindDuplicateSerial,
						fmt.Sprintf("its precertificate's serial is also held by record %x", []byte(prev))})
				} else {
					seen[k] = r.Key()
				}
				mu.Unlock()
			}
		}
		select {
		case work <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	if scanErr != nil {
		return nil, fmt.Errorf("recovery: audit scan: %w", scanErr)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].Issuer[:], out[j].Issuer[:]); c != 0 {
			return c < 0
		}
		if c := out[i].Serial.Cmp(out[j].Serial); c != 0 {
			return c < 0
		}
		return out[i].Kind < out[j].Kind
	})
	return out, nil
}

type recordCheck struct {
	issuers map[ocspstate.IssuerID]*x509.Certificate
	logs    map[[32]byte]*ctsubmit.Log
	now     time.Time
	skew    time.Duration
	margin  time.Duration
}

func (c *recordCheck) run(r *ocspstate.Record) []Violation {
	var vs []Violation
	add := func(kind, format string, args ...any) {
		vs = append(vs, Violation{r.Issuer, r.Serial, r.State, kind, fmt.Sprintf(format, args...)})
	}
	issuer, ok := c.issuers[r.Issuer]
	if !ok {
		add(KindUnknownIssuer, "no issuer certificate given for issuer %s", r.Issuer)
		return vs
	}
	switch r.State {
	case ocspstate.Reserved:
		if !c.now.Before(r.Lease.Expires) {
			add(KindStaleReservation, "reserved %s, lease (owner %q) expired %s", r.Created.UTC().Format(time.RFC3339), r.Lease.Owner, r.Lease.Expires.UTC().Format(time.RFC3339))
		}
		return vs
	case ocspstate.Abandoned:
		if len(r.PrecertDER) > 0 || len(r.OCSP.ResponseDER) > 0 || len(r.FinalDER) > 0 {
			add(KindAbandonedResidual, "an abandoned serial holds a precertificate, a response or a final certificate")
		}
		return vs
	}
	if (r.State == ocspstate.Precert || r.State == ocspstate.SCTs) && !c.now.Before(r.Lease.Expires) {
		add(KindStalled, "in %s with lease (owner %q) expired %s: run a sweep", r.State, r.Lease.Owner, r.Lease.Expires.UTC().Format(time.RFC3339))
	}

	precert, err := x509.ParseCertificate(r.PrecertDER)
	if err != nil {
		add(KindPrecert, "precertificate does not parse: %v", err)
	} else {
		c.checkPrecert(r, precert, issuer, add)
	}

	if !r.OCSP.Enabled {
		add(KindOCSPDisabled, "a precertificate exists but OCSP is not enabled")
	}
	if c.now.Before(r.NotAfter.Add(c.margin)) {
		c.checkResponse(r, issuer, add)
	}

	if r.State == ocspstate.Issued && precert != nil {
		final, err := x509.ParseCertificate(r.FinalDER)
		if err != nil {
			add(KindFinalMismatch, "final certificate does not parse: %v", err)
		} else {
			c.checkFinal(r, precert, final, issuer, add)
		}
	}
	return vs
}

func (c *recordCheck) checkPrecert(r *ocspstate.Record, p, issuer *x509.Certificate, add func(string, string, ...any)) {
	if p.SerialNumber.Cmp(r.Serial) != 0 {
		add(KindPrecert, "precertificate serial %s differs from the record's", ocspstate.SerialHex(p.SerialNumber))
	}
	if err := p.CheckSignatureFrom(issuer); err != nil {
		add(KindPrecert, "precertificate is not signed by the issuer: %v", err)
	}
	if !hasExt(p, ctsubmit.OIDPoison, true) {
		add(KindPrecert, "precertificate lacks the critical CT poison extension")
	}
	if !bytes.Equal(p.RawTBSCertificate, r.IntentDER) {
		add(KindIntent, "precertificate TBS differs from the reserved intent")
	}
	if !p.NotAfter.Equal(r.NotAfter) || !p.NotBefore.Equal(r.NotBefore) {
		add(KindPrecert, "precertificate validity differs from the record's")
	}
}

// Our own view of the parts of a BasicOCSPResponse x/crypto does not expose.
type auditCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	KeyHash       []byte
	Serial        *big.Int
}

type auditSingle struct {
	CertID auditCertID
	Status asn1.RawValue
	Rest   asn1.RawContent `asn1:"optional"`
}

type auditTBS struct {
	Version     int `asn1:"optional,explicit,default:0,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []asn1.RawValue
	Exts        asn1.RawValue `asn1:"optional,explicit,tag:1"`
}

func (c *recordCheck) checkResponse(r *ocspstate.Record, issuer *x509.Certificate, add func(string, string, ...any)) {
	der := r.OCSP.ResponseDER
	if len(der) == 0 {
		add(KindNoResponse, "no OCSP response stored")
		return
	}
	resp, err := ocsp.ParseResponseForCert(der, nil, issuer)
	if err != nil {
		add(KindResponseInvalid, "%d-byte response does not verify: %v", len(der), err)
		return
	}
	if resp.Certificate != nil && !hasEKU(resp.Certificate, x509.ExtKeyUsageOCSPSigning) {
		add(KindResponseInvalid, "delegated responder %q lacks id-kp-OCSPSigning", resp.Certificate.Subject.String())
	}
	if resp.SerialNumber.Cmp(r.Serial) != 0 {
		add(KindResponseSerial, "response is for serial %s", ocspstate.SerialHex(resp.SerialNumber))
	}
	// CertID and certStatus, read with our own ASN.1 structures.
	var tbs auditTBS
	var single auditSingle
	if rest, err := asn1.Unmarshal(resp.TBSResponseData, &tbs); err != nil || len(rest) != 0 || len(tbs.Responses) != 1 {
		add(KindResponseInvalid, "response data does not hold exactly one SingleResponse")
	} else if rest, err := asn1.Unmarshal(tbs.Responses[0].FullBytes, &single); err != nil || len(rest) != 0 {
		add(KindResponseInvalid, "SingleResponse does not parse: %v", err)
	} else {
		if single.Status.Class != asn1.ClassContextSpecific || single.Status.Tag > 2 {
			add(KindResponseStatus, "SingleResponse has no certStatus (tag class %d, tag %d)", single.Status.Class, single.Status.Tag)
		}
		var h crypto.Hash
		switch {
		case single.CertID.HashAlgorithm.Algorithm.Equal(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}):
			h = crypto.SHA1
		case single.CertID.HashAlgorithm.Algorithm.Equal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}):
			h = crypto.SHA256
		}
		name, key := issuerHashes(issuer, h)
		if name == nil || !bytes.Equal(name, single.CertID.NameHash) || !bytes.Equal(key, single.CertID.KeyHash) {
			add(KindResponseCertID, "CertID does not name issuer %q", issuer.Subject.String())
		}
	}
	switch r.OCSP.Status {
	case ocspstate.Good:
		if resp.Status != ocsp.Good {
			add(KindResponseStatus, "record is good, response says status %d", resp.Status)
		}
	case ocspstate.Revoked:
		if resp.Status != ocsp.Revoked {
			add(KindResponseStatus, "record is revoked, response says status %d", resp.Status)
		} else if !resp.RevokedAt.Equal(r.OCSP.RevokedAt.Truncate(time.Second)) || resp.RevocationReason != r.OCSP.Reason {
			add(KindResponseStatus, "revoked at %s reason %d in the response, %s reason %d in the record",
				resp.RevokedAt.UTC().Format(time.RFC3339), resp.RevocationReason, r.OCSP.RevokedAt.UTC().Format(time.RFC3339), r.OCSP.Reason)
		}
	default:
		add(KindResponseStatus, "record status %v is neither good nor revoked", r.OCSP.Status)
	}
	if resp.NextUpdate.IsZero() {
		add(KindResponseInterval, "no nextUpdate")
		return
	}
	interval := resp.NextUpdate.Sub(resp.ThisUpdate) + time.Second // BR §4.9.9 counts inclusively
	if interval < 8*time.Hour || interval > 10*24*time.Hour {
		add(KindResponseInterval, "validity interval %s outside 8h..10d", interval)
	}
	if resp.ThisUpdate.After(c.now.Add(c.skew)) {
		add(KindResponseStale, "thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !resp.NextUpdate.After(c.now) {
		add(KindResponseStale, "nextUpdate %s has passed", resp.NextUpdate.UTC().Format(time.RFC3339))
		return
	}
	// BR §4.9.9: re-signed at least 8 hours before nextUpdate and at most
	// 4 days after thisUpdate (intervals of 16 hours or more); before half
	// the interval otherwise. Only while the certificate is unexpired.
	var deadline time.Time
	if interval >= 16*time.Hour {
		deadline = resp.NextUpdate.Add(-8 * time.Hour)
		if d := resp.ThisUpdate.Add(96 * time.Hour); d.Before(deadline) {
			deadline = d
		}
	} else {
		deadline = resp.ThisUpdate.Add(interval / 2)
	}
	if c.now.After(deadline) && c.now.Before(r.NotAfter) {
		add(KindResponseStale, "should have been re-signed by %s (BR §4.9.9)", deadline.UTC().Format(time.RFC3339))
	}
}

func (c *recordCheck) checkFinal(r *ocspstate.Record, p, f, issuer *x509.Certificate, add func(string, string, ...any)) {
	if err := f.CheckSignatureFrom(issuer); err != nil {
		add(KindFinalMismatch, "final certificate is not signed by the issuer: %v", err)
	}
	var diffs []string
	if f.SerialNumber.Cmp(p.SerialNumber) != 0 {
		diffs = append(diffs, "serial")
	}
	if !bytes.Equal(f.RawIssuer, p.RawIssuer) {
		diffs = append(diffs, "issuer")
	}
	if !bytes.Equal(f.RawSubject, p.RawSubject) {
		diffs = append(diffs, "subject")
	}
	if !f.NotBefore.Equal(p.NotBefore) || !f.NotAfter.Equal(p.NotAfter) {
		diffs = append(diffs, "validity")
	}
	if !bytes.Equal(f.RawSubjectPublicKeyInfo, p.RawSubjectPublicKeyInfo) {
		diffs = append(diffs, "public key")
	}
	if f.SignatureAlgorithm != p.SignatureAlgorithm || f.Version != p.Version {
		diffs = append(diffs, "signature algorithm or version")
	}
	pe, fe := without(p.Extensions, ctsubmit.OIDPoison), without(f.Extensions, ctsubmit.OIDSCTList)
	if len(pe) != len(fe) {
		diffs = append(diffs, fmt.Sprintf("%d extensions besides poison vs %d besides the SCT list", len(pe), len(fe)))
	} else {
		for i := range pe {
			if !pe[i].Id.Equal(fe[i].Id) || pe[i].Critical != fe[i].Critical || !bytes.Equal(pe[i].Value, fe[i].Value) {
				diffs = append(diffs, "extension "+pe[i].Id.String())
			}
		}
	}
	if hasExt(f, ctsubmit.OIDPoison, false) {
		diffs = append(diffs, "poison still present")
	}
	if len(diffs) > 0 {
		add(KindFinalMismatch, "differs from its precertificate in %s", strings.Join(diffs, ", "))
	}

	// The embedded SCTs: present, the ones the record holds, verifying.
	var ext []byte
	for _, e := range f.Extensions {
		if e.Id.Equal(ctsubmit.OIDSCTList) {
			ext = e.Value
		}
	}
	if ext == nil {
		add(KindSCT, "final certificate embeds no SCT list")
		return
	}
	var inner []byte
	if rest, err := asn1.Unmarshal(ext, &inner); err != nil || len(rest) != 0 {
		add(KindSCT, "SCT list extension is not an OCTET STRING")
		return
	}
	var list ctx509.SignedCertificateTimestampList
	if rest, err := cttls.Unmarshal(inner, &list); err != nil || len(rest) != 0 {
		add(KindSCT, "SCT list does not parse: %v", err)
		return
	}
	if len(list.SCTList) != len(r.SCTs) {
		add(KindSCT, "final embeds %d SCTs, record holds %d", len(list.SCTList), len(r.SCTs))
	} else {
		for i := range r.SCTs {
			if !bytes.Equal(list.SCTList[i].Val, r.SCTs[i]) {
				add(KindSCT, "embedded SCT %d differs from the record's", i)
			}
		}
	}
	if len(c.logs) == 0 {
		return
	}
	leaf, err := ctx509.ParseCertificate(f.Raw)
	if err != nil && !ctx509.IsFatal(err) {
		err = nil
	}
	iss, err2 := ctx509.ParseCertificate(issuer.Raw)
	if err2 != nil && !ctx509.IsFatal(err2) {
		err2 = nil
	}
	if err != nil || err2 != nil {
		add(KindSCT, "cannot parse for SCT verification: %v %v", err, err2)
		return
	}
	for i, s := range list.SCTList {
		var sct ct.SignedCertificateTimestamp
		if rest, err := cttls.Unmarshal(s.Val, &sct); err != nil || len(rest) != 0 {
			add(KindSCT, "embedded SCT %d does not parse: %v", i, err)
			continue
		}
		log, ok := c.logs[sct.LogID.KeyID]
		if !ok {
			add(KindSCT, "embedded SCT %d is from unknown log %x", i, sct.LogID.KeyID[:8])
			continue
		}
		pub, err := ctx509.ParsePKIXPublicKey(log.Key)
		if err != nil {
			add(KindSCT, "log %s has an unusable key: %v", log.Name, err)
			continue
		}
		v, err := ct.NewSignatureVerifier(pub)
		if err != nil {
			add(KindSCT, "log %s: %v", log.Name, err)
			continue
		}
		entry, err := ct.MerkleTreeLeafForEmbeddedSCT([]*ctx509.Certificate{leaf, iss}, sct.Timestamp)
		if err == nil {
			err = v.VerifySCTSignature(sct, ct.LogEntry{Leaf: *entry})
		}
		if err != nil {
			add(KindSCT, "embedded SCT %d from log %s does not verify: %v", i, log.Name, err)
		}
	}
}

func without(exts []pkix.Extension, oid asn1.ObjectIdentifier) []pkix.Extension {
	var out []pkix.Extension
	for _, e := range exts {
		if !e.Id.Equal(oid) {
			out = append(out, e)
		}
	}
	return out
}

func hasExt(c *x509.Certificate, oid asn1.ObjectIdentifier, critical bool) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) && (!critical || e.Critical) {
			return true
		}
	}
	return false
}

// hasEKU and issuerHashes repeat what package ocspstate does on purpose:
// the auditor must not share a code path with what it audits.
func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want {
			return true
		}
	}
	return false
}

func issuerHashes(issuer *x509.Certificate, h crypto.Hash) (name, key []byte) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil
	}
	switch h {
	case crypto.SHA1:
		n, k := sha1.Sum(issuer.RawSubject), sha1.Sum(spki.PublicKey.RightAlign())
		return n[:], k[:]
	case crypto.SHA256:
		n, k := sha256.Sum256(issuer.RawSubject), sha256.Sum256(spki.PublicKey.RightAlign())
		return n[:], k[:]
	}
	return nil, nil
}
