// Package ctenc encodes and decodes, without reflection, the few RFC 6962
// TLS structures on the issuance path: a v1 SignedCertificateTimestamp, its
// DigitallySigned, and the digitally-signed struct an SCT's signature
// covers (§3.2). It signs and verifies that struct with SHA-256 and ECDSA
// or RSA PKCS #1 v1.5, as §2.1.4 requires of logs.
//
// It uses certificate-transparency-go's types, so that its results are
// interchangeable with that module's reflection-based tls.Marshal,
// tls.Unmarshal, SerializeSCTSignatureInput and SignatureVerifier; its
// tests compare them on random inputs. ctsubmit verifies SCTs with it, and
// the test log of internal/ctlogtest signs with it; ctsubmit's acceptance
// tests check embedded SCTs with certificate-transparency-go's
// ctutil.VerifySCT, independently.
package ctenc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
)

// Limits of the TLS vectors involved (RFC 6962 §3.2, RFC 5246 §7.4.1.4.1).
const (
	maxCert  = 1<<24 - 1 // ASN.1Cert and TBSCertificate: opaque<1..2^24-1>
	maxShort = 1<<16 - 1 // CtExtensions and the signature: opaque<0..2^16-1>
)

// Entry is the signed_entry of an SCT's signature input with its
// entry_type: a precert_entry (the issuer key hash and the TBS without the
// poison) or an x509_entry (the certificate). Build it once per
// certificate; it is immutable and safe to share.
type Entry struct {
	// head is entry_type followed by the signed_entry up to body, which
	// is the TBS or certificate itself, not copied.
	head, body []byte
}

// PrecertEntry returns the entry for a precertificate (RFC 6962 §3.2
// PreCert): issuerKeyHash, the SHA-256 of the issuer's
// subjectPublicKeyInfo, and tbs, the precertificate's TBSCertificate
// without the poison extension. The entry refers to tbs, which must not
// change while it is in use.
func PrecertEntry(issuerKeyHash [sha256.Size]byte, tbs []byte) (Entry, error) {
	if len(tbs) < 1 || len(tbs) > maxCert {
		return Entry{}, fmt.Errorf("ctenc: TBSCertificate of %d bytes is outside 1..2^24-1", len(tbs))
	}
	head := make([]byte, 0, 2+sha256.Size+3)
	head = binary.BigEndian.AppendUint16(head, uint16(ct.PrecertLogEntryType))
	head = append(head, issuerKeyHash[:]...)
	head = appendUint24(head, len(tbs))
	return Entry{head: head, body: tbs}, nil
}

// X509Entry returns the entry for a certificate (RFC 6962 §3.2
// ASN.1Cert). The entry refers to cert, which must not change while it is
// in use.
func X509Entry(cert []byte) (Entry, error) {
	if len(cert) < 1 || len(cert) > maxCert {
		return Entry{}, fmt.Errorf("ctenc: certificate of %d bytes is outside 1..2^24-1", len(cert))
	}
	head := make([]byte, 0, 2+3)
	head = binary.BigEndian.AppendUint16(head, uint16(ct.X509LogEntryType))
	head = appendUint24(head, len(cert))
	return Entry{head: head, body: cert}, nil
}

// LeafEntry returns the entry of a Merkle tree leaf's timestamped entry.
func LeafEntry(leaf *ct.MerkleTreeLeaf) (Entry, error) {
	if leaf == nil || leaf.TimestampedEntry == nil {
		return Entry{}, errors.New("ctenc: leaf without a timestamped entry")
	}
	te := leaf.TimestampedEntry
	switch te.EntryType {
	case ct.PrecertLogEntryType:
		if te.PrecertEntry == nil {
			return Entry{}, errors.New("ctenc: precert leaf without a PreCert")
		}
		return PrecertEntry(te.PrecertEntry.IssuerKeyHash, te.PrecertEntry.TBSCertificate)
	case ct.X509LogEntryType:
		if te.X509Entry == nil {
			return Entry{}, errors.New("ctenc: x509 leaf without a certificate")
		}
		return X509Entry(te.X509Entry.Data)
	}
	return Entry{}, fmt.Errorf("ctenc: unsupported entry type %v", te.EntryType)
}

// prefix returns sct_version (v1), signature_type (certificate_timestamp)
// and timestamp: what precedes the entry in the signature input.
func prefix(timestamp uint64) [10]byte {
	var p [10]byte
	p[0] = byte(ct.V1)
	p[1] = byte(ct.CertificateTimestampSignatureType)
	binary.BigEndian.PutUint64(p[2:], timestamp)
	return p
}

// Digest returns the SHA-256 of the digitally-signed struct of an SCT
// issued at timestamp with extensions exts over e (RFC 6962 §3.2):
// sct_version, signature_type, timestamp, entry_type, signed_entry,
// extensions; without building it.
func (e Entry) Digest(timestamp uint64, exts []byte) ([sha256.Size]byte, error) {
	if len(e.head) == 0 {
		return [sha256.Size]byte{}, errors.New("ctenc: empty entry")
	}
	if len(exts) > maxShort {
		return [sha256.Size]byte{}, fmt.Errorf("ctenc: %d bytes of SCT extensions, the most is 65535", len(exts))
	}
	h := sha256.New()
	p := prefix(timestamp)
	h.Write(p[:])
	h.Write(e.head)
	h.Write(e.body)
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(exts)))
	h.Write(n[:])
	h.Write(exts)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

// Verify checks that sct's signature verifies with pub (an
// *ecdsa.PublicKey or *rsa.PublicKey) over e: a v1 SCT, a DigitallySigned
// with SHA-256 and the signature algorithm of pub's type, and a valid
// signature. It does not check the LogID or the timestamp.
//
// It is stricter than certificate-transparency-go's SignatureVerifier in
// two ways: RFC 6962 §2.1.4 has logs sign with SHA-256, and a
// DigitallySigned naming any other hash is refused here, where that
// module would hash with it; and an ECDSA signature must be exactly one
// DER ECDSA-Sig-Value, where that module ignores bytes after it.
func Verify(pub crypto.PublicKey, e Entry, sct *ct.SignedCertificateTimestamp) error {
	if sct == nil {
		return errors.New("ctenc: nil SCT")
	}
	if sct.SCTVersion != ct.V1 {
		return fmt.Errorf("ctenc: SCT version %d, only v1 (0) exists", sct.SCTVersion)
	}
	alg := sct.Signature.Algorithm
	if alg.Hash != cttls.SHA256 {
		return fmt.Errorf("ctenc: signature hash %v, RFC 6962 logs sign with SHA-256", alg.Hash)
	}
	digest, err := e.Digest(sct.Timestamp, sct.Extensions)
	if err != nil {
		return err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg.Signature != cttls.ECDSA {
			return fmt.Errorf("ctenc: signature algorithm %v, the log's key is ECDSA", alg.Signature)
		}
		if !ecdsa.VerifyASN1(k, digest[:], sct.Signature.Signature) {
			return errors.New("ctenc: ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if alg.Signature != cttls.RSA {
			return fmt.Errorf("ctenc: signature algorithm %v, the log's key is RSA", alg.Signature)
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sct.Signature.Signature); err != nil {
			return fmt.Errorf("ctenc: RSA signature does not verify: %w", err)
		}
		return nil
	}
	return fmt.Errorf("ctenc: unsupported log key type %T", pub)
}

// SignECDSA signs, as a log with key does, the signature input of an SCT
// issued at timestamp with extensions exts over e, and returns the
// TLS-encoded DigitallySigned (SHA-256, ECDSA, ASN.1 signature). rand is
// the randomness source (crypto/rand if nil).
func SignECDSA(rnd io.Reader, key *ecdsa.PrivateKey, e Entry, timestamp uint64, exts []byte) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	digest, err := e.Digest(timestamp, exts)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rnd, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("ctenc: signing: %w", err)
	}
	return AppendDigitallySigned(nil, ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	})
}

// AppendDigitallySigned appends the TLS encoding of ds (RFC 5246
// §4.7): hash, signature algorithm, and the signature as opaque<0..2^16-1>.
func AppendDigitallySigned(dst []byte, ds ct.DigitallySigned) ([]byte, error) {
	if ds.Algorithm.Hash > 255 || ds.Algorithm.Signature > 255 {
		return nil, fmt.Errorf("ctenc: algorithm %v does not fit in a byte", ds.Algorithm)
	}
	if len(ds.Signature) > maxShort {
		return nil, fmt.Errorf("ctenc: signature of %d bytes, the most is 65535", len(ds.Signature))
	}
	dst = append(dst, byte(ds.Algorithm.Hash), byte(ds.Algorithm.Signature))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ds.Signature)))
	return append(dst, ds.Signature...), nil
}

// ParseDigitallySigned decodes a TLS-encoded DigitallySigned at the start
// of b and returns it (its signature a copy) and what follows it.
func ParseDigitallySigned(b []byte) (ct.DigitallySigned, []byte, error) {
	var ds ct.DigitallySigned
	if len(b) < 4 {
		return ds, nil, errors.New("ctenc: truncated DigitallySigned")
	}
	ds.Algorithm.Hash = cttls.HashAlgorithm(b[0])
	ds.Algorithm.Signature = cttls.SignatureAlgorithm(b[1])
	sig, rest, err := readOpaque16(b[2:])
	if err != nil {
		return ds, nil, fmt.Errorf("ctenc: DigitallySigned signature: %w", err)
	}
	ds.Signature = sig
	return ds, rest, nil
}

// MarshalSCT returns the TLS encoding of sct (RFC 6962 §3.2
// SignedCertificateTimestamp), what tls.Marshal(*sct) returns.
func MarshalSCT(sct *ct.SignedCertificateTimestamp) ([]byte, error) {
	if sct.SCTVersion > 255 {
		return nil, fmt.Errorf("ctenc: SCT version %d does not fit in a byte", sct.SCTVersion)
	}
	if len(sct.Extensions) > maxShort {
		return nil, fmt.Errorf("ctenc: %d bytes of SCT extensions, the most is 65535", len(sct.Extensions))
	}
	out := make([]byte, 0, 1+32+8+2+len(sct.Extensions)+4+len(sct.Signature.Signature))
	out = append(out, byte(sct.SCTVersion))
	out = append(out, sct.LogID.KeyID[:]...)
	out = binary.BigEndian.AppendUint64(out, sct.Timestamp)
	out = binary.BigEndian.AppendUint16(out, uint16(len(sct.Extensions)))
	out = append(out, sct.Extensions...)
	return AppendDigitallySigned(out, sct.Signature)
}

// ParseSCT decodes a TLS-encoded SignedCertificateTimestamp at the start of
// raw, as tls.Unmarshal does (any version byte; the slices are copies,
// never nil), and returns what follows it.
func ParseSCT(raw []byte) (*ct.SignedCertificateTimestamp, []byte, error) {
	const fixed = 1 + 32 + 8
	if len(raw) < fixed {
		return nil, nil, errors.New("ctenc: truncated SCT")
	}
	sct := &ct.SignedCertificateTimestamp{SCTVersion: ct.Version(raw[0]), Timestamp: binary.BigEndian.Uint64(raw[33:fixed])}
	copy(sct.LogID.KeyID[:], raw[1:33])
	exts, rest, err := readOpaque16(raw[fixed:])
	if err != nil {
		return nil, nil, fmt.Errorf("ctenc: SCT extensions: %w", err)
	}
	sct.Extensions = exts
	if sct.Signature, rest, err = ParseDigitallySigned(rest); err != nil {
		return nil, nil, err
	}
	return sct, rest, nil
}

// readOpaque16 reads an opaque<0..2^16-1>, returning a copy (never nil).
func readOpaque16(b []byte) ([]byte, []byte, error) {
	if len(b) < 2 {
		return nil, nil, errors.New("truncated length")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return nil, nil, fmt.Errorf("length %d with %d bytes left", n, len(b))
	}
	v := make([]byte, n)
	copy(v, b)
	return v, b[n:], nil
}

func appendUint24(dst []byte, n int) []byte {
	return append(dst, byte(n>>16), byte(n>>8), byte(n))
}
