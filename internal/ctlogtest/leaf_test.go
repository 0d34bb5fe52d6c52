package ctlogtest

import (
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
)

// TestLeafMatchesCTGo pins the leaf the log signs for a precertificate, with
// its timestamp, to certificate-transparency-go's.
func TestLeafMatchesCTGo(t *testing.T) {
	for _, kt := range testpki.KeyTypes {
		ca := testpki.Shared(t, kt)
		p, err := NewPrecert(ca, 90*24*time.Hour, "leaf.example.com")
		require.NoError(t, err)
		var raw []ct.ASN1Cert
		for _, c := range p.Chain {
			raw = append(raw, ct.ASN1Cert{Data: c})
		}
		want, err := ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, 1234)
		require.NoError(t, err)
		got, err := leafFor(p.Chain, true, 1234)
		require.NoError(t, err)
		require.Equal(t, want, got, kt.String())
	}
}
