package ocspstate_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
)

// basicParts splits a DER OCSPResponse into everything but the signature
// value: the outer wrapping up to the BasicOCSPResponse, then its
// tbsResponseData, signatureAlgorithm and certs. Two responses signed
// over the same data differ only in the signature bits.
func basicParts(t *testing.T, der []byte) (tbs, sigAlg, certs []byte) {
	t.Helper()
	in := cryptobyte.String(der)
	var resp, status, rb, bytesSeq, basicOctets, basic cryptobyte.String
	var oid []byte
	require.True(t, in.ReadASN1(&resp, cbasn1.SEQUENCE) && in.Empty())
	require.True(t, resp.ReadASN1(&status, cbasn1.ENUM) && string(status) == "\x00")
	require.True(t, resp.ReadASN1(&rb, cbasn1.Tag(0).Constructed().ContextSpecific()) && resp.Empty())
	require.True(t, rb.ReadASN1(&bytesSeq, cbasn1.SEQUENCE) && rb.Empty())
	require.True(t, bytesSeq.ReadASN1Element((*cryptobyte.String)(&oid), cbasn1.OBJECT_IDENTIFIER))
	require.True(t, bytesSeq.ReadASN1(&basicOctets, cbasn1.OCTET_STRING) && bytesSeq.Empty())
	require.True(t, basicOctets.ReadASN1(&basic, cbasn1.SEQUENCE) && basicOctets.Empty())
	var sig cryptobyte.String
	require.True(t, basic.ReadASN1Element((*cryptobyte.String)(&tbs), cbasn1.SEQUENCE))
	require.True(t, basic.ReadASN1Element((*cryptobyte.String)(&sigAlg), cbasn1.SEQUENCE))
	require.True(t, basic.ReadASN1(&sig, cbasn1.BIT_STRING))
	certs = []byte(basic)
	return tbs, sigAlg, certs
}

// p384CA is a self-signed P-384 issuer: testpki has P-256 and RSA only.
func p384CA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "P-384 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// TestEncoderMatchesXCrypto holds the signer's own encoder to what
// x/crypto/ocsp.CreateResponse writes for the same response: every byte
// but the signature's, for each key type, CertID hash, status, reason,
// delegated responder or not, and serials at the INTEGER encoding's edges.
func TestEncoderMatchesXCrypto(t *testing.T) {
	type signerKey struct {
		name              string
		issuer, responder *x509.Certificate
		key               crypto.Signer
	}
	var keys []signerKey
	for _, kt := range testpki.KeyTypes {
		ca := testpki.Shared(t, kt)
		keys = append(keys,
			signerKey{kt.String(), ca.Intermediate, nil, ca.IntermediateKey},
			signerKey{kt.String() + "/delegated", ca.Intermediate, ca.Responder, ca.ResponderKey})
	}
	p384, p384Key := p384CA(t)
	keys = append(keys, signerKey{"P-384", p384, nil, p384Key})

	serials := []*big.Int{big.NewInt(1), big.NewInt(0x7f), big.NewInt(0x80), big.NewInt(0xff00),
		new(big.Int).Lsh(big.NewInt(1), 143), new(big.Int).Lsh(big.NewInt(1), 158), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))}
	type statusCase struct {
		status ocspstate.Status
		reason int
	}
	statuses := []statusCase{{ocspstate.Good, 0}}
	for reason := 0; reason <= 10; reason++ {
		if reason != 7 {
			statuses = append(statuses, statusCase{ocspstate.Revoked, reason})
		}
	}
	revokedAt := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	for _, k := range keys {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			signer := newSigner(t, ocspstate.SignerConfig{Issuer: k.issuer, Responder: k.responder, Key: k.key, CertIDHash: h})
			for _, serial := range serials {
				for _, st := range statuses {
					name := fmt.Sprintf("%s/%v/serial-%x/%s-%d", k.name, h, serial, st.status, st.reason)
					ours, theirs := signBoth(t, signer, k.issuer, k.responder, k.key, h, serial, st.status, revokedAt, st.reason)
					oursTBS, oursAlg, oursCerts := basicParts(t, ours)
					theirTBS, theirAlg, theirCerts := basicParts(t, theirs)
					require.Equal(t, theirTBS, oursTBS, "%s: tbsResponseData", name)
					require.Equal(t, theirAlg, oursAlg, "%s: signatureAlgorithm", name)
					require.Equal(t, theirCerts, oursCerts, "%s: certs", name)
					parsed, err := ocsp.ParseResponseForCert(ours, nil, k.issuer)
					require.NoError(t, err, "%s: x/crypto parses and verifies ours", name)
					require.Zero(t, parsed.SerialNumber.Cmp(serial), name)
				}
			}
		}
	}
}

// signBoth signs with signer, then has x/crypto sign the same response:
// same times (read back from ours) and producedAt (x/crypto takes the
// current minute; retried if the minute turned in between).
func signBoth(t *testing.T, signer *ocspstate.ResponseSigner, issuer, responder *x509.Certificate, key crypto.Signer,
	h crypto.Hash, serial *big.Int, status ocspstate.Status, revokedAt time.Time, reason int) (ours, theirs []byte) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		resp, err := signer.Sign(serial, status, revokedAt, reason)
		require.NoError(t, err)
		tmpl := ocsp.Response{SerialNumber: serial, IssuerHash: h, Certificate: responder,
			ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate, Status: ocsp.Good}
		if status == ocspstate.Revoked {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, revokedAt, reason
		}
		signerCert := issuer
		if responder != nil {
			signerCert = responder
		}
		theirs, err := ocsp.CreateResponse(issuer, signerCert, tmpl, key)
		require.NoError(t, err)
		a, err := ocsp.ParseResponse(resp.DER, nil)
		require.NoError(t, err)
		b, err := ocsp.ParseResponse(theirs, nil)
		require.NoError(t, err)
		if a.ProducedAt.Equal(b.ProducedAt) || attempt == 2 {
			return resp.DER, theirs
		}
	}
}

// TestSignerRefusesUnsupportedKeys: keys the encoder cannot sign with are
// refused when the signer is made, with a message naming what is supported.
func TestSignerRefusesUnsupportedKeys(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	for _, key := range []crypto.Signer{edKey, p224} {
		_, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: key})
		require.ErrorContains(t, err, "supported")
	}
}
