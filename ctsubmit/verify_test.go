package ctsubmit_test

import (
	"crypto/x509"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
)

// submitted returns a precertificate and the SCTs of three in-process
// logs for it.
func submitted(t *testing.T) (*ctlogtest.Precert, []*ctsubmit.Log, []ctsubmit.SCT) {
	t.Helper()
	p := precert(t, 200*day) // > 180 days: three SCTs
	_, logs, client := inProcess(t, named(ctlogtest.Options{}, "a", "b", "c")...)
	s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client})
	scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
	require.NoError(t, err)
	require.Len(t, scts, 3)
	return p, logs, scts
}

func TestVerifySCT(t *testing.T) {
	p, logs, scts := submitted(t)
	require.NoError(t, ctsubmit.VerifySCT(logs[0], p.Chain, scts[0].Parsed))

	other := *scts[0].Parsed
	other.Timestamp++
	wrongID := *scts[0].Parsed
	wrongID.LogID = scts[1].Parsed.LogID
	sha384 := *scts[0].Parsed
	sha384.Signature.Algorithm.Hash = cttls.SHA384
	q := precert(t, 200*day)
	for _, tc := range []struct {
		name  string
		log   *ctsubmit.Log
		chain [][]byte
		sct   *ct.SignedCertificateTimestamp
		want  string
	}{
		{"another log", logs[1], p.Chain, scts[0].Parsed, "is not the log's ID"},
		{"LogID of another log", logs[0], p.Chain, &wrongID, "is not the log's ID"},
		{"timestamp changed", logs[0], p.Chain, &other, "signature does not verify"},
		{"hash other than SHA-256", logs[0], p.Chain, &sha384, "SHA-256"},
		{"another precertificate", logs[0], q.Chain, scts[0].Parsed, "signature does not verify"},
		{"another issuer", logs[0], append([][]byte{p.Chain[0]}, q.Chain[1:]...), scts[0].Parsed, "signature does not verify"},
		{"no issuer", logs[0], p.Chain[:1], scts[0].Parsed, "chain has 1 certificates"},
		{"nil SCT", logs[0], p.Chain, nil, "nil log or SCT"},
		{"invalid log", &ctsubmit.Log{Name: "x"}, p.Chain, scts[0].Parsed, "has no Operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, ctsubmit.VerifySCT(tc.log, tc.chain, tc.sct), tc.want)
		})
	}
}

func TestVerifyEmbedded(t *testing.T) {
	p, logs, scts := submitted(t)
	final, err := p.Final(mustExt(t, raws(scts)))
	require.NoError(t, err)
	got, err := ctsubmit.VerifyEmbedded(final, p.CA.Intermediate, logs)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i := range got {
		require.Same(t, logs[i], got[i].Log)
		require.Equal(t, scts[i].Raw, got[i].Raw)
		require.Equal(t, scts[i].Parsed.Timestamp, got[i].Parsed.Timestamp)
		require.WithinDuration(t, time.Now(), got[i].Timestamp(), time.Minute)
	}

	// SCTs for another precertificate of the same CA.
	q, err := ctlogtest.NewPrecert(p.CA, 200*day)
	require.NoError(t, err)
	_, qlogs, client := inProcess(t, named(ctlogtest.Options{}, "x", "y", "z")...)
	qs := newSubmitter(t, ctsubmit.Config{Logs: qlogs, HTTPClient: client})
	qscts, err := qs.Submit(t.Context(), q.Chain, q.Cert.NotAfter)
	require.NoError(t, err)

	plain, err := p.CA.IssueLeaf(p.CA.LeafTemplate(90*day), p.Key.Public())
	require.NoError(t, err)
	dup, err := p.Final(mustExt(t, [][]byte{scts[0].Raw, scts[0].Raw}))
	require.NoError(t, err)
	foreign, err := p.Final(mustExt(t, [][]byte{scts[0].Raw, qscts[0].Raw}))
	require.NoError(t, err)
	otherCA := testpki.Shared(t, testpki.ECDSAP256)
	for _, tc := range []struct {
		name   string
		final  *x509.Certificate
		issuer *x509.Certificate
		logs   []*ctsubmit.Log
		want   string
	}{
		{"no SCT list", plain, p.CA.Intermediate, logs, "no SCT list extension"},
		{"unknown log", final, p.CA.Intermediate, logs[:2], "SCT 2: LogID"},
		{"two SCTs from one log", dup, p.CA.Intermediate, logs, "SCT 1: a second SCT from log \"a\""},
		{"SCT of another certificate", foreign, p.CA.Intermediate, append(logs, qlogs...), "SCT 1 from log \"x\""},
		{"wrong issuer", final, otherCA.Intermediate, logs, "SCT 0 from log \"a\""},
		{"nil", nil, p.CA.Intermediate, logs, "nil certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ctsubmit.VerifyEmbedded(tc.final, tc.issuer, tc.logs)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, got)
		})
	}
}
