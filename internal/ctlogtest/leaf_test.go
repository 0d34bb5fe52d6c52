package ctlogtest

import (
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
)

// TestLeafMatchesCTGo pins the log's fast leaf to certificate-transparency-go's.
func TestLeafMatchesCTGo(t *testing.T) {
	for _, kt := range testpki.KeyTypes {
		ca := testpki.Shared(t, kt)
		p, err := NewPrecert(ca, 90*24*time.Hour, "leaf.example.com")
		require.NoError(t, err)
		raw := []ct.ASN1Cert{{Data: p.Cert.Raw}, {Data: ca.Intermediate.Raw}, {Data: ca.Root.Raw}}
		want, err := ct.MerkleTreeLeafFromRawChain(raw, ct.PrecertLogEntryType, 1234)
		require.NoError(t, err)
		got, err := leafFor(raw, ct.PrecertLogEntryType, 1234)
		require.NoError(t, err)
		require.Equal(t, want, got, kt.String())
	}
}
