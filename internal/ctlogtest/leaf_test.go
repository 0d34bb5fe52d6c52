package ctlogtest

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/testpki"
)

// TestLeafMatchesCTGo pins the leaf the log signs for a precertificate, with
// its timestamp, to certificate-transparency-go's, for every key type, with
// the issuer signing directly and through a precertificate signing
// certificate, with the poison anywhere among the extensions.
func TestLeafMatchesCTGo(t *testing.T) {
	for _, kt := range testpki.KeyTypes {
		ca := testpki.Shared(t, kt)
		key, err := testpki.NewKey(kt)
		require.NoError(t, err)
		ps, psKey, err := ca.NewPrecertSigner(ctsubmit.OIDPrecertSigning)
		require.NoError(t, err)
		poison := ctsubmit.PoisonExtension()
		other := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{0x05, 0x00}}
		another := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 4}, Critical: true, Value: []byte{0x04, 0x00}}
		for _, issuer := range []struct {
			name   string
			parent *x509.Certificate
			signer any
			chain  [][]byte
		}{
			{"issuer signs", ca.Intermediate, ca.IntermediateKey, ca.ChainDER()},
			{"precert signing certificate", ps, psKey, append([][]byte{ps.Raw}, ca.ChainDER()...)},
		} {
			for _, exts := range [][]pkix.Extension{{poison}, {poison, other}, {other, poison, another}} {
				tmpl := ca.LeafTemplate(90 * 24 * time.Hour)
				tmpl.SerialNumber = testpki.RandomSerial()
				tmpl.ExtraExtensions = exts
				der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.parent, key.Public(), issuer.signer)
				require.NoError(t, err)
				chain := append([][]byte{der}, issuer.chain...)
				var raw []ct.ASN1Cert
				for _, c := range chain {
					raw = append(raw, ct.ASN1Cert{Data: c})
				}
				want, err := ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, 1234)
				require.NoError(t, err)
				got, err := leafFor(chain, true, 1234)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s, %s", kt, issuer.name)
			}
		}
		// A poison that is not critical NULL is refused.
		tmpl := ca.LeafTemplate(90 * 24 * time.Hour)
		tmpl.SerialNumber = testpki.RandomSerial()
		tmpl.ExtraExtensions = []pkix.Extension{{Id: ctsubmit.OIDPoison, Value: []byte{0x05, 0x00}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key.Public(), ca.IntermediateKey)
		require.NoError(t, err)
		_, err = leafFor(append([][]byte{der}, ca.ChainDER()...), true, 1)
		require.ErrorContains(t, err, "not critical")
	}
}
