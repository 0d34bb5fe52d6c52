package ctsubmit

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/certpipe/precert/internal/ctenc"
	"github.com/certpipe/precert/internal/tbs"
	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// OIDSCTList is the X.509v3 extension that carries embedded SCTs in a final
// certificate (RFC 6962 §3.3): 1.3.6.1.4.1.11129.2.4.2.
var OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// OIDPoison is the critical poison extension that makes a certificate a
// precertificate (RFC 6962 §3.1): 1.3.6.1.4.1.11129.2.4.3.
var OIDPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

// PoisonExtension returns the extension that makes a certificate a
// precertificate (RFC 6962 §3.1): OIDPoison, critical, with an ASN.1 NULL
// value. Each call returns its own copy.
func PoisonExtension() pkix.Extension {
	return pkix.Extension{Id: OIDPoison, Critical: true, Value: bytes.Clone(poisonValue)}
}

// poisonValue is the DER NULL that is the poison extension's value.
var poisonValue = []byte{0x05, 0x00}

// SCT is a verified signed certificate timestamp and the log that issued it.
type SCT struct {
	// Log is the log that issued the SCT: one of [Config.Logs], or of
	// the logs given to [VerifyEmbedded].
	Log *Log
	// Parsed is the decoded SCT.
	Parsed *ct.SignedCertificateTimestamp
	// Raw is the SCT's TLS encoding (RFC 6962 §3.2): what a CA stores
	// and hands to [SCTListExtension].
	Raw []byte
}

// Timestamp returns the time the log issued the SCT.
func (s SCT) Timestamp() time.Time { return time.UnixMilli(int64(s.Parsed.Timestamp)) }

// maxSCTListLen bounds the TLS-encoded list and each SCT in it
// (RFC 6962 §3.3: opaque SerializedSCT<1..2^16-1>).
const maxSCTListLen = 1<<16 - 1

// SCTListExtension builds the non-critical SCT list extension (RFC 6962
// §3.3, OID 1.3.6.1.4.1.11129.2.4.2) embedding raws, the TLS-encoded SCTs
// of [SCT.Raw], in the given order. Each must decode as a v1 SCT. The
// extension's value is an OCTET STRING holding the TLS-encoded
// SignedCertificateTimestampList. [ParseSCTList] reverses it.
func SCTListExtension(raws [][]byte) (pkix.Extension, error) {
	if len(raws) == 0 {
		return pkix.Extension{}, errors.New("ctsubmit: SCT list: no SCTs")
	}
	list := make([]byte, 2, 2+len(raws)*128)
	for i, raw := range raws {
		if _, err := parseSCT(raw); err != nil {
			return pkix.Extension{}, fmt.Errorf("ctsubmit: SCT list: SCT %d: %w", i, err)
		}
		list = append(list, byte(len(raw)>>8), byte(len(raw)))
		list = append(list, raw...)
	}
	n := len(list) - 2
	if n > maxSCTListLen {
		return pkix.Extension{}, fmt.Errorf("ctsubmit: SCT list: %d bytes of SCTs, the most is %d", n, maxSCTListLen)
	}
	list[0], list[1] = byte(n>>8), byte(n)
	value, err := asn1.Marshal(list)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("ctsubmit: SCT list: %w", err)
	}
	return pkix.Extension{Id: OIDSCTList, Value: value}, nil
}

// ParseSCTList decodes the value of an SCT list extension (RFC 6962 §3.3)
// into TLS-encoded SCTs, refusing trailing bytes, empty lists and entries
// that do not decode as v1 SCTs. The slices returned are copies. It parses
// bytes from outside, and is fuzzed.
func ParseSCTList(extValue []byte) ([][]byte, error) {
	var list []byte
	rest, err := asn1.Unmarshal(extValue, &list)
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: SCT list: not an OCTET STRING: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("ctsubmit: SCT list: %d trailing bytes after the OCTET STRING", len(rest))
	}
	if len(list) < 2 {
		return nil, errors.New("ctsubmit: SCT list: shorter than its length prefix")
	}
	n := int(list[0])<<8 | int(list[1])
	body := list[2:]
	if n != len(body) {
		return nil, fmt.Errorf("ctsubmit: SCT list: length prefix says %d bytes, %d follow", n, len(body))
	}
	if n == 0 {
		return nil, errors.New("ctsubmit: SCT list: empty")
	}
	var raws [][]byte
	for len(body) > 0 {
		if len(body) < 2 {
			return nil, fmt.Errorf("ctsubmit: SCT list: SCT %d: truncated length", len(raws))
		}
		m := int(body[0])<<8 | int(body[1])
		body = body[2:]
		if m == 0 || m > len(body) {
			return nil, fmt.Errorf("ctsubmit: SCT list: SCT %d: length %d with %d bytes left", len(raws), m, len(body))
		}
		raw := bytes.Clone(body[:m])
		body = body[m:]
		if _, err := parseSCT(raw); err != nil {
			return nil, fmt.Errorf("ctsubmit: SCT list: SCT %d: %w", len(raws), err)
		}
		raws = append(raws, raw)
	}
	return raws, nil
}

// parseSCT decodes a TLS-encoded v1 SCT with nothing after it.
func parseSCT(raw []byte) (*ct.SignedCertificateTimestamp, error) {
	sct, rest, err := ctenc.ParseSCT(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding SCT: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%d trailing bytes after the SCT", len(rest))
	}
	if sct.SCTVersion != ct.V1 {
		return nil, fmt.Errorf("SCT version %d, only v1 (0) exists", sct.SCTVersion)
	}
	return sct, nil
}

// precertChain is the validity of a submitted precertificate and the
// Merkle tree leaf its SCTs sign (RFC 6962 §3.2), built once per Submit.
type precertChain struct {
	leaf      ct.MerkleTreeLeaf
	entry     ctenc.Entry // the leaf's entry, as SCT signatures cover it
	notBefore time.Time
	notAfter  time.Time
}

// issuers caches parsed issuer certificates by their DER: a CA submits
// thousands of precertificates under the same few issuers. Parsed
// certificates are immutable, so sharing them is safe.
var issuers = struct {
	sync.RWMutex
	m map[string]*x509.Certificate
}{m: map[string]*x509.Certificate{}}

func parseIssuer(der []byte) (*x509.Certificate, error) {
	issuers.RLock()
	c, ok := issuers.m[string(der)] // no copy of der for a lookup
	issuers.RUnlock()
	if ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	issuers.Lock()
	if len(issuers.m) >= 1024 { // bound the cache; start over
		clear(issuers.m)
	}
	issuers.m[string(der)] = c
	issuers.Unlock()
	return c, nil
}

// parsePrecertChain reads what Submit needs of chain[0] — its TBS, its
// poison extension (which must be critical NULL), its validity — with a
// DER parser of its own rather than crypto/x509's full one: the CA that
// signed it has parsed it, and logs check what they accept. The issuer,
// chain[1], is parsed with crypto/x509 (once per issuer).
func parsePrecertChain(chain [][]byte) (*precertChain, error) {
	if len(chain) < 2 {
		return nil, fmt.Errorf("chain has %d certificates, want the precertificate then its issuer chain", len(chain))
	}
	tbsDER, outerAlg, _, err := tbs.SplitCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("parsing chain[0]: %w", err)
	}
	t, err := tbs.Parse(tbsDER)
	if err != nil {
		return nil, fmt.Errorf("parsing chain[0]: %w", err)
	}
	if !bytes.Equal(outerAlg, t.SigAlg) {
		return nil, errors.New("parsing chain[0]: the signature algorithm differs from the TBSCertificate's")
	}
	notBefore, notAfter, err := t.Times()
	if err != nil {
		return nil, fmt.Errorf("parsing chain[0]: %w", err)
	}
	kept := make([]tbs.Extension, 0, len(t.Exts))
	for _, e := range t.Exts {
		if !e.Is(OIDPoison) {
			kept = append(kept, e)
		} else if !e.Critical || !bytes.Equal(e.Value, poisonValue) {
			return nil, errors.New("chain[0] has a poison extension that is not critical ASN.1 NULL (RFC 6962 §3.1)")
		}
	}
	if len(kept) == len(t.Exts) {
		return nil, errors.New("chain[0] is not a precertificate: it has no poison extension (RFC 6962 §3.1)")
	}
	issuer, err := parseIssuer(chain[1])
	if err != nil {
		return nil, fmt.Errorf("parsing chain[1]: %w", err)
	}
	var leaf *ct.MerkleTreeLeaf
	if slices.ContainsFunc(issuer.UnknownExtKeyUsage, OIDPrecertSigning.Equal) {
		// A precertificate signing certificate (RFC 6962 §3.1): let
		// certificate-transparency-go rewrite issuer and key identifier.
		raw := make([]ct.ASN1Cert, min(len(chain), 3))
		for i := range raw {
			raw[i] = ct.ASN1Cert{Data: chain[i]}
		}
		leaf, err = ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, 0)
	} else {
		// The common case, without parsing every certificate again with
		// certificate-transparency-go's slower parser: the same leaf as
		// MerkleTreeLeafFromRawChain builds (a test checks it).
		t.Exts = kept
		leaf, err = directPrecertLeaf(t, issuer.RawSubjectPublicKeyInfo)
	}
	if err != nil {
		return nil, fmt.Errorf("building the precertificate leaf: %w", err)
	}
	entry, err := ctenc.LeafEntry(leaf)
	if err != nil {
		return nil, fmt.Errorf("building the precertificate leaf: %w", err)
	}
	return &precertChain{leaf: *leaf, entry: entry, notBefore: notBefore, notAfter: notAfter}, nil
}

// OIDPrecertSigning is the extended key usage that marks a precertificate
// signing certificate (RFC 6962 §3.1).
var OIDPrecertSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}

// PrecertLeaf returns the Merkle tree leaf, with a zero timestamp, that a
// CT log signs for the precertificate chain[0] (RFC 6962 §3.2): its TBS
// without the poison extension, and the SHA-256 of its issuer's
// subjectPublicKeyInfo, the issuer being chain[1] or, when chain[1] is a
// precertificate signing certificate, chain[2]. It checks chain as
// [Submitter.Submit] does, and builds the leaf that Submit verifies SCTs
// against.
func PrecertLeaf(chain [][]byte) (*ct.MerkleTreeLeaf, error) {
	pc, err := parsePrecertChain(chain)
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: %w", err)
	}
	return &pc.leaf, nil
}

// directPrecertLeaf builds the leaf for a precertificate its CA signed
// directly, from the precertificate's TBS without the poison and the CA's
// subjectPublicKeyInfo.
func directPrecertLeaf(entryTBS *tbs.TBS, issuerSPKI []byte) (*ct.MerkleTreeLeaf, error) {
	entry, err := entryTBS.Marshal()
	if err != nil {
		return nil, err
	}
	return &ct.MerkleTreeLeaf{
		Version:  ct.V1,
		LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(issuerSPKI),
				TBSCertificate: entry,
			},
		},
	}, nil
}

// verify checks sct's LogID against id, its log's ID, and its signature
// with pub, the log's key (not its timestamp).
func (pc *precertChain) verify(id [sha256.Size]byte, pub crypto.PublicKey, sct *ct.SignedCertificateTimestamp) error {
	if sct.LogID.KeyID != id {
		// The LogID is not covered by the signature (RFC 6962 §3.2):
		// without this check a log could claim another log's SCT.
		return fmt.Errorf("LogID %x is not the log's ID %x", sct.LogID.KeyID[:], id[:])
	}
	if err := ctenc.Verify(pub, pc.entry, sct); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// VerifySCT checks that sct was issued by log for the precertificate
// chain[0], issued by chain[1] (or by the CA after a precertificate
// signing certificate, RFC 6962 §3.1): its LogID is log's ID and its
// signature, SHA-256 with log's key (§2.1.4), verifies over the
// precertificate entry (§3.2). It does not judge the timestamp; a
// [Submitter] also checks that.
func VerifySCT(log *Log, chain [][]byte, sct *ct.SignedCertificateTimestamp) error {
	if log == nil || sct == nil {
		return errors.New("ctsubmit: VerifySCT: nil log or SCT")
	}
	pub, err := log.check()
	if err != nil {
		return fmt.Errorf("ctsubmit: %w", err)
	}
	pc, err := parsePrecertChain(chain)
	if err != nil {
		return fmt.Errorf("ctsubmit: %w", err)
	}
	if err := pc.verify(log.ID(), pub, sct); err != nil {
		return fmt.Errorf("ctsubmit: SCT from log %q: %w", log.Name, err)
	}
	return nil
}

// VerifyEmbedded verifies every SCT embedded in final, a certificate issued
// by issuer, against logs, with certificate-transparency-go's
// ctutil.VerifySCT in its embedded mode: the signature must cover the
// precertificate that final corresponds to (final's TBS less the SCT list,
// RFC 6962 §3.2). It returns the SCTs, in embedded order, with the log of
// each, so that a caller can then apply a [Policy].
//
// It fails if final has no SCT list, if the list does not parse, if an
// SCT names no log in logs, if two SCTs name the same log, or if any
// signature fails; the error names each SCT that failed. Timestamps are
// not judged.
func VerifyEmbedded(final, issuer *x509.Certificate, logs []*Log) ([]SCT, error) {
	if final == nil || issuer == nil {
		return nil, errors.New("ctsubmit: VerifyEmbedded: nil certificate")
	}
	var ext *pkix.Extension
	for i := range final.Extensions {
		if final.Extensions[i].Id.Equal(OIDSCTList) {
			ext = &final.Extensions[i]
		}
	}
	if ext == nil {
		return nil, errors.New("ctsubmit: certificate has no SCT list extension")
	}
	raws, err := ParseSCTList(ext.Value)
	if err != nil {
		return nil, err
	}
	byID := make(map[[32]byte]*Log, len(logs))
	for _, l := range logs {
		if l != nil {
			byID[l.ID()] = l
		}
	}
	ctFinal, err := ctx509.ParseCertificate(final.Raw)
	if ctx509.IsFatal(err) {
		return nil, fmt.Errorf("ctsubmit: parsing the certificate with certificate-transparency-go: %w", err)
	}
	ctIssuer, err := ctx509.ParseCertificate(issuer.Raw)
	if ctx509.IsFatal(err) {
		return nil, fmt.Errorf("ctsubmit: parsing the issuer with certificate-transparency-go: %w", err)
	}
	var (
		out  []SCT
		errs []error
		seen = map[[32]byte]int{}
	)
	for i, raw := range raws {
		sct, _ := parseSCT(raw) // ParseSCTList checked it
		log := byID[sct.LogID.KeyID]
		if log == nil {
			errs = append(errs, fmt.Errorf("SCT %d: LogID %x is none of the %d logs given", i, sct.LogID.KeyID[:], len(logs)))
			continue
		}
		if j, dup := seen[sct.LogID.KeyID]; dup {
			errs = append(errs, fmt.Errorf("SCT %d: a second SCT from log %q (first is SCT %d)", i, log.Name, j))
			continue
		}
		seen[sct.LogID.KeyID] = i
		if err := verifyEmbeddedSCT(log, ctFinal, ctIssuer, sct); err != nil {
			errs = append(errs, fmt.Errorf("SCT %d from log %q: %w", i, log.Name, err))
			continue
		}
		out = append(out, SCT{Log: log, Parsed: sct, Raw: raw})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ctsubmit: embedded SCTs: %w", errors.Join(errs...))
	}
	return out, nil
}

func verifyEmbeddedSCT(log *Log, final, issuer *ctx509.Certificate, sct *ct.SignedCertificateTimestamp) error {
	pub, err := x509.ParsePKIXPublicKey(log.Key)
	if err != nil {
		return fmt.Errorf("parsing the log's key: %w", err)
	}
	return ctutil.VerifySCT(pub, []*ctx509.Certificate{final, issuer}, sct, true)
}
