package ctsubmit_test

import (
	"bytes"
	"encoding/asn1"
	"slices"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
)

// rawSCT returns a TLS-encoded v1 SCT with the given log ID byte and
// timestamp; its signature is arbitrary.
func rawSCT(t testing.TB, id byte, ts uint64) []byte {
	t.Helper()
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		Timestamp:  ts,
		Signature: ct.DigitallySigned{
			Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
			Signature: []byte{0x30, 0x06, 0x02, 0x01, id, 0x02, 0x01, 0x01},
		},
	}
	sct.LogID.KeyID[0] = id
	raw, err := cttls.Marshal(sct)
	require.NoError(t, err)
	return raw
}

func TestSCTListRoundTrip(t *testing.T) {
	raws := [][]byte{rawSCT(t, 1, 1000), rawSCT(t, 2, 2000), rawSCT(t, 3, 3000)}
	ext, err := ctsubmit.SCTListExtension(raws)
	require.NoError(t, err)
	require.True(t, ext.Id.Equal(ctsubmit.OIDSCTList))
	require.False(t, ext.Critical)

	got, err := ctsubmit.ParseSCTList(ext.Value)
	require.NoError(t, err)
	require.Equal(t, raws, got)

	// certificate-transparency-go reads the same bytes.
	var octets []byte
	_, err = asn1.Unmarshal(ext.Value, &octets)
	require.NoError(t, err)
	var list ctx509.SignedCertificateTimestampList
	rest, err := cttls.Unmarshal(octets, &list)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Len(t, list.SCTList, 3)
	for i, s := range list.SCTList {
		require.Equal(t, raws[i], s.Val)
	}
}

func TestSCTListExtensionErrors(t *testing.T) {
	good := rawSCT(t, 1, 1)
	for _, tc := range []struct {
		name string
		raws [][]byte
		want string
	}{
		{"no SCTs", nil, "no SCTs"},
		{"empty SCT", [][]byte{good, {}}, "SCT 1"},
		{"trailing bytes", [][]byte{append(bytes.Clone(good), 0)}, "trailing"},
		{"not an SCT", [][]byte{[]byte("hello")}, "SCT 0"},
		{"version 2", [][]byte{append([]byte{1}, good[1:]...)}, "version"},
		{"too long", slices.Repeat([][]byte{good}, 65536/len(good)), "the most is 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ctsubmit.SCTListExtension(tc.raws)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseSCTListErrors(t *testing.T) {
	good := rawSCT(t, 1, 1)
	octets := func(b []byte) []byte {
		v, err := asn1.Marshal(b)
		require.NoError(t, err)
		return v
	}
	list := func(items ...[]byte) []byte {
		var body []byte
		for _, it := range items {
			body = append(body, byte(len(it)>>8), byte(len(it)))
			body = append(body, it...)
		}
		return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
	}
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "not an OCTET STRING"},
		{"not an OCTET STRING", []byte{0x04}, "not an OCTET STRING"},
		{"trailing after OCTET STRING", append(octets(list(good)), 0), "trailing bytes after the OCTET STRING"},
		{"no length prefix", octets([]byte{0}), "shorter than its length prefix"},
		{"wrong list length", octets(append(list(good), 0)), "length prefix says"},
		{"empty list", octets([]byte{0, 0}), "empty"},
		{"truncated entry length", octets([]byte{0, 1, 0}), "truncated length"},
		{"zero-length entry", octets(list([]byte{})), "length 0"},
		{"entry overruns", octets([]byte{0, 3, 0, 9, 1}), "length 9 with 1 bytes left"},
		{"entry is not an SCT", octets(list(good, []byte("nope"))), "SCT 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ctsubmit.ParseSCTList(tc.value)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// FuzzParseSCTList feeds arbitrary extension values to ParseSCTList: it
// must not panic, and what it accepts must round-trip.
func FuzzParseSCTList(f *testing.F) {
	for _, raws := range [][][]byte{
		{rawSCT(f, 1, 1)},
		{rawSCT(f, 1, 1), rawSCT(f, 2, 1<<40)},
	} {
		ext, err := ctsubmit.SCTListExtension(raws)
		require.NoError(f, err)
		f.Add(ext.Value)
	}
	f.Add([]byte{0x04, 0x02, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, value []byte) {
		raws, err := ctsubmit.ParseSCTList(value)
		if err != nil {
			require.NotEmpty(t, err.Error())
			require.Nil(t, raws)
			return
		}
		require.NotEmpty(t, raws)
		ext, err := ctsubmit.SCTListExtension(raws)
		require.NoError(t, err)
		again, err := ctsubmit.ParseSCTList(ext.Value)
		require.NoError(t, err)
		require.Equal(t, raws, again)
	})
}
