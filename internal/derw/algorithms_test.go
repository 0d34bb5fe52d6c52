package derw

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSignatureHash signs with each algorithm's Hash as our signers do
// and has crypto/x509, which keeps its own table, verify the signature:
// a wrong Hash in SignatureAlgorithms fails here.
func TestSignatureHash(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys := map[x509.PublicKeyAlgorithm]crypto.Signer{x509.ECDSA: ec, x509.RSA: rsaKey, x509.Ed25519: ed}
	msg := []byte("tbsCertificate")
	for _, a := range SignatureAlgorithms {
		t.Run(a.Alg.String(), func(t *testing.T) {
			hash, ok := SignatureHash(a.Alg)
			require.True(t, ok)
			require.Equal(t, a.Hash, hash)
			key := keys[publicKeyAlgorithm(a.Alg)]
			require.NotNil(t, key, "no test key for %s", a.Alg)
			digest := msg
			if hash != 0 {
				h := hash.New()
				h.Write(msg)
				digest = h.Sum(nil)
			}
			sig, err := key.Sign(rand.Reader, digest, hash)
			require.NoError(t, err)
			cert := &x509.Certificate{PublicKey: key.Public()}
			require.NoError(t, cert.CheckSignature(a.Alg, msg, sig))
		})
	}
	_, ok := SignatureHash(x509.SHA1WithRSA)
	require.False(t, ok, "an algorithm outside the table")
}

func publicKeyAlgorithm(alg x509.SignatureAlgorithm) x509.PublicKeyAlgorithm {
	switch alg {
	case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
		return x509.ECDSA
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA:
		return x509.RSA
	case x509.PureEd25519:
		return x509.Ed25519
	}
	return x509.UnknownPublicKeyAlgorithm
}
