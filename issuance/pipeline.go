package issuance

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/ocspstate"
)

// Request is what the CA decided to certify. The pipeline owns the serial
// number, the issuer fields, the signature algorithm, and the poison and SCT
// list extensions; everything else comes from here.
type Request struct {
	PublicKey crypto.PublicKey

	Subject        pkix.Name
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	URIs           []*url.URL

	NotBefore time.Time
	NotAfter  time.Time

	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	Policies    []x509.OID

	OCSPServer            []string
	IssuingCertificateURL []string
	CRLDistributionPoints []string

	// ExtraExtensions are added as they are. They may not carry the CT
	// poison, the SCT list or the precertificate signing EKU OIDs.
	ExtraExtensions []pkix.Extension
}

// Result is a certificate on its way or at its end.
type Result struct {
	Serial  *big.Int
	State   ocspstate.State
	Precert *x509.Certificate
	// SCTs are the TLS-encoded SCTs embedded in Final.
	SCTs [][]byte
	// Final is the final certificate, set when State is Issued.
	Final *x509.Certificate
	// Moved is true when this call moved the record to State; false when
	// Resume found it there already (another worker finished it).
	Moved bool
}

// Pipeline drives serials from intent to final certificate. It is safe for
// concurrent use: call Issue from as many goroutines as you like.
type Pipeline struct {
	cfg     Config
	is      *issuer
	issuer  ocspstate.IssuerID
	log     *slog.Logger
	metrics *metrics
}

// New checks cfg and returns a Pipeline. With linting on (the default) it
// builds the zlint registry and a throwaway lint key of the issuer's type
// and size (slow for large RSA keys: do it once at startup).
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	linter := cfg.Linter
	if cfg.DisableLint {
		linter = nil
	} else if linter == nil {
		z, err := NewZLinter(ZLintConfig{})
		if err != nil {
			return nil, err
		}
		linter = z
	}
	chain := make([][]byte, len(cfg.Chain))
	for i, c := range cfg.Chain {
		chain[i] = c.Raw
	}
	is, err := newIssuer(cfg.Issuer, cfg.IssuerKey, linter, chain)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pipeline{
		cfg: cfg, is: is, issuer: ocspstate.IssuerIDOf(cfg.Issuer),
		log: cfg.Logger.With("issuer", ocspstate.IssuerIDOf(cfg.Issuer).String(), "owner", cfg.Owner), metrics: m,
	}, nil
}

// IssuerID returns the ID records of this pipeline carry.
func (p *Pipeline) IssuerID() ocspstate.IssuerID { return p.issuer }

// Owner returns the lease owner name of this pipeline.
func (p *Pipeline) Owner() string { return p.cfg.Owner }

// Issue takes req from intent to final certificate:
//
//  1. reserve a fresh serial with the unsigned precertificate TBS (the
//     intent) and a lease;
//  2. lint the precertificate, signed with a throwaway key — a lint
//     failure stops here, the real key never signed anything;
//  3. sign the precertificate and check its TBS equals the intent;
//  4. sign the initial good OCSP response;
//  5. commit precertificate, OCSPEnabled, response and state Precert in
//     one transaction (I1);
//  6. submit to CT and commit the verified SCTs;
//  7. build the final TBS from the precertificate, check it corresponds
//     (I4), lint it, sign it;
//  8. commit the final certificate; only then return it.
//
// Each step is durable before the next. If CT cannot satisfy the policy,
// the record becomes CTFailed — OCSP stays enabled and good — and Issue
// returns an *Error matching ErrCTFailed. If the caller's context ends
// after step 5, the record stays in Precert with its lease released, and
// recovery finishes it. Errors are *Error values naming serial and step.
func (p *Pipeline) Issue(ctx context.Context, req *Request) (*Result, error) {
	start := p.cfg.Now()
	res, err := p.issue(ctx, req)
	p.metrics.outcome(err, p.cfg.Now().Sub(start))
	if err != nil && !errors.Is(err, ErrCTFailed) { // CT failures were logged with their causes
		p.log.Warn("issuance failed", "err", err)
	}
	return res, err
}

func (p *Pipeline) issue(ctx context.Context, req *Request) (*Result, error) {
	tmpl, err := p.template(req)
	if err != nil {
		return nil, stepErr(nil, StepRequest, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, stepErr(nil, StepRequest, err)
	}

	// Step 1: the serial and the intent become durable before anything is
	// signed with the real key. The intent is the exact TBS the real key
	// will sign (see issuer.intent).
	var rec *ocspstate.Record
	var in *x509.Certificate // carries the intent
	for attempt := 0; ; attempt++ {
		serial, err := p.cfg.Serials.Serial()
		if err != nil {
			return nil, stepErr(nil, StepReserve, err)
		}
		tmpl.SerialNumber = serial
		t0 := p.cfg.Now()
		in, err = p.is.intent(tmpl)
		if err != nil {
			return nil, stepErr(serial, StepReserve, err)
		}
		now := p.cfg.Now()
		rec = &ocspstate.Record{
			Issuer:    p.issuer,
			Serial:    serial,
			State:     ocspstate.Reserved,
			IntentDER: in.RawTBSCertificate,
			NotBefore: in.NotBefore,
			NotAfter:  in.NotAfter,
			Lease:     ocspstate.Lease{Owner: p.cfg.Owner, Expires: now.Add(p.cfg.LeaseDuration)},
		}
		err = p.cfg.Store.Reserve(ctx, rec)
		p.metrics.step(StepReserve, p.cfg.Now().Sub(t0))
		if errors.Is(err, ocspstate.ErrSerialExists) && attempt < 3 {
			continue // a collision of fresh random serials; draw again
		}
		if err != nil {
			return nil, stepErr(serial, StepReserve, err)
		}
		break
	}
	serial := rec.Serial
	// Crash here: Reserved, nothing signed. Recovery abandons the serial
	// once the lease expires; the serial is never reused (I3).
	if err := p.fault(ctx, AfterReserve, serial); err != nil {
		return nil, stepErr(serial, StepReserve, err)
	}

	work, stop := p.holdLease(ctx, serial)
	defer stop()

	// Step 2: lint. Failure abandons the reservation: nothing was signed.
	var tok *precertToken
	if err := p.step(work, serial, StepLint, AfterLint, func() (err error) {
		tok, err = p.is.preparePrecert(in)
		if err != nil {
			p.abandon(ctx, serial)
		}
		return err
	}); err != nil {
		return nil, err
	}

	// Step 3: the real signature. Nothing public exists until step 5
	// commits: a crash between here and there leaves Reserved, which
	// recovery abandons — the signed precertificate never left memory.
	var precert *x509.Certificate
	if err := p.step(work, serial, StepSignPrecert, AfterSignPrecert, func() (err error) {
		precert, err = p.is.signPrecert(tok)
		return err
	}); err != nil {
		return nil, err
	}

	// Step 4: the initial good response.
	var resp *ocspstate.Response
	if err := p.step(work, serial, StepSignOCSP, AfterSignOCSP, func() (err error) {
		resp, err = p.cfg.Responses.Sign(serial, ocspstate.Good, time.Time{}, 0)
		return err
	}); err != nil {
		return nil, err
	}

	// Step 5: precertificate, OCSPEnabled and the response, one
	// transaction. From this commit on, OCSP answers for the serial (I2).
	// Crash after it: Precert durable with a good response, never
	// submitted. Recovery resumes it after the lease expires: submits the
	// same precertificate and finishes.
	if err := p.step(work, serial, StepCommitPrecert, AfterCommitPrecert, func() (err error) {
		rec, err = p.cfg.Store.Update(work, p.issuer, serial, func(r *ocspstate.Record) error {
			if err := p.owns(r, ocspstate.Reserved); err != nil {
				return err
			}
			r.State = ocspstate.Precert
			r.PrecertDER = precert.Raw
			r.OCSP.Enabled = true
			r.OCSP.Status = ocspstate.Good
			r.SetResponse(resp)
			return nil
		})
		return err
	}); err != nil {
		return nil, err
	}
	return p.finish(ctx, work, rec, precert)
}

// finish runs steps 6 to 8 for a record in Precert or SCTs whose lease this
// worker holds. work is cancelled if the lease is lost.
func (p *Pipeline) finish(ctx, work context.Context, rec *ocspstate.Record, precert *x509.Certificate) (*Result, error) {
	serial := rec.Serial
	if rec.State == ocspstate.Precert {
		// Step 6: CT. Only now does the precertificate leave the process.
		t0 := p.cfg.Now()
		chain := append([][]byte{precert.Raw}, p.is.chain...)
		scts, ctErr := p.cfg.CT.Submit(work, chain, precert.NotAfter)
		p.metrics.step(StepCT, p.cfg.Now().Sub(t0))
		if ctErr != nil {
			return nil, p.ctFailed(ctx, work, serial, ctErr)
		}
		raws := make([][]byte, len(scts))
		for i, s := range scts {
			raws[i] = s.Raw
		}
		// Crash here: the SCTs are lost with the process; recovery
		// resubmits the same precertificate, which logs accept again.
		if err := p.fault(work, AfterCT, serial); err != nil {
			return nil, stepErr(serial, StepCT, err)
		}
		// Crash after this commit: SCTs durable; recovery builds the final
		// certificate from them without paying CT again.
		if err := p.step(work, serial, StepCommitSCTs, AfterCommitSCTs, func() (err error) {
			rec, err = p.advance(ctx, serial, ocspstate.Precert, func(r *ocspstate.Record) {
				r.State = ocspstate.SCTs
				r.SCTs = raws
			})
			return err
		}); err != nil {
			return nil, err
		}
	}
	if rec.State != ocspstate.SCTs {
		return nil, stepErr(serial, StepBuildFinal, fmt.Errorf("record is %s, want SCTs", rec.State))
	}

	// Step 7: the final certificate, from the precertificate and the SCTs.
	var tok *finalToken
	if err := p.step(work, serial, StepBuildFinal, "", func() error {
		ext, err := ctsubmit.SCTListExtension(rec.SCTs)
		if err == nil {
			tok, err = p.is.prepareFinal(precert, ext.Value)
		}
		return err
	}); err != nil {
		return nil, err
	}
	// Crash after signing: the final certificate never left memory;
	// recovery signs it again from the same precertificate and SCTs.
	var final *x509.Certificate
	if err := p.step(work, serial, StepSignFinal, AfterSignFinal, func() (err error) {
		final, err = p.is.signFinal(tok)
		return err
	}); err != nil {
		return nil, err
	}

	// Step 8: commit, then return. At most one final certificate is ever
	// committed per serial: the closure refuses anything but SCTs. Crash
	// after this commit: Issued and durable, but the caller never heard;
	// the certificate is in the store for the caller to fetch by serial.
	if err := p.step(work, serial, StepCommitFinal, AfterCommitFinal, func() (err error) {
		rec, err = p.advance(ctx, serial, ocspstate.SCTs, func(r *ocspstate.Record) {
			r.State = ocspstate.Issued
			r.FinalDER = final.Raw
			r.Lease = ocspstate.Lease{}
		})
		return err
	}); err != nil {
		return nil, err
	}
	p.log.Info("issued", "serial", ocspstate.SerialHex(serial), "scts", len(rec.SCTs))
	return &Result{Serial: serial, State: ocspstate.Issued, Precert: precert, SCTs: rec.SCTs, Final: final, Moved: true}, nil
}

// step runs one step of the pipeline: it times fn under the step's name,
// wraps its error with the serial and the step, and then calls the fault
// injector at point (none if empty), whose error is the step's too.
func (p *Pipeline) step(ctx context.Context, serial *big.Int, name Step, point FaultPoint, fn func() error) error {
	t0 := p.cfg.Now()
	err := fn()
	p.metrics.step(name, p.cfg.Now().Sub(t0))
	if err == nil && point != "" {
		err = p.fault(ctx, point, serial)
	}
	return stepErr(serial, name, err)
}

// ctFailed handles a CT submission that returned no SCTs. If the caller
// gave up or the lease was lost, that is no CT verdict: the record stays in
// Precert, its lease released, for recovery. Otherwise the record becomes
// CTFailed — OCSP enabled and good — and the error matches ErrCTFailed.
func (p *Pipeline) ctFailed(ctx, work context.Context, serial *big.Int, ctErr error) error {
	if ctx.Err() != nil || work.Err() != nil {
		p.release(ctx, serial)
		cause := ctx.Err()
		if cause == nil {
			cause = context.Cause(work)
		}
		return stepErr(serial, StepCT, fmt.Errorf("%w (CT: %v)", cause, ctErr))
	}
	_, err := p.advance(ctx, serial, ocspstate.Precert, func(r *ocspstate.Record) {
		r.State = ocspstate.CTFailed
		r.Lease = ocspstate.Lease{}
	})
	if err != nil {
		return stepErr(serial, StepCT, fmt.Errorf("%w; recording CTFailed: %w", ctErr, err))
	}
	p.log.Warn("CT policy not satisfied; precertificate kept with OCSP good", "serial", ocspstate.SerialHex(serial), "err", ctErr)
	return stepErr(serial, StepCT, fmt.Errorf("%w: %w", ErrCTFailed, ctErr))
}

// Resume continues the record (issuer, serial) from whatever durable state
// it is in, for recovery:
//
//   - Reserved → Abandoned: the request is gone and nothing was published;
//   - Precert → resubmit the same precertificate to CT (logs accept it
//     again) and finish, or CTFailed;
//   - SCTs → build, sign and commit the final certificate;
//   - Issued, CTFailed, Abandoned → nothing to do; returns what is stored,
//     with Result.Moved false.
//
// It first takes the record's lease, which fails with ErrLeaseLost while
// another worker's lease is unexpired. Safe to call concurrently from many
// workers and processes: at most one holds the lease, and one that lost it
// cannot commit.
func (p *Pipeline) Resume(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) (*Result, error) {
	if issuer != p.issuer {
		return nil, stepErr(serial, StepResume, fmt.Errorf("record belongs to issuer %s, this pipeline signs for %s", issuer, p.issuer))
	}
	rec, err := p.cfg.Store.Get(ctx, issuer, serial)
	if err != nil {
		return nil, stepErr(serial, StepResume, err)
	}
	if !rec.State.InFlight() {
		return p.stored(rec)
	}
	rec, err = p.cfg.Store.Update(ctx, issuer, serial, func(r *ocspstate.Record) error {
		if err := r.CheckLease(p.cfg.Owner, p.cfg.Now()); err != nil {
			return err
		}
		if !r.State.InFlight() {
			return nil // finished meanwhile
		}
		r.Lease = ocspstate.Lease{Owner: p.cfg.Owner, Expires: p.cfg.Now().Add(p.cfg.LeaseDuration)}
		return nil
	})
	if err != nil {
		return nil, stepErr(serial, StepResume, err)
	}
	if !rec.State.InFlight() {
		return p.stored(rec)
	}
	p.log.Info("resuming", "serial", ocspstate.SerialHex(serial), "state", rec.State.String())
	if rec.State == ocspstate.Reserved {
		if rec, err = p.advance(ctx, serial, ocspstate.Reserved, abandoned); err != nil {
			return nil, stepErr(serial, StepResume, err)
		}
		res, err := p.stored(rec)
		if res != nil {
			res.Moved = true
		}
		return res, err
	}
	precert, err := x509.ParseCertificate(rec.PrecertDER)
	if err != nil {
		return nil, stepErr(serial, StepResume, fmt.Errorf("stored precertificate does not parse: %w", err))
	}
	work, stop := p.holdLease(ctx, serial)
	defer stop()
	return p.finish(ctx, work, rec, precert)
}

func (p *Pipeline) stored(rec *ocspstate.Record) (*Result, error) {
	res := &Result{Serial: rec.Serial, State: rec.State, SCTs: rec.SCTs}
	var err error
	if len(rec.PrecertDER) > 0 {
		if res.Precert, err = x509.ParseCertificate(rec.PrecertDER); err != nil {
			return nil, stepErr(rec.Serial, StepResume, fmt.Errorf("stored precertificate does not parse: %w", err))
		}
	}
	if len(rec.FinalDER) > 0 {
		if res.Final, err = x509.ParseCertificate(rec.FinalDER); err != nil {
			return nil, stepErr(rec.Serial, StepResume, fmt.Errorf("stored final certificate does not parse: %w", err))
		}
	}
	return res, nil
}

// Revoke marks (issuer, serial) revoked at at (the zero time means now)
// with an RFC 5280 reason allowed by BR §7.2.2 for subscriber certificates,
// re-signing its OCSP response as revoked in the same transaction. It
// works for every record from Precert on — including a precertificate whose
// final certificate never existed — without waiting for any lease.
// Revoking again with the same reason and time is a no-op; revocation is
// never undone or altered (ErrAlreadyRevoked).
func (p *Pipeline) Revoke(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int, reason int, at time.Time) (*ocspstate.Record, error) {
	if err := ocspstate.CheckSubscriberReason(reason); err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	if issuer != p.issuer {
		return nil, stepErr(serial, StepRevoke, fmt.Errorf("record belongs to issuer %s, this pipeline signs for %s", issuer, p.issuer))
	}
	if at.IsZero() {
		at = p.cfg.Now()
	}
	at = at.UTC().Truncate(time.Second)
	rec, err := p.cfg.Store.Get(ctx, issuer, serial)
	if err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	if same, err := revokedAlready(rec, reason, at); same || err != nil {
		return rec, stepErr(serial, StepRevoke, err)
	}
	if !rec.State.Published() {
		return nil, stepErr(serial, StepRevoke, fmt.Errorf("%w (state %s)", ErrNotPublished, rec.State))
	}
	resp, err := p.cfg.Responses.Sign(serial, ocspstate.Revoked, at, reason)
	if err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	// Crash here: still good on disk; the caller's Revoke never returned
	// and must be repeated.
	if err := p.fault(ctx, AfterSignRevoked, serial); err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	rec, err = p.cfg.Store.Update(ctx, issuer, serial, func(r *ocspstate.Record) error {
		if same, err := revokedAlready(r, reason, at); same || err != nil {
			return err
		}
		r.OCSP.Status = ocspstate.Revoked
		r.OCSP.RevokedAt = at
		r.OCSP.Reason = reason
		r.SetResponse(resp)
		return nil
	})
	if err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	// Crash here: revoked and durable; repeating Revoke is a no-op.
	if err := p.fault(ctx, AfterCommitRevoked, serial); err != nil {
		return nil, stepErr(serial, StepRevoke, err)
	}
	p.log.Info("revoked", "serial", ocspstate.SerialHex(serial), "reason", reason)
	return rec, nil
}

func revokedAlready(r *ocspstate.Record, reason int, at time.Time) (bool, error) {
	if r.OCSP.Status != ocspstate.Revoked {
		return false, nil
	}
	if r.OCSP.Reason == reason && r.OCSP.RevokedAt.Equal(at) {
		return true, nil
	}
	return true, fmt.Errorf("%w at %s with reason %d; revocation is never altered", ErrAlreadyRevoked,
		r.OCSP.RevokedAt.UTC().Format(time.RFC3339), r.OCSP.Reason)
}

// owns checks, inside an Update closure, that this worker still holds the
// lease and the record is still where it left it.
func (p *Pipeline) owns(r *ocspstate.Record, want ocspstate.State) error {
	if !r.HoldsLease(p.cfg.Owner, p.cfg.Now()) {
		return fmt.Errorf("%w: lease on serial %s is held by %q until %s", ErrLeaseLost, ocspstate.SerialHex(r.Serial),
			r.Lease.Owner, r.Lease.Expires.UTC().Format(time.RFC3339))
	}
	if r.State != want {
		return fmt.Errorf("%w: serial %s is %s, expected %s", ErrLeaseLost, ocspstate.SerialHex(r.Serial), r.State, want)
	}
	return nil
}

// holdLease renews this worker's lease on serial every third of the lease
// duration until stop is called. The returned context is cancelled if the
// lease is lost, so work in progress (CT submission) stops early; commits
// would be refused anyway. Renewals run on a timer, not a goroutine of
// their own, which would sit idle through most issuances; stop waits for
// a renewal in progress, and none starts after it returns.
func (p *Pipeline) holdLease(ctx context.Context, serial *big.Int) (context.Context, func()) {
	work, cancel := context.WithCancelCause(ctx)
	period := p.cfg.LeaseDuration / 3
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
		timer   *time.Timer
	)
	renew := func() {
		mu.Lock()
		if stopped || work.Err() != nil {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		_, err := p.cfg.Store.Update(work, p.issuer, serial, func(r *ocspstate.Record) error {
			if !r.State.InFlight() {
				return nil
			}
			if !r.HoldsLease(p.cfg.Owner, p.cfg.Now()) {
				return ErrLeaseLost
			}
			r.Lease.Expires = p.cfg.Now().Add(p.cfg.LeaseDuration)
			return nil
		})
		if errors.Is(err, ErrLeaseLost) {
			p.log.Warn("lease lost; stopping", "serial", ocspstate.SerialHex(serial))
			cancel(ErrLeaseLost)
			return
		}
		mu.Lock()
		if !stopped {
			timer.Reset(period)
		}
		mu.Unlock()
	}
	mu.Lock()
	timer = time.AfterFunc(period, renew)
	mu.Unlock()
	return work, func() {
		mu.Lock()
		stopped = true
		timer.Stop()
		mu.Unlock()
		running.Wait()
		cancel(nil)
	}
}

// advance commits one step of serial's record: from state from, which
// this worker must still own (see owns), to what mutate makes of it. The
// write is detached from the caller's cancellation (commitCtx): once a
// step's work is done, its commit must finish.
func (p *Pipeline) advance(ctx context.Context, serial *big.Int, from ocspstate.State, mutate func(*ocspstate.Record)) (*ocspstate.Record, error) {
	cctx, cancel := p.commitCtx(ctx)
	defer cancel()
	return p.cfg.Store.Update(cctx, p.issuer, serial, func(r *ocspstate.Record) error {
		if err := p.owns(r, from); err != nil {
			return err
		}
		mutate(r)
		return nil
	})
}

// abandoned gives a reservation up: the serial stays used (I3).
func abandoned(r *ocspstate.Record) {
	r.State = ocspstate.Abandoned
	r.Lease = ocspstate.Lease{}
}

// abandon gives up a reservation nothing was signed for.
func (p *Pipeline) abandon(ctx context.Context, serial *big.Int) {
	if _, err := p.advance(ctx, serial, ocspstate.Reserved, abandoned); err != nil {
		p.log.Warn("abandoning reservation failed; recovery will abandon it when the lease expires", "serial", ocspstate.SerialHex(serial), "err", err)
	}
}

// release gives up this worker's lease on an in-flight record, so recovery
// can take it at once.
func (p *Pipeline) release(ctx context.Context, serial *big.Int) {
	cctx, cancel := p.commitCtx(ctx)
	defer cancel()
	_, err := p.cfg.Store.Update(cctx, p.issuer, serial, func(r *ocspstate.Record) error {
		if r.Lease.Owner != p.cfg.Owner {
			return nil
		}
		r.Lease.Owner = ""
		r.Lease.Expires = p.cfg.Now()
		return nil
	})
	if err != nil {
		p.log.Warn("releasing lease failed; recovery takes over when it expires", "serial", ocspstate.SerialHex(serial), "err", err)
	}
}

// commitCtx detaches writes that must finish from the caller's
// cancellation, bounded by CommitTimeout.
func (p *Pipeline) commitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.cfg.CommitTimeout)
}

func (p *Pipeline) fault(ctx context.Context, point FaultPoint, serial *big.Int) error {
	if p.cfg.Faults == nil {
		return nil
	}
	return p.cfg.Faults.Fault(ctx, point, serial)
}

// template turns a request into the precertificate template.
func (p *Pipeline) template(req *Request) (*x509.Certificate, error) {
	if req == nil {
		return nil, errors.New("nil request")
	}
	if req.PublicKey == nil {
		return nil, errors.New("request has no public key")
	}
	if req.NotBefore.IsZero() || !req.NotAfter.After(req.NotBefore) {
		return nil, fmt.Errorf("request validity %s to %s is empty", req.NotBefore, req.NotAfter)
	}
	if req.NotAfter.After(p.cfg.Issuer.NotAfter) {
		return nil, fmt.Errorf("request NotAfter %s is after the issuer's %s", req.NotAfter.UTC().Format(time.RFC3339), p.cfg.Issuer.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, u := range req.URIs {
		if u == nil {
			return nil, errors.New("request has a nil URI")
		}
	}
	for _, e := range req.ExtraExtensions {
		if e.Id.Equal(OIDPoison) || e.Id.Equal(OIDSCTList) || e.Id.Equal(OIDPrecertSigning) {
			return nil, fmt.Errorf("request carries extension %v, which the pipeline owns", e.Id)
		}
	}
	exts := append([]pkix.Extension(nil), req.ExtraExtensions...)
	exts = append(exts, ctsubmit.PoisonExtension())
	return &x509.Certificate{
		PublicKey:             req.PublicKey,
		Subject:               req.Subject,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		EmailAddresses:        req.EmailAddresses,
		URIs:                  req.URIs,
		NotBefore:             req.NotBefore.UTC().Truncate(time.Second),
		NotAfter:              req.NotAfter.UTC().Truncate(time.Second),
		KeyUsage:              req.KeyUsage,
		ExtKeyUsage:           req.ExtKeyUsage,
		Policies:              req.Policies,
		OCSPServer:            req.OCSPServer,
		IssuingCertificateURL: req.IssuingCertificateURL,
		CRLDistributionPoints: req.CRLDistributionPoints,
		BasicConstraintsValid: true,
		ExtraExtensions:       exts,
	}, nil
}
