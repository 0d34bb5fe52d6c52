package ocspstate_test

import (
	"crypto"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
)

func newSigner(t *testing.T, cfg ocspstate.SignerConfig) *ocspstate.ResponseSigner {
	t.Helper()
	s, err := ocspstate.NewResponseSigner(cfg)
	require.NoError(t, err)
	return s
}

func TestValidateRejects(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	now := time.Now()
	serial := big.NewInt(4242)
	good := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	goodResp, err := good.Sign(serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(t, err)

	// Responses x/crypto will happily create but nobody may store.
	raw := func(tmpl ocsp.Response, responder *x509.Certificate, key crypto.Signer) []byte {
		t.Helper()
		if tmpl.SerialNumber == nil {
			tmpl.SerialNumber = serial
		}
		if tmpl.ThisUpdate.IsZero() {
			tmpl.ThisUpdate = now.Add(-time.Minute)
			tmpl.NextUpdate = now.Add(48 * time.Hour)
		}
		if responder != ca.Intermediate {
			tmpl.Certificate = responder
		}
		der, err := ocsp.CreateResponse(ca.Intermediate, responder, tmpl, key)
		require.NoError(t, err)
		return der
	}
	wrongKey, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	noEKUKey, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	noEKU, err := ca.NewResponder(noEKUKey, false)
	require.NoError(t, err)
	past := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Validity: 8 * time.Hour,
		Now: func() time.Time { return now.Add(-10 * time.Hour) }})
	expired, err := past.Sign(serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(t, err)

	noStatus := raw(ocsp.Response{Status: 99}, ca.Intermediate, ca.IntermediateKey)
	// The trap this package exists to avoid: x/crypto reads it as revoked.
	parsed, err := ocsp.ParseResponse(noStatus, ca.Intermediate)
	require.NoError(t, err)
	require.Equal(t, ocsp.Revoked, parsed.Status, "x/crypto/ocsp reads a missing certStatus as revoked")

	for _, tc := range []struct {
		name string
		der  []byte
		want ocspstate.Problem
	}{
		{"empty", nil, ocspstate.ProblemMalformed},
		{"1-byte body", []byte{0x30}, ocspstate.ProblemMalformed},
		{"5-byte unauthorized", []byte{0x30, 0x03, 0x0a, 0x01, 0x06}, ocspstate.ProblemNotSuccessful},
		{"internalError", []byte{0x30, 0x03, 0x0a, 0x01, 0x02}, ocspstate.ProblemNotSuccessful},
		{"HTML page", []byte("<html><body>502 Bad Gateway</body></html>"), ocspstate.ProblemMalformed},
		{"trailing garbage", append(append([]byte{}, goodResp.DER...), 0), ocspstate.ProblemMalformed},
		{"another serial", raw(ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(4243)}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemSerial},
		{"wrong key", raw(ocsp.Response{Status: ocsp.Good}, ca.Intermediate, wrongKey), ocspstate.ProblemSignature},
		{"delegated without OCSPSigning", raw(ocsp.Response{Status: ocsp.Good}, noEKU, noEKUKey), ocspstate.ProblemSigner},
		{"delegated not issued by issuer", raw(ocsp.Response{Status: ocsp.Good}, testpki.Shared(t, testpki.RSA2048).Responder, testpki.Shared(t, testpki.RSA2048).ResponderKey), ocspstate.ProblemSigner},
		{"expired", expired.DER, ocspstate.ProblemExpired},
		{"thisUpdate in the future", raw(ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(50 * time.Hour)}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemFuture},
		{"no certStatus", noStatus, ocspstate.ProblemNoCertStatus},
		{"unknown status", raw(ocsp.Response{Status: ocsp.Unknown}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemStatus},
		{"no nextUpdate", raw(ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Minute)}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemNoNextUpdate},
		{"interval over 10 days", raw(ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(-time.Minute).Add(10 * 24 * time.Hour)}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemInterval},
		{"interval under 8 hours", raw(ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(7 * time.Hour)}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemInterval},
		{"revoked while good expected", raw(ocsp.Response{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), RevocationReason: 1}, ca.Intermediate, ca.IntermediateKey), ocspstate.ProblemStatus},
		{"another issuer", func() []byte {
			other := testpki.Shared(t, testpki.RSA2048)
			s := newSigner(t, ocspstate.SignerConfig{Issuer: other.Intermediate, Key: other.IntermediateKey})
			r, err := s.Sign(serial, ocspstate.Good, time.Time{}, 0)
			require.NoError(t, err)
			return r.DER
		}(), ocspstate.ProblemCertID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ocspstate.Expect{Serial: serial, Status: ocspstate.Good, Now: now, Skew: time.Minute}
			_, err := ocspstate.Validate(tc.der, ca.Intermediate, want)
			require.ErrorIs(t, err, ocspstate.ErrInvalidResponse)
			require.Equal(t, tc.want, ocspstate.ProblemOf(err), "%v", err)
			require.Contains(t, err.Error(), ocspstate.SerialHex(serial), "errors name the serial")

			// The cached path gives the same verdict, twice.
			v, err := ocspstate.NewValidator(ca.Intermediate)
			require.NoError(t, err)
			for i := 0; i < 2; i++ {
				_, err = v.Validate(tc.der, ocspstate.IssuerIDOf(ca.Intermediate), want)
				require.Equal(t, tc.want, ocspstate.ProblemOf(err), "Validator, call %d: %v", i+1, err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, kt := range testpki.KeyTypes {
		ca := testpki.Shared(t, kt)
		for _, tc := range []struct {
			name string
			cfg  ocspstate.SignerConfig
		}{
			{"issuer", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey}},
			{"delegated", ocspstate.SignerConfig{Issuer: ca.Intermediate, Responder: ca.Responder, Key: ca.ResponderKey}},
			{"SHA-256 CertID", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, CertIDHash: crypto.SHA256}},
			{"verify each", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, VerifySignatures: true}},
			{"8 hours", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Validity: 8 * time.Hour}},
			{"10 days", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Validity: 10 * 24 * time.Hour}},
		} {
			t.Run(kt.String()+"/"+tc.name, func(t *testing.T) {
				s := newSigner(t, tc.cfg)
				serial := testpki.RandomSerial()
				at := time.Now().Add(-time.Hour)
				for _, st := range []ocspstate.Status{ocspstate.Good, ocspstate.Revoked} {
					var reason int
					if st == ocspstate.Revoked {
						reason = ocspstate.ReasonKeyCompromise
					}
					resp, err := s.Sign(serial, st, at, reason)
					require.NoError(t, err)
					info, err := ocspstate.Validate(resp.DER, ca.Intermediate, ocspstate.Expect{
						Serial: serial, Status: st, RevokedAt: at, Reason: reason, Now: time.Now()})
					require.NoError(t, err)
					require.Equal(t, st, info.Status)
					require.Equal(t, tc.cfg.Responder != nil, info.Delegated)
					require.True(t, info.ThisUpdate.Equal(resp.ThisUpdate))
					require.True(t, info.NextUpdate.Equal(resp.NextUpdate))
					validity := tc.cfg.Validity
					if validity == 0 {
						validity = ocspstate.DefaultResponseValidity
					}
					require.Equal(t, validity, resp.NextUpdate.Sub(resp.ThisUpdate)+time.Second, "BR counts the interval inclusively")
					wantHash := tc.cfg.CertIDHash
					if wantHash == 0 {
						wantHash = crypto.SHA1
					}
					require.Equal(t, wantHash, info.CertIDHash)
					// Relying parties agree.
					parsed, err := ocsp.ParseResponseForCert(resp.DER, nil, ca.Intermediate)
					require.NoError(t, err)
					require.Equal(t, 0, parsed.SerialNumber.Cmp(serial))
				}
			})
		}
	}
}

func TestResponseSignerRefuses(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	other := testpki.Shared(t, testpki.RSA2048)
	noEKUKey, err := testpki.NewKey(testpki.ECDSAP256)
	require.NoError(t, err)
	noEKU, err := ca.NewResponder(noEKUKey, false)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		cfg  ocspstate.SignerConfig
		want string
	}{
		{"no issuer", ocspstate.SignerConfig{Key: ca.IntermediateKey}, "Issuer is required"},
		{"no key", ocspstate.SignerConfig{Issuer: ca.Intermediate}, "Key is required"},
		{"validity under 8h", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Validity: 7 * time.Hour}, "outside BR"},
		{"validity over 10d", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Validity: 10*24*time.Hour + time.Second}, "outside BR"},
		{"key of another CA", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: other.IntermediateKey}, "does not match"},
		{"delegated without EKU", ocspstate.SignerConfig{Issuer: ca.Intermediate, Responder: noEKU, Key: noEKUKey}, "OCSPSigning"},
		{"delegated from another CA", ocspstate.SignerConfig{Issuer: ca.Intermediate, Responder: other.Responder, Key: other.ResponderKey}, "not signed by the issuer"},
		{"MD5 CertID", ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, CertIDHash: crypto.MD5}, "not SHA-1 or SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ocspstate.NewResponseSigner(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}

	s := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	for _, tc := range []struct {
		name   string
		serial *big.Int
		status ocspstate.Status
		at     time.Time
		reason int
		want   string
	}{
		{"unknown status", big.NewInt(1), 3, time.Time{}, 0, "only good and revoked"},
		{"zero status", big.NewInt(1), 0, time.Time{}, 0, "only good and revoked"},
		{"revoked without time", big.NewInt(1), ocspstate.Revoked, time.Time{}, 1, "needs a revocation time"},
		{"reason 7", big.NewInt(1), ocspstate.Revoked, time.Now(), 7, "not an RFC 5280 CRLReason"},
		{"reason 11", big.NewInt(1), ocspstate.Revoked, time.Now(), 11, "not an RFC 5280 CRLReason"},
		{"zero serial", big.NewInt(0), ocspstate.Good, time.Time{}, 0, "not positive"},
		{"huge serial", new(big.Int).Lsh(big.NewInt(1), 200), ocspstate.Good, time.Time{}, 0, "octets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Sign(tc.serial, tc.status, tc.at, tc.reason)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSubscriberReasons(t *testing.T) {
	allowed := map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true, 9: true}
	for r := -1; r <= 11; r++ {
		err := ocspstate.CheckSubscriberReason(r)
		require.Equal(t, allowed[r], err == nil, "reason %d: %v", r, err)
	}
}

func TestRevokedReasonOmittedWhenUnspecified(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	s := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	resp, err := s.Sign(big.NewInt(9), ocspstate.Revoked, time.Now().Add(-time.Hour), ocspstate.ReasonUnspecified)
	require.NoError(t, err)
	// BR §7.2.2: unspecified is expressed by omitting the reasonCode; the
	// revokedInfo then holds only the GeneralizedTime (15 bytes + header).
	parsed, err := ocsp.ParseResponse(resp.DER, ca.Intermediate)
	require.NoError(t, err)
	require.Equal(t, ocsp.Revoked, parsed.Status)
	require.Equal(t, 0, parsed.RevocationReason)
	require.NotContains(t, string(resp.DER), string([]byte{0xa0, 0x03, 0x0a, 0x01, 0x00}), "no explicit unspecified reason")
}

func FuzzValidate(f *testing.F) {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Responder: ca.Responder, Key: ca.ResponderKey})
	if err != nil {
		f.Fatal(err)
	}
	for _, st := range []ocspstate.Status{ocspstate.Good, ocspstate.Revoked} {
		r, err := s.Sign(big.NewInt(7), st, time.Now(), 1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.DER)
	}
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x06})
	f.Add([]byte{0x30})
	f.Add([]byte{})
	v, err := ocspstate.NewValidator(ca.Intermediate)
	if err != nil {
		f.Fatal(err)
	}
	id := ocspstate.IssuerIDOf(ca.Intermediate)
	f.Fuzz(func(t *testing.T, der []byte) {
		want := ocspstate.Expect{Serial: big.NewInt(7), Now: time.Now()}
		info, err := ocspstate.Validate(der, ca.Intermediate, want)
		if err != nil {
			if ocspstate.ProblemOf(err) == 0 {
				t.Fatalf("error without a Problem: %v", err)
			}
			return
		}
		if info.Status != ocspstate.Good && info.Status != ocspstate.Revoked {
			t.Fatalf("accepted status %v", info.Status)
		}
		if _, err := v.Validate(der, id, want); err != nil {
			t.Fatalf("Validate accepted what the Validator refuses: %v", err)
		}
	})
}
