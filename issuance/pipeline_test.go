package issuance_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

func TestIssueHappyPath(t *testing.T) {
	for _, c := range []struct {
		kt   testpki.KeyType
		lint bool
	}{{testpki.ECDSAP256, true}, {testpki.RSA2048, true}, {testpki.ECDSAP256, false}, {testpki.RSA2048, false}} {
		kt := c.kt
		t.Run(fmt.Sprintf("%s/lint=%v", kt, c.lint), func(t *testing.T) {
			e := pipetest.New(t, pipetest.Options{KeyType: kt})
			checked := e.RequireCommittedBeforeCT()
			p := e.Pipeline(func(cfg *issuance.Config) { cfg.DisableLint = !c.lint })
			res, err := p.Issue(e.Ctx, e.Request())
			require.NoError(t, err)
			require.Equal(t, ocspstate.Issued, res.State)
			require.NotNil(t, res.Final)
			require.Positive(t, checked.Load())
			require.EqualValues(t, e.Submissions(), checked.Load(), "the CT watch saw every submission")

			// The embedded SCTs verify, as a relying party checks them.
			final, err := ctx509.ParseCertificate(res.Final.Raw)
			require.NoError(t, err)
			issuer, err := ctx509.ParseCertificate(e.CA.Intermediate.Raw)
			require.NoError(t, err)
			require.Len(t, final.SCTList.SCTList, 2)
			for _, serialized := range final.SCTList.SCTList {
				var sct ct.SignedCertificateTimestamp
				_, err := cttls.Unmarshal(serialized.Val, &sct)
				require.NoError(t, err)
				var key any
				for _, l := range e.Logs {
					if l.ID() == sct.LogID.KeyID {
						key, err = ctx509.ParsePKIXPublicKey(l.PublicKey())
						require.NoError(t, err)
					}
				}
				require.NotNil(t, key, "SCT from a known log")
				require.NoError(t, ctutil.VerifySCT(key, []*ctx509.Certificate{final, issuer}, &sct, true))
			}
			_, err = ctsubmit.VerifyEmbedded(res.Final, e.CA.Intermediate, e.CTLogs())
			require.NoError(t, err)

			// It passes zlint, and matches its precertificate.
			z, err := issuance.NewZLinter(issuance.ZLintConfig{})
			require.NoError(t, err)
			require.NoError(t, z.Lint(res.Final))
			require.NoError(t, issuance.Correspond(res.Precert.RawTBSCertificate, res.Final.RawTBSCertificate))
			require.NoError(t, res.Final.CheckSignatureFrom(e.CA.Intermediate))

			// Its stored response validates as good, and the record is
			// whole.
			r := e.RequireStatus(res.Serial, ocspstate.Good)
			require.Equal(t, ocspstate.Issued, r.State)
			require.Equal(t, res.Final.Raw, r.FinalDER)
			require.Equal(t, res.Precert.RawTBSCertificate, r.IntentDER)
			require.Empty(t, r.Lease.Owner, "lease released")

			a := &recovery.Auditor{Issuers: []*x509.Certificate{e.CA.Intermediate}, Logs: e.CTLogs()}
			vs, err := a.Audit(e.Ctx, e.Store, e.Clock.Now())
			require.NoError(t, err)
			require.Empty(t, vs)
		})
	}
}

func TestIssueAllLogsReject(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{Logs: 3, Modes: []ctlogtest.Mode{ctlogtest.Reject, ctlogtest.Reject, ctlogtest.Reject}})
	checked := e.RequireCommittedBeforeCT()
	p := e.Pipeline()
	res, err := p.Issue(e.Ctx, e.Request())
	require.Nil(t, res)
	ie, _ := pipetest.RequireCTFailed(t, err, 3)
	require.Positive(t, checked.Load())
	require.EqualValues(t, e.Submissions(), checked.Load(), "the CT watch saw every submission")

	// Boulder's "OCSP for a rejected precertificate": the precertificate
	// may be in a log, so its response is good, signed and fresh.
	r := e.RequireStatus(ie.Serial, ocspstate.Good)
	require.Equal(t, ocspstate.CTFailed, r.State)
	require.Empty(t, r.FinalDER)
	resp, err := e.Store.Response(e.Ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, r.OCSP.ResponseDER, resp)
	require.False(t, r.Due.IsZero(), "a CT-failed precert stays due for refreshing")
}

func TestFaultPoints(t *testing.T) {
	for _, point := range issuance.FaultPoints {
		if point == issuance.AfterSignRevoked || point == issuance.AfterCommitRevoked {
			continue // TestRevokeFaults
		}
		t.Run(string(point), func(t *testing.T) {
			e := pipetest.New(t, pipetest.Options{})
			e.RequireCommittedBeforeCT()
			a := e.Pipeline(func(c *issuance.Config) { c.Owner = "worker-a"; c.Faults = issuance.FaultErr(point) })
			res, err := a.Issue(e.Ctx, e.Request())
			require.ErrorIs(t, err, issuance.ErrInjected)
			require.Nil(t, res, "nothing is returned when a step fails")
			var ie *issuance.Error
			require.ErrorAs(t, err, &ie)
			before := e.Record(ie.Serial)
			submitted := e.Submissions()

			// Nothing left the process before the commit it depends on.
			switch point {
			case issuance.AfterReserve, issuance.AfterLint, issuance.AfterSignPrecert, issuance.AfterSignOCSP:
				require.Equal(t, ocspstate.Reserved, before.State)
				require.Zero(t, submitted, "no CT submission before the precert commit")
				require.Empty(t, before.PrecertDER)
			case issuance.AfterCommitPrecert:
				require.Equal(t, ocspstate.Precert, before.State)
				require.Zero(t, submitted)
			case issuance.AfterCT:
				require.Equal(t, ocspstate.Precert, before.State)
			case issuance.AfterCommitSCTs, issuance.AfterSignFinal:
				require.Equal(t, ocspstate.SCTs, before.State)
				require.Empty(t, before.FinalDER)
			case issuance.AfterCommitFinal:
				require.Equal(t, ocspstate.Issued, before.State)
			}
			if before.State.Published() {
				e.RequireStatus(ie.Serial, ocspstate.Good)
			}

			// Another worker cannot take the record while the lease holds.
			b := e.Pipeline(func(c *issuance.Config) { c.Owner = "worker-b" })
			if before.State.InFlight() {
				_, err = b.Resume(e.Ctx, before.Issuer, before.Serial)
				require.ErrorIs(t, err, issuance.ErrLeaseLost)
			}
			// Once it has expired, Resume finishes or abandons.
			e.Clock.Advance(3 * time.Minute)
			out, err := b.Resume(e.Ctx, before.Issuer, before.Serial)
			require.NoError(t, err)
			after := e.Record(ie.Serial)
			switch before.State {
			case ocspstate.Reserved:
				require.Equal(t, ocspstate.Abandoned, out.State)
				require.Equal(t, ocspstate.Abandoned, after.State)
			default:
				require.Equal(t, ocspstate.Issued, out.State)
				require.Equal(t, after.FinalDER, out.Final.Raw)
				_, err = ctsubmit.VerifyEmbedded(out.Final, e.CA.Intermediate, e.CTLogs())
				require.NoError(t, err)
				e.RequireStatus(ie.Serial, ocspstate.Good)
			}
			if before.State == ocspstate.SCTs {
				require.Equal(t, submitted, e.Submissions(), "SCTs committed: CT is not paid twice")
			}
			// Resume again is a no-op.
			again, err := b.Resume(e.Ctx, before.Issuer, before.Serial)
			require.NoError(t, err)
			require.Equal(t, out.State, again.State)
			require.Equal(t, after.Version, e.Record(ie.Serial).Version)

			vs, err := (&recovery.Auditor{Issuers: []*x509.Certificate{e.CA.Intermediate}, Logs: e.CTLogs()}).Audit(e.Ctx, e.Store, e.Clock.Now())
			require.NoError(t, err)
			require.Empty(t, vs)
		})
	}
}

func TestLintFailureSignsNothing(t *testing.T) {
	failing := lintFunc(func(*x509.Certificate) error { return errors.New("policy says no") })
	for name, tc := range map[string]struct {
		linter issuance.Linter
		req    func(*issuance.Request)
	}{
		"custom linter":                 {failing, nil},
		"zlint: validity over 398 days": {nil, func(r *issuance.Request) { r.NotAfter = r.NotBefore.Add(400 * 24 * time.Hour) }},
		"zlint: no SAN":                 {nil, func(r *issuance.Request) { r.DNSNames = nil }},
	} {
		t.Run(name, func(t *testing.T) {
			e := pipetest.New(t, pipetest.Options{})
			p := e.Pipeline(func(c *issuance.Config) { c.Linter = tc.linter })
			before := e.Key.Count()
			req := e.Request()
			if tc.req != nil {
				tc.req(req)
			}
			_, err := p.Issue(e.Ctx, req)
			var ie *issuance.Error
			require.ErrorAs(t, err, &ie)
			require.Equal(t, issuance.StepLint, ie.Step, "%v", err)
			require.Equal(t, before, e.Key.Count(), "the issuer key signed nothing")
			require.Zero(t, e.Submissions())
			r := e.Record(ie.Serial)
			require.Equal(t, ocspstate.Abandoned, r.State, "the reservation is given up, the serial stays used")
		})
	}
}

type lintFunc func(*x509.Certificate) error

func (f lintFunc) Lint(c *x509.Certificate) error { return f(c) }

func TestIssueConcurrent(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{Logs: 3})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	const n = 200
	serials := make(chan *big.Int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Issue(e.Ctx, e.Request())
			var ie *issuance.Error
			switch {
			case err == nil:
				serials <- res.Serial
			case errors.As(err, &ie) && errors.Is(err, issuance.ErrCTFailed):
				serials <- ie.Serial
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(serials)
	seen := map[string]bool{}
	for s := range serials {
		require.False(t, seen[s.String()], "serial %x issued twice", s)
		seen[s.String()] = true
		st := e.Record(s).State
		require.True(t, st == ocspstate.Issued || st == ocspstate.CTFailed, "serial %x ended %s", s, st)
	}
	require.Len(t, seen, n)
	counts, err := e.Store.Counts(e.Ctx)
	require.NoError(t, err)
	require.Equal(t, n, counts[ocspstate.Issued]+counts[ocspstate.CTFailed])
}

func TestRevoke(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{Modes: []ctlogtest.Mode{ctlogtest.Reject, ctlogtest.Reject}})
	p := e.Pipeline()
	_, err := p.Issue(e.Ctx, e.Request())
	require.ErrorIs(t, err, issuance.ErrCTFailed)
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	id, serial := p.IssuerID(), ie.Serial

	at := e.Clock.Now().Add(-time.Minute)
	rec, err := p.Revoke(e.Ctx, id, serial, ocspstate.ReasonKeyCompromise, at)
	require.NoError(t, err)
	require.Equal(t, ocspstate.CTFailed, rec.State)
	r := e.RequireStatus(serial, ocspstate.Revoked)
	require.True(t, r.OCSP.RevokedAt.Equal(at.Truncate(time.Second)))
	require.Equal(t, ocspstate.ReasonKeyCompromise, r.OCSP.Reason)

	// Idempotent, never altered, never undone.
	again, err := p.Revoke(e.Ctx, id, serial, ocspstate.ReasonKeyCompromise, at)
	require.NoError(t, err)
	require.Equal(t, r.Version, again.Version)
	_, err = p.Revoke(e.Ctx, id, serial, ocspstate.ReasonSuperseded, at)
	require.ErrorIs(t, err, issuance.ErrAlreadyRevoked)
	require.Equal(t, r.Version, e.Record(serial).Version)

	// Reasons the BRs do not allow for subscribers.
	for _, reason := range []int{2, 6, 7, 8, 10, 11, -1} {
		_, err := p.Revoke(e.Ctx, id, serial, reason, at)
		require.Error(t, err, "reason %d", reason)
	}

	// Nothing was published for a reservation or an abandoned serial.
	lintFail := e.Pipeline(func(c *issuance.Config) {
		c.Linter = lintFunc(func(*x509.Certificate) error { return errors.New("no") })
	})
	_, err = lintFail.Issue(e.Ctx, e.Request())
	require.ErrorAs(t, err, &ie)
	_, err = p.Revoke(e.Ctx, id, ie.Serial, ocspstate.ReasonUnspecified, time.Time{})
	require.ErrorIs(t, err, issuance.ErrNotPublished)

	// An issued certificate, revoked with no reason given.
	e.SetModes(ctlogtest.Accept)
	res, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	_, err = p.Revoke(e.Ctx, id, res.Serial, ocspstate.ReasonUnspecified, time.Time{})
	require.NoError(t, err)
	e.RequireStatus(res.Serial, ocspstate.Revoked)
}

func TestRevokeFaults(t *testing.T) {
	for _, point := range []issuance.FaultPoint{issuance.AfterSignRevoked, issuance.AfterCommitRevoked} {
		t.Run(string(point), func(t *testing.T) {
			e := pipetest.New(t, pipetest.Options{})
			p := e.Pipeline()
			res, err := p.Issue(e.Ctx, e.Request())
			require.NoError(t, err)
			faulty := e.Pipeline(func(c *issuance.Config) { c.Faults = issuance.FaultErr(point) })
			_, err = faulty.Revoke(e.Ctx, p.IssuerID(), res.Serial, ocspstate.ReasonKeyCompromise, e.Clock.Now())
			require.ErrorIs(t, err, issuance.ErrInjected)
			want := ocspstate.Good
			if point == issuance.AfterCommitRevoked {
				want = ocspstate.Revoked
			}
			e.RequireStatus(res.Serial, want)
			// Repeating the call finishes the job.
			_, err = p.Revoke(e.Ctx, p.IssuerID(), res.Serial, ocspstate.ReasonKeyCompromise, e.Clock.Now())
			require.NoError(t, err)
			e.RequireStatus(res.Serial, ocspstate.Revoked)
		})
	}
}

func TestLostLeaseCannotCommit(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	b := e.Pipeline(func(c *issuance.Config) { c.Owner = "worker-b" })
	takenOver := make(chan struct{})
	var bResult *issuance.Result
	a := e.Pipeline(func(c *issuance.Config) {
		c.Owner = "worker-a"
		c.Faults = issuance.FaultFunc(func(ctx context.Context, p issuance.FaultPoint, serial *big.Int) error {
			if p != issuance.AfterCT {
				return nil
			}
			// A is stalled holding SCTs; its lease expires and B takes
			// over and finishes.
			e.Clock.Advance(3 * time.Minute)
			res, err := b.Resume(ctx, ocspstate.IssuerIDOf(e.CA.Intermediate), serial)
			if err != nil {
				t.Errorf("B's resume: %v", err)
			}
			bResult = res
			close(takenOver)
			return nil
		})
	})
	_, err := a.Issue(e.Ctx, e.Request())
	select {
	case <-takenOver:
	default:
		t.Fatalf("A stopped before its CT step, so B never took over: %v", err)
	}
	require.ErrorIs(t, err, issuance.ErrLeaseLost, "A wakes and cannot commit")
	require.NotNil(t, bResult)
	r := e.Record(bResult.Serial)
	require.Equal(t, ocspstate.Issued, r.State)
	require.Equal(t, bResult.Final.Raw, r.FinalDER, "B's final certificate stands, and only it")
}

func TestResume(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline()
	res, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	out, err := p.Resume(e.Ctx, p.IssuerID(), res.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Issued, out.State)
	require.Equal(t, res.Final.Raw, out.Final.Raw)

	_, err = p.Resume(e.Ctx, p.IssuerID(), big.NewInt(424242))
	require.ErrorIs(t, err, ocspstate.ErrNotFound)
	other := testpki.Shared(t, testpki.RSA2048)
	_, err = p.Resume(e.Ctx, ocspstate.IssuerIDOf(other.Intermediate), res.Serial)
	require.ErrorContains(t, err, "belongs to issuer")
}

func TestCallerCancelLeavesPrecertForRecovery(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{Modes: []ctlogtest.Mode{ctlogtest.Hang, ctlogtest.Hang}})
	p := e.Pipeline()
	ctx, cancel := context.WithCancel(e.Ctx)
	e.BeforeSubmit(func(*big.Int) { cancel() })
	_, err := p.Issue(ctx, e.Request())
	require.ErrorIs(t, err, context.Canceled)
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	r := e.RequireStatus(ie.Serial, ocspstate.Good)
	require.Equal(t, ocspstate.Precert, r.State, "not a CT verdict: left for recovery")
	require.Empty(t, r.Lease.Owner, "lease released so recovery need not wait")
	require.False(t, r.Due.After(e.Clock.Now()), "due now")

	e.BeforeSubmit(nil)
	e.SetModes(ctlogtest.Accept)
	out, err := e.Pipeline(func(c *issuance.Config) { c.Owner = "recovery" }).Resume(e.Ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Issued, out.State)
}

func TestConfigErrors(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	other := testpki.Shared(t, testpki.RSA2048)
	otherSigner, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: other.Intermediate, Key: other.IntermediateKey})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		mut  func(*issuance.Config)
		want string
	}{
		{"no store", func(c *issuance.Config) { c.Store = nil }, "Store"},
		{"no issuer", func(c *issuance.Config) { c.Issuer = nil }, "Issuer"},
		{"no key", func(c *issuance.Config) { c.IssuerKey = nil }, "IssuerKey"},
		{"no responses", func(c *issuance.Config) { c.Responses = nil }, "Responses"},
		{"no CT", func(c *issuance.Config) { c.CT = nil }, "CT"},
		{"wrong key", func(c *issuance.Config) { c.IssuerKey = other.IntermediateKey }, "does not match"},
		{"signer of another issuer", func(c *issuance.Config) { c.Responses = otherSigner }, "another issuer"},
		{"leaf as issuer", func(c *issuance.Config) {
			leaf, key := e.CA.MustLeaf(t)
			c.Issuer, c.IssuerKey = leaf, key
			s, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: leaf, Key: key})
			require.NoError(t, err)
			c.Responses = s
		}, "not a CA"},
		{"chain not starting at issuer", func(c *issuance.Config) { c.Chain = []*x509.Certificate{e.CA.Root} }, "Chain must start"},
		{"63-bit serials", func(c *issuance.Config) { c.Serials = issuance.RandomSerials{Bits: 63} }, "outside"},
		{"tiny lease", func(c *issuance.Config) { c.LeaseDuration = time.Millisecond }, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := issuance.Config{Store: e.Store, Issuer: e.CA.Intermediate, IssuerKey: e.CA.IntermediateKey, Responses: e.Signer, CT: e.CT}
			tc.mut(&cfg)
			_, err := issuance.New(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Requests the pipeline refuses before reserving anything.
	p := e.Pipeline()
	for name, mut := range map[string]func(*issuance.Request){
		"no key":           func(r *issuance.Request) { r.PublicKey = nil },
		"empty validity":   func(r *issuance.Request) { r.NotAfter = r.NotBefore },
		"outlives issuer":  func(r *issuance.Request) { r.NotAfter = e.CA.Intermediate.NotAfter.Add(time.Hour) },
		"carries a poison": func(r *issuance.Request) { r.ExtraExtensions = append(r.ExtraExtensions, ctsubmit.PoisonExtension()) },
	} {
		req := e.Request()
		mut(req)
		_, err := p.Issue(e.Ctx, req)
		var ie *issuance.Error
		require.ErrorAs(t, err, &ie, name)
		require.Equal(t, issuance.StepRequest, ie.Step, name)
	}
	counts, err := e.Store.Counts(e.Ctx)
	require.NoError(t, err)
	require.Zero(t, counts[ocspstate.Reserved]+counts[ocspstate.Abandoned], "nothing reserved for a bad request")
}

func TestRandomSerials(t *testing.T) {
	for _, bits := range []int{65, 128, 159} {
		seen := map[string]bool{}
		for i := 0; i < 500; i++ {
			s, err := issuance.RandomSerials{Bits: bits}.Serial()
			require.NoError(t, err)
			require.Equal(t, bits, s.BitLen(), "fixed length")
			require.NoError(t, ocspstate.CheckSerial(s))
			require.False(t, seen[s.String()])
			seen[s.String()] = true
		}
	}
	for _, bits := range []int{64, 160} {
		_, err := issuance.RandomSerials{Bits: bits}.Serial()
		require.Error(t, err, fmt.Sprint(bits))
	}
}

// faultySigner returns corrupted signatures once faulty is set, as a
// failing HSM might.
type faultySigner struct {
	crypto.Signer
	faulty atomic.Bool
}

func (f *faultySigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := f.Signer.Sign(rand, digest, opts)
	if err == nil && f.faulty.Load() {
		sig[len(sig)/2] ^= 0x01
	}
	return sig, err
}

// TestFaultySignerPublishesNothing: a precertificate whose signature does
// not verify is never committed nor sent to a log (I1); the reservation
// stays for recovery to abandon.
func TestFaultySignerPublishesNothing(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	key := &faultySigner{Signer: e.Key}
	p := e.Pipeline(func(c *issuance.Config) { c.IssuerKey = key })
	key.faulty.Store(true)
	_, err := p.Issue(e.Ctx, e.Request())
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	require.Equal(t, issuance.StepSignPrecert, ie.Step, "%v", err)
	require.ErrorContains(t, err, "does not verify")
	require.Zero(t, e.Submissions())
	r := e.Record(ie.Serial)
	require.Equal(t, ocspstate.Reserved, r.State)
	require.Empty(t, r.PrecertDER)
}

// TestMetrics: each step of an issuance is observed once, under its name,
// and the outcome counted.
func TestMetrics(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	reg := prometheus.NewRegistry()
	p := e.Pipeline(func(c *issuance.Config) { c.Registerer = reg; c.DisableLint = true })
	for range 2 {
		_, err := p.Issue(e.Ctx, e.Request())
		require.NoError(t, err)
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	steps := map[string]uint64{}
	var issued float64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case f.GetName() == "precert_issuance_step_seconds" && l.GetName() == "step":
					steps[l.GetValue()] = m.GetHistogram().GetSampleCount()
				case f.GetName() == "precert_issuance_total" && l.GetValue() == "issued":
					issued = m.GetCounter().GetValue()
				}
			}
		}
	}
	require.Equal(t, 2.0, issued)
	for _, s := range []issuance.Step{issuance.StepReserve, issuance.StepSignPrecert, issuance.StepSignOCSP, issuance.StepCommitPrecert,
		issuance.StepCT, issuance.StepCommitSCTs, issuance.StepBuildFinal, issuance.StepSignFinal, issuance.StepCommitFinal} {
		require.Equal(t, uint64(2), steps[string(s)], s)
	}
	require.NotContains(t, steps, string(issuance.StepRevoke), "a step never taken has no series")
}
