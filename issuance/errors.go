package issuance

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/certpipe/precert/ocspstate"
)

// Step names a stage of the pipeline, in errors and metrics.
type Step string

// The steps of Issue, Resume and Revoke.
const (
	StepRequest       Step = "request"        // checking the request
	StepReserve       Step = "reserve"        // step 1: serial and intent durable
	StepLint          Step = "lint"           // step 2: lint the precertificate
	StepSignPrecert   Step = "sign-precert"   // step 3
	StepSignOCSP      Step = "sign-ocsp"      // step 4
	StepCommitPrecert Step = "commit-precert" // step 5: precert + OCSP, one transaction
	StepCT            Step = "ct"             // step 6: CT submission
	StepCommitSCTs    Step = "commit-scts"    // step 6: SCTs durable
	StepBuildFinal    Step = "build-final"    // step 7: final TBS, correspondence, lint
	StepSignFinal     Step = "sign-final"     // step 7
	StepCommitFinal   Step = "commit-final"   // step 8
	StepResume        Step = "resume"         // taking over a record
	StepRevoke        Step = "revoke"
)

// Errors callers branch on.
var (
	// ErrCTFailed: CT could not satisfy the policy. The record is
	// CTFailed, its OCSP response good and refreshed until expiry. Use
	// errors.As with *ctsubmit.Error for each log's cause. The caller may
	// retry with a new serial.
	ErrCTFailed = errors.New("issuance: CT policy not satisfied")
	// ErrNotPublished: revocation asked for a serial with no
	// precertificate (Reserved or Abandoned).
	ErrNotPublished = errors.New("issuance: no precertificate was published for this serial")
	// ErrAlreadyRevoked: revocation asked for a different reason or time
	// than the one already recorded; revocation is never altered.
	ErrAlreadyRevoked = errors.New("issuance: already revoked")
	// ErrLeaseLost: another worker took over the record; this worker
	// stopped without committing.
	ErrLeaseLost = errors.New("issuance: lease lost to another worker")
	// ErrInjected is what FaultErr injectors return.
	ErrInjected = errors.New("issuance: injected fault")
)

// Error is what Issue, Resume and Revoke return: the serial, the step that
// failed and why. It unwraps to the cause.
type Error struct {
	Serial *big.Int // nil if no serial was reserved yet
	Step   Step
	Err    error
}

func (e *Error) Error() string {
	if e.Serial == nil {
		return fmt.Sprintf("issuance: %s: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("issuance: serial %s: %s: %v", ocspstate.SerialHex(e.Serial), e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func stepErr(serial *big.Int, step Step, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Step == step {
		return err
	}
	if errors.Is(err, ocspstate.ErrLeaseHeld) && !errors.Is(err, ErrLeaseLost) {
		err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	return &Error{Serial: serial, Step: step, Err: err}
}

// FaultPoint names a step boundary where a FaultInjector is called. At each
// one a crash leaves a distinct durable state; see the comments at each call
// in pipeline.go for what recovery does with it.
type FaultPoint string

// The fault points of the pipeline, in the order Issue reaches them.
const (
	AfterReserve       FaultPoint = "after-reserve"        // Reserved durable; nothing signed
	AfterLint          FaultPoint = "after-lint"           // Reserved; lint passed
	AfterSignPrecert   FaultPoint = "after-sign-precert"   // Reserved; precert signed in memory only
	AfterSignOCSP      FaultPoint = "after-sign-ocsp"      // Reserved; response signed in memory only
	AfterCommitPrecert FaultPoint = "after-commit-precert" // Precert durable, OCSP good; not yet submitted
	AfterCT            FaultPoint = "after-ct"             // Precert; SCTs in memory only
	AfterCommitSCTs    FaultPoint = "after-commit-scts"    // SCTs durable
	AfterSignFinal     FaultPoint = "after-sign-final"     // SCTs; final signed in memory only
	AfterCommitFinal   FaultPoint = "after-commit-final"   // Issued durable; not yet returned
	AfterSignRevoked   FaultPoint = "after-sign-revoked"   // revoked response signed in memory only
	AfterCommitRevoked FaultPoint = "after-commit-revoked" // revocation durable
)

// FaultPoints lists the issuance fault points in order (revocation's last).
var FaultPoints = []FaultPoint{
	AfterReserve, AfterLint, AfterSignPrecert, AfterSignOCSP, AfterCommitPrecert,
	AfterCT, AfterCommitSCTs, AfterSignFinal, AfterCommitFinal,
	AfterSignRevoked, AfterCommitRevoked,
}

// FaultInjector is called at every fault point. Returning an error makes
// the pipeline stop there as if that step had failed; it may also block, or
// kill the process (the crash harness sends itself SIGKILL).
type FaultInjector interface {
	Fault(ctx context.Context, point FaultPoint, serial *big.Int) error
}

// FaultFunc adapts a function to FaultInjector.
type FaultFunc func(ctx context.Context, point FaultPoint, serial *big.Int) error

// Fault implements FaultInjector.
func (f FaultFunc) Fault(ctx context.Context, point FaultPoint, serial *big.Int) error {
	return f(ctx, point, serial)
}

// FaultErr returns an injector that fails with ErrInjected at point, for
// every serial.
func FaultErr(point FaultPoint) FaultInjector {
	return FaultFunc(func(_ context.Context, p FaultPoint, _ *big.Int) error {
		if p == point {
			return fmt.Errorf("%w at %s", ErrInjected, p)
		}
		return nil
	})
}
