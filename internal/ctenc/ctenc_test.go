package ctenc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/stretchr/testify/require"
)

func newRand(t *testing.T) *mrand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return mrand.New(mrand.NewPCG(seed, ^seed))
}

func randBytes(r *mrand.Rand, min, max int) []byte {
	b := make([]byte, min+r.IntN(max-min+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomLeaf returns a precert or x509 leaf with random contents.
func randomLeaf(r *mrand.Rand) *ct.MerkleTreeLeaf {
	te := &ct.TimestampedEntry{}
	if r.IntN(2) == 0 {
		te.EntryType = ct.PrecertLogEntryType
		pc := &ct.PreCert{TBSCertificate: randBytes(r, 1, 2000)}
		copy(pc.IssuerKeyHash[:], randBytes(r, 32, 32))
		te.PrecertEntry = pc
	} else {
		te.EntryType = ct.X509LogEntryType
		te.X509Entry = &ct.ASN1Cert{Data: randBytes(r, 1, 2000)}
	}
	return &ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType, TimestampedEntry: te}
}

// TestSignatureInputMatchesCTGo compares the digest of the signature input
// with that of certificate-transparency-go's SerializeSCTSignatureInput.
func TestSignatureInputMatchesCTGo(t *testing.T) {
	r := newRand(t)
	for range 2000 {
		leaf := randomLeaf(r)
		sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: r.Uint64(), Extensions: randBytes(r, 0, 40*r.IntN(2))}
		want, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
		require.NoError(t, err)
		e, err := LeafEntry(leaf)
		require.NoError(t, err)
		d, err := e.Digest(sct.Timestamp, sct.Extensions)
		require.NoError(t, err)
		require.Equal(t, sha256.Sum256(want), d)
	}
}

func TestEntryLimits(t *testing.T) {
	_, err := PrecertEntry([32]byte{}, nil)
	require.Error(t, err)
	_, err = X509Entry(nil)
	require.Error(t, err)
	_, err = PrecertEntry([32]byte{}, make([]byte, 1<<24))
	require.Error(t, err)
	e, err := PrecertEntry([32]byte{}, make([]byte, 1<<24-1))
	require.NoError(t, err)
	_, err = e.Digest(1, make([]byte, 1<<16))
	require.Error(t, err)
	_, err = Entry{}.Digest(1, nil)
	require.Error(t, err)
	_, err = LeafEntry(&ct.MerkleTreeLeaf{TimestampedEntry: &ct.TimestampedEntry{EntryType: 7}})
	require.Error(t, err)
}

var logKeys = sync.OnceValues(func() ([]crypto.Signer, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return []crypto.Signer{ec, rk}, nil
})

// ctSign signs as a log, with certificate-transparency-go (which wants
// key values, not pointers).
func ctSign(t *testing.T, key crypto.Signer, hash cttls.HashAlgorithm, input []byte) ct.DigitallySigned {
	t.Helper()
	var v any
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		v = *k
	case *rsa.PrivateKey:
		v = *k
	}
	ds, err := cttls.CreateSignature(v, hash, input)
	require.NoError(t, err)
	return ct.DigitallySigned(ds)
}

// TestVerifyMatchesCTGo signs SCTs with certificate-transparency-go and
// checks Verify agrees with its SignatureVerifier on them and on every
// kind of tampering, for ECDSA and RSA logs. Verify is never more
// lenient; it is stricter on two counts, each checked: a hash other than
// SHA-256, and bytes after an ECDSA signature.
func TestVerifyMatchesCTGo(t *testing.T) {
	keys, err := logKeys()
	require.NoError(t, err)
	r := newRand(t)
	tamper := []struct {
		name string
		f    func(*ct.SignedCertificateTimestamp, *ct.MerkleTreeLeaf)
	}{
		{"none", func(*ct.SignedCertificateTimestamp, *ct.MerkleTreeLeaf) {}},
		{"timestamp", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) { s.Timestamp++ }},
		{"extensions", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) { s.Extensions = append(s.Extensions, 0) }},
		{"signature bit", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) {
			s.Signature.Signature[r.IntN(len(s.Signature.Signature))] ^= 1 << r.IntN(8)
		}},
		{"signature truncated", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) {
			s.Signature.Signature = s.Signature.Signature[:len(s.Signature.Signature)-1]
		}},
		{"signature trailing byte", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) {
			s.Signature.Signature = append(s.Signature.Signature, 0)
		}},
		{"signature algorithm", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) {
			s.Signature.Algorithm.Signature = []cttls.SignatureAlgorithm{cttls.RSA, cttls.ECDSA, cttls.DSA}[r.IntN(3)]
		}},
		{"version", func(s *ct.SignedCertificateTimestamp, _ *ct.MerkleTreeLeaf) { s.SCTVersion = 1 }},
		{"entry", func(_ *ct.SignedCertificateTimestamp, l *ct.MerkleTreeLeaf) {
			if pc := l.TimestampedEntry.PrecertEntry; pc != nil {
				if r.IntN(2) == 0 {
					pc.IssuerKeyHash[r.IntN(32)] ^= 1
				} else {
					pc.TBSCertificate[r.IntN(len(pc.TBSCertificate))] ^= 1
				}
			} else {
				l.TimestampedEntry.X509Entry.Data[0] ^= 1
			}
		}},
	}
	for _, key := range keys {
		v, err := ct.NewSignatureVerifier(key.Public())
		require.NoError(t, err)
		for i := range 300 {
			leaf := randomLeaf(r)
			sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: r.Uint64() >> 1, Extensions: randBytes(r, 0, 20*r.IntN(2))}
			input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
			require.NoError(t, err)
			sct.Signature = ctSign(t, key, cttls.SHA256, input)
			tm := tamper[i%len(tamper)]
			tm.f(&sct, leaf)
			want := v.VerifySCTSignature(sct, ct.LogEntry{Leaf: *leaf})
			e, err := LeafEntry(leaf)
			require.NoError(t, err)
			got := Verify(key.Public(), e, &sct)
			if _, isEC := key.(*ecdsa.PrivateKey); isEC && tm.name == "signature trailing byte" {
				// certificate-transparency-go logs "Garbage following
				// signature" and accepts; an ASN.1 signature with
				// trailing bytes is not DER, and Verify refuses it.
				require.NoError(t, want)
				require.Error(t, got)
				continue
			}
			require.Equal(t, want == nil, got == nil, "%T, tampered %s: certificate-transparency-go says %v, Verify says %v", key, tm.name, want, got)
			if tm.name == "none" {
				require.NoError(t, got)
			} else if tm.name != "signature algorithm" {
				require.Error(t, got, "tampered %s", tm.name)
			}
		}
		// Signed with SHA-384: certificate-transparency-go accepts it;
		// RFC 6962 §2.1.4 does not, and neither does Verify.
		leaf := randomLeaf(r)
		sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: 1}
		input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
		require.NoError(t, err)
		sct.Signature = ctSign(t, key, cttls.SHA384, input)
		require.NoError(t, v.VerifySCTSignature(sct, ct.LogEntry{Leaf: *leaf}))
		e, err := LeafEntry(leaf)
		require.NoError(t, err)
		require.ErrorContains(t, Verify(key.Public(), e, &sct), "SHA-256")
	}
	require.Error(t, Verify("not a key", Entry{}, &ct.SignedCertificateTimestamp{Signature: ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256}}}))
}

// TestSignECDSAVerifiesWithCTGo: what SignECDSA signs, certificate-
// transparency-go verifies.
func TestSignECDSAVerifiesWithCTGo(t *testing.T) {
	keys, err := logKeys()
	require.NoError(t, err)
	key := keys[0].(*ecdsa.PrivateKey)
	v, err := ct.NewSignatureVerifier(key.Public())
	require.NoError(t, err)
	r := newRand(t)
	for range 200 {
		leaf := randomLeaf(r)
		e, err := LeafEntry(leaf)
		require.NoError(t, err)
		ts, exts := r.Uint64(), randBytes(r, 0, 10*r.IntN(2))
		dsRaw, err := SignECDSA(nil, key, e, ts, exts)
		require.NoError(t, err)
		var ds ct.DigitallySigned
		rest, err := cttls.Unmarshal(dsRaw, &ds)
		require.NoError(t, err)
		require.Empty(t, rest)
		sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: ts, Extensions: exts, Signature: ds}
		require.NoError(t, v.VerifySCTSignature(sct, ct.LogEntry{Leaf: *leaf}))
		require.NoError(t, Verify(key.Public(), e, &sct))
	}
}

// TestSCTEncodingMatchesCTGo compares MarshalSCT and ParseSCT with
// certificate-transparency-go's tls.Marshal and tls.Unmarshal.
func TestSCTEncodingMatchesCTGo(t *testing.T) {
	r := newRand(t)
	for range 2000 {
		sct := &ct.SignedCertificateTimestamp{
			SCTVersion: ct.Version(r.IntN(3)), Timestamp: r.Uint64(), Extensions: randBytes(r, 0, 30*r.IntN(2)),
			Signature: ct.DigitallySigned{
				Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.HashAlgorithm(r.IntN(256)), Signature: cttls.SignatureAlgorithm(r.IntN(256))},
				Signature: randBytes(r, 0, 80),
			},
		}
		copy(sct.LogID.KeyID[:], randBytes(r, 32, 32))
		want, err := cttls.Marshal(*sct)
		require.NoError(t, err)
		got, err := MarshalSCT(sct)
		require.NoError(t, err)
		require.Equal(t, want, got)
		compareParse(t, append(got, randBytes(r, 0, 3)...))
		compareParse(t, got[:r.IntN(len(got))])
	}
	for _, bad := range []*ct.SignedCertificateTimestamp{
		{SCTVersion: 256},
		{Extensions: make([]byte, 1<<16)},
		{Signature: ct.DigitallySigned{Signature: make([]byte, 1<<16)}},
		{Signature: ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: 256}}},
	} {
		_, werr := cttls.Marshal(*bad)
		require.Error(t, werr)
		_, err := MarshalSCT(bad)
		require.Error(t, err)
	}
}

// compareParse checks ParseSCT and tls.Unmarshal agree on b.
func compareParse(t testing.TB, b []byte) {
	t.Helper()
	var want ct.SignedCertificateTimestamp
	wrest, werr := cttls.Unmarshal(b, &want)
	got, rest, err := ParseSCT(b)
	require.Equal(t, werr == nil, err == nil, "tls.Unmarshal: %v, ParseSCT: %v, input %x", werr, err, b)
	if err != nil {
		return
	}
	require.Equal(t, &want, got)
	require.Equal(t, wrest, rest)
	ds, drest, derr := ParseDigitallySigned(b[len(b)-len(rest)-4-len(got.Signature.Signature):])
	require.NoError(t, derr)
	require.Equal(t, want.Signature, ds)
	require.Equal(t, wrest, drest)
}

// FuzzParseSCT compares ParseSCT with tls.Unmarshal, and MarshalSCT with
// tls.Marshal on what parses.
func FuzzParseSCT(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 45))
	f.Add(append(make([]byte, 41), 0, 1, 9, 4, 3, 0, 2, 1, 2, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		compareParse(t, b)
		if got, _, err := ParseSCT(b); err == nil {
			want, werr := cttls.Marshal(*got)
			require.NoError(t, werr)
			raw, err := MarshalSCT(got)
			require.NoError(t, err)
			require.Equal(t, want, raw)
		}
	})
}
