// Package crashtest is a crash harness: it runs issuance in a child
// process, kills that process with SIGKILL at a chosen fault point or at a
// random moment — no deferred function runs, no buffer is flushed — and
// then checks, in the parent, that recovery leaves a store with no
// violation. It is exported so that a CA can run the same harness against
// its own integration of the pipeline.
//
// A harness is one Go test that is both parent and child:
//
//	func TestCrash(t *testing.T) {
//		if crashtest.IsChild() {
//			childWork(t) // issue with crashtest.KillAt(...) as the fault injector
//			return
//		}
//		for _, point := range issuance.FaultPoints {
//			out := crashtest.Spawn(t, "TestCrash", map[string]string{"point": string(point)}, time.Minute, 0)
//			// reopen the store, then:
//			v, err := crashtest.Verify(ctx, sweeper, auditor, store, now)
//			// v.Violations must be empty, v.SecondDue zero.
//		}
//	}
//
// The child reads its parameters with Param.
package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

const (
	envChild  = "PRECERT_CRASHTEST_CHILD"
	envPrefix = "PRECERT_CRASHTEST_"
)

// IsChild reports whether this process was started by Spawn.
func IsChild() bool { return os.Getenv(envChild) == "1" }

// Param returns the child parameter name that Spawn passed, or "".
func Param(name string) string { return os.Getenv(envPrefix + "P_" + strings.ToUpper(name)) }

// Outcome is how a child ended.
type Outcome struct {
	// Killed is true if the child died of SIGKILL: the injector fired, or
	// Spawn killed it after killAfter.
	Killed bool
	// ExitCode is the child's exit code when it exited by itself.
	ExitCode int
	// Output is what the child wrote to stdout and stderr.
	Output string
}

// Spawn re-executes the running test binary to run only the test named
// testName, as a child (IsChild is true there), with params in its
// environment (see Param). If killAfter is positive, Spawn sends the child
// SIGKILL after that long — a kill at a random moment rather than at a
// fault point. It waits up to timeout for the child to end, then kills it
// and fails t.
func Spawn(t testing.TB, testName string, params map[string]string, timeout, killAfter time.Duration) Outcome {
	t.Helper()
	c := Start(t, testName, params, timeout)
	var kill <-chan time.Time
	if killAfter > 0 {
		kill = time.After(killAfter)
	}
	deadline := time.After(timeout)
	for {
		select {
		case <-c.Done():
			return c.Wait()
		case <-kill:
			c.Kill()
			kill = nil
		case <-deadline:
			c.Kill()
			t.Fatalf("crashtest: child %s did not finish within %s; output:\n%s", testName, timeout, c.Wait().Output)
		}
	}
}

func outcome(err error, output string) Outcome {
	o := Outcome{Output: output}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			o.Killed = true
			return o
		}
		o.ExitCode = ee.ExitCode()
	}
	return o
}

// KillAt returns an injector that sends SIGKILL to this very process the
// nth time any goroutine reaches point (n counts from 1), and blocks the
// goroutine until the signal lands. Every other call passes.
func KillAt(point issuance.FaultPoint, nth int) issuance.FaultInjector {
	var hits atomic.Int64
	return issuance.FaultFunc(func(_ context.Context, p issuance.FaultPoint, _ *big.Int) error {
		if p == point && hits.Add(1) == int64(nth) {
			Die()
		}
		return nil
	})
}

// Die sends SIGKILL to this process and never returns.
func Die() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// Verdict is what Verify found.
type Verdict struct {
	// Sweep is the report of the recovery sweep.
	Sweep *recovery.Report
	// Violations are what the audit found after the sweep.
	Violations []recovery.Violation
	// SecondDue is how many records a second sweep found due: zero when
	// recovery is complete and idempotent.
	SecondDue int
	// Counts are the records per state after recovery.
	Counts map[ocspstate.State]int
}

// OK reports whether recovery left nothing to fix.
func (v *Verdict) OK() bool {
	return len(v.Violations) == 0 && v.SecondDue == 0 && len(v.Sweep.Errors) == 0
}

// String summarises the verdict.
func (v *Verdict) String() string {
	return fmt.Sprintf("sweep: %s; violations %d; second sweep due %d; states %v", v.Sweep, len(v.Violations), v.SecondDue, v.Counts)
}

// Verify is what the parent does after a crash: sweep the reopened store,
// audit it at now, and sweep again.
func Verify(ctx context.Context, s *recovery.Sweeper, a *recovery.Auditor, store ocspstate.Store, now time.Time) (*Verdict, error) {
	rep, err := s.Sweep(ctx)
	if err != nil {
		return nil, fmt.Errorf("crashtest: sweep: %w", err)
	}
	v := &Verdict{Sweep: rep}
	if v.Violations, err = a.Audit(ctx, store, now); err != nil {
		return nil, fmt.Errorf("crashtest: audit: %w", err)
	}
	again, err := s.Sweep(ctx)
	if err != nil {
		return nil, fmt.Errorf("crashtest: second sweep: %w", err)
	}
	v.SecondDue = again.Due
	if v.Counts, err = store.Counts(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Child is a child process started by Start, running alongside the parent
// and its other children.
type Child struct {
	cmd     *exec.Cmd
	out     bytes.Buffer
	done    chan struct{}
	outcome Outcome
}

// Start is Spawn without the wait: it re-executes the running test binary
// to run only testName, as a child with params (see Param), and returns at
// once, so that a parent can run several children at a time and kill them
// in any order. The child runs with -test.timeout=timeout, so the Go test
// runtime ends it (a panic, exit code 2) if it runs longer; it is killed
// when t ends.
func Start(t testing.TB, testName string, params map[string]string, timeout time.Duration) *Child {
	t.Helper()
	c := &Child{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+testName+"$", "-test.count=1", "-test.timeout="+timeout.String())
	c.cmd.Env = append(os.Environ(), envChild+"=1")
	for k, v := range params {
		c.cmd.Env = append(c.cmd.Env, envPrefix+"P_"+strings.ToUpper(k)+"="+v)
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("crashtest: starting child: %v", err)
	}
	go func() {
		err := c.cmd.Wait()
		c.outcome = outcome(err, c.out.String())
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Kill()
		c.Wait()
	})
	return c
}

// Pid returns the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Kill sends the child SIGKILL. Killing a child that has ended does
// nothing.
func (c *Child) Kill() {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// Done is closed when the child has ended.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits for the child to end and returns how.
func (c *Child) Wait() Outcome {
	<-c.done
	return c.outcome
}
