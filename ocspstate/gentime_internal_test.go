package ocspstate

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// sameAsCryptobyte checks readGeneralizedTime against cryptobyte's
// ReadASN1GeneralizedTime on in: the same verdict, time and rest.
func sameAsCryptobyte(t *testing.T, in []byte) {
	t.Helper()
	a, b := cryptobyte.String(bytes.Clone(in)), cryptobyte.String(bytes.Clone(in))
	var ta, tb time.Time
	oka, okb := readGeneralizedTime(&a, &ta), b.ReadASN1GeneralizedTime(&tb)
	if oka != okb || !ta.Equal(tb) || ta.Location() != tb.Location() || !bytes.Equal(a, b) {
		t.Fatalf("%q: ours %v %v rest %x, cryptobyte's %v %v rest %x", in, oka, ta, []byte(a), okb, tb, []byte(b))
	}
}

func genTime(s string) []byte {
	return append([]byte{byte(cbasn1.GeneralizedTime), byte(len(s))}, s...)
}

func TestReadGeneralizedTimeMatchesCryptobyte(t *testing.T) {
	for _, s := range []string{
		"20261124010203Z", "00000101000000Z", "99991231235959Z", "20240229120000Z", "20230229120000Z",
		"20261301000000Z", "20260001000000Z", "20260100000000Z", "20260132000000Z", "20261124240000Z",
		"20261124236000Z", "20261124235960Z", "2026112401020Z", "20261124010203", "20261124010203+0100",
		"20261124010203.5Z", "2026112401020aZ", "-0261124010203Z", "20261124010203z", "+0261124010203Z",
	} {
		sameAsCryptobyte(t, genTime(s))
		sameAsCryptobyte(t, append(genTime(s), 0x30, 0x00)) // with a following element
	}
	sameAsCryptobyte(t, nil)

	// The fast path, which allocates nothing, is taken whether or not
	// another element follows (in a response, one always does but for
	// nextUpdate).
	for _, in := range [][]byte{genTime("20261124010203Z"), append(genTime("20261124010203Z"), 0x30, 0x00)} {
		allocs := testing.AllocsPerRun(100, func() {
			s := cryptobyte.String(in)
			var tm time.Time
			if !readGeneralizedTime(&s, &tm) {
				t.Fatal("refused")
			}
		})
		if allocs != 0 {
			t.Errorf("%x: %v allocations per time, want 0", in, allocs)
		}
	}
	sameAsCryptobyte(t, []byte{byte(cbasn1.UTCTime), 13, '2', '6', '1', '1', '2', '4', '0', '1', '0', '2', '0', '3', 'Z'})
}

func FuzzReadGeneralizedTime(f *testing.F) {
	f.Add([]byte("20261124010203Z"))
	f.Add([]byte("20240229120000Z"))
	f.Add([]byte("20261124010203.5Z"))
	f.Fuzz(func(t *testing.T, s []byte) {
		if len(s) > 100 {
			return
		}
		sameAsCryptobyte(t, append([]byte{byte(cbasn1.GeneralizedTime), byte(len(s))}, s...))
	})
}
