package ctsubmit

import (
	"encoding/json"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"
)

// FuzzAddChainBody compares addChainBody with encoding/json.
func FuzzAddChainBody(f *testing.F) {
	f.Add([]byte{}, []byte{0xfb, 0xff}, uint8(3))
	f.Add([]byte("certificate"), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, shape uint8) {
		var chain [][]byte
		switch shape % 5 {
		case 0:
			chain = nil
		case 1:
			chain = [][]byte{}
		case 2:
			chain = [][]byte{a}
		case 3:
			chain = [][]byte{a, b, a}
		case 4:
			chain = [][]byte{a, nil, b}
		}
		want, err := json.Marshal(ct.AddChainRequest{Chain: chain})
		require.NoError(t, err)
		require.Equal(t, string(want), string(addChainBody(chain)))
	})
}
