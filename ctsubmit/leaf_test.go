package ctsubmit

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
)

// TestPrecertLeafMatchesCTGo checks PrecertLeaf, the leaf Submit verifies
// SCTs against, fast path included, against certificate-transparency-go's
// MerkleTreeLeafFromRawChain, with the issuer signing directly and through
// a precertificate signing certificate.
func TestPrecertLeafMatchesCTGo(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	key, err := testpki.NewKey(ca.KeyType)
	require.NoError(t, err)
	poison := PoisonExtension()

	// A precertificate signing certificate: the CT EKU, issued by the CA.
	ps, psKey, err := ca.NewPrecertSigner(OIDPrecertSigning)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		parent *x509.Certificate
		signer any
		chain  [][]byte
	}{
		{"issuer signs", ca.Intermediate, ca.IntermediateKey, ca.ChainDER()},
		{"precert signing certificate", ps, psKey, append([][]byte{ps.Raw}, ca.ChainDER()...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := ca.LeafTemplate(90 * day)
			tmpl.SerialNumber = testpki.RandomSerial()
			tmpl.ExtraExtensions = []pkix.Extension{poison}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tc.parent, key.Public(), tc.signer)
			require.NoError(t, err)
			chain := append([][]byte{der}, tc.chain...)
			got, err := PrecertLeaf(chain)
			require.NoError(t, err)
			var raw []ct.ASN1Cert
			for _, c := range chain {
				raw = append(raw, ct.ASN1Cert{Data: c})
			}
			want, err := ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, 0)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}
