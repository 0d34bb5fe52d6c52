package crashtest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/storetest"
	"github.com/certpipe/precert/recovery"
	"github.com/certpipe/precert/recovery/crashtest"
)

// The child's workload, and how far its clock jumps before it sweeps.
const (
	childCerts   = 12
	childWorkers = 4
	childJump    = 4 * 24 * time.Hour // every response is due for re-signing
	// The parent works after the child's last moment and after every
	// lease the child could have held.
	parentLead = childJump + 10*time.Minute
)

// trials is the number of trials per fault point: PRECERT_CRASH_TRIALS, 2
// by default so that a plain `go test ./...` stays quick; .ci/run asks for
// 20.
func trials(t *testing.T) int {
	n := 2
	if s := os.Getenv("PRECERT_CRASH_TRIALS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err, "PRECERT_CRASH_TRIALS")
		n = v
	}
	if testing.Short() {
		n = 1
	}
	return n
}

// harness holds what parent and children share: the CA and the CT log keys,
// saved to a directory.
type harness struct {
	dir     string
	ca      *testpki.CA
	logKeys []*ecdsa.PrivateKey
}

func newHarness(t *testing.T) *harness {
	h := &harness{dir: t.TempDir(), ca: testpki.Shared(t, testpki.ECDSAP256)}
	require.NoError(t, h.ca.Save(h.dir))
	var err error
	h.logKeys, err = ctlogtest.NewKeys(h.dir, 2)
	require.NoError(t, err)
	return h
}

func loadHarness(t *testing.T, dir string) *harness {
	h := &harness{dir: dir}
	var err error
	h.ca, err = testpki.Load(dir)
	require.NoError(t, err)
	h.logKeys, err = ctlogtest.LoadKeys(dir, 2)
	require.NoError(t, err)
	return h
}

// TestCrash is parent and child. As parent, for every fault point of the
// pipeline, of revocation and of the sweep, it runs children that issue
// concurrently and die by SIGKILL at that point; then it reopens the store,
// sweeps, audits and sweeps again. It also kills children at random
// moments, and while their CT logs are down.
func TestCrash(t *testing.T) {
	if crashtest.IsChild() {
		child(t)
		return
	}
	n := trials(t)
	h := newHarness(t)
	var total, violations, killed atomic.Int64
	points := append(append([]issuance.FaultPoint{}, issuance.FaultPoints...), recovery.SweepFaultPoints...)
	run := func(t *testing.T, params map[string]string, killAfter time.Duration) *crashtest.Verdict {
		t.Helper()
		dir := t.TempDir()
		params["dir"] = h.dir
		params["db"] = filepath.Join(dir, "ocsp.db")
		params["start"] = strconv.FormatInt(time.Now().Unix(), 10)
		out := crashtest.Spawn(t, "TestCrash", params, 2*time.Minute, killAfter)
		if out.Killed {
			killed.Add(1)
		}
		if !out.Killed && out.ExitCode != 0 {
			t.Fatalf("child failed (exit %d):\n%s", out.ExitCode, out.Output)
		}
		if params["point"] != "none" && !out.Killed {
			t.Fatalf("child never reached %s the %sth time; output:\n%s", params["point"], params["nth"], out.Output)
		}
		if _, err := os.Stat(params["db"]); err != nil {
			return nil // killed before it created the store: nothing to recover
		}
		v := recoverStore(t, h, params)
		total.Add(1)
		violations.Add(int64(len(v.Violations)))
		if !v.OK() {
			t.Errorf("recovery after %v left: %s\n%v\nchild output:\n%s", params, v, v.Violations, out.Output)
		}
		return v
	}
	for _, point := range points {
		t.Run(string(point), func(t *testing.T) {
			t.Parallel()
			for i := 0; i < n; i++ {
				nth := 1 + i%2
				out := map[string]string{"point": string(point), "nth": strconv.Itoa(nth)}
				v := run(t, out, 0)
				require.NotNil(t, v)
			}
		})
	}
	t.Run("random-moments", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < n*2; i++ {
			run(t, map[string]string{"point": "none"}, time.Duration(50+mrand.IntN(400))*time.Millisecond)
		}
	})

	t.Run("ct-down-then-back", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < n; i++ {
			v := run(t, map[string]string{"point": "none", "ctdown": "1"}, time.Duration(200+mrand.IntN(600))*time.Millisecond)
			if v == nil {
				continue
			}
			for _, st := range []ocspstate.State{ocspstate.Reserved, ocspstate.Precert, ocspstate.SCTs} {
				require.Zero(t, v.Counts[st], "never stalled: %s", v)
			}
		}
	})
	t.Cleanup(func() { // after the parallel subtests
		// Every child dies by SIGKILL: at its fault point, or at a random
		// moment mid-work. One that exited tested nothing.
		if killed.Load() < total.Load() {
			t.Errorf("%d of %d children exited instead of dying", total.Load()-killed.Load(), total.Load())
		}
		summary := fmt.Sprintf("crash trials: %d, fault points: %d, violations: %d", total.Load(), len(points), violations.Load())
		t.Log(summary, fmt.Sprintf("(children killed: %d)", killed.Load()))
		fmt.Println(summary)
	})
}

// recoverStore is the parent's side: reopen the child's store with fresh
// logs holding the same keys, sweep, audit, sweep again.
func recoverStore(t *testing.T, h *harness, params map[string]string) *crashtest.Verdict {
	start, err := strconv.ParseInt(params["start"], 10, 64)
	require.NoError(t, err)
	clock := storetest.NewClock(time.Unix(start, 0).Add(parentLead))
	e := pipetest.New(t, pipetest.Options{CA: h.ca, LogKeys: h.logKeys, Path: params["db"], Clock: clock})
	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "parent"; c.DisableLint = true })
	s, err := recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{e.Signer},
		Resumers: []recovery.Resumer{p}, Now: clock.Now, Owner: "parent-sweeper"})
	require.NoError(t, err)
	a := &recovery.Auditor{Issuers: []*x509.Certificate{h.ca.Intermediate}, Logs: e.CTLogs()}
	v, err := crashtest.Verify(context.Background(), s, a, e.Store, clock.Now())
	require.NoError(t, err)
	return v
}

// child issues, revokes and sweeps, and dies where it is told to.
func child(t *testing.T) {
	h := loadHarness(t, crashtest.Param("dir"))
	start, err := strconv.ParseInt(crashtest.Param("start"), 10, 64)
	require.NoError(t, err)
	clock := storetest.NewClock(time.Unix(start, 0))
	var modes []ctlogtest.Mode
	ctdown := crashtest.Param("ctdown") == "1"
	if ctdown {
		modes = []ctlogtest.Mode{ctlogtest.Unavailable, ctlogtest.Unavailable}
	}
	e := pipetest.New(t, pipetest.Options{CA: h.ca, LogKeys: h.logKeys, Path: crashtest.Param("db"), Clock: clock, Modes: modes,
		CTTimeout: 300 * time.Millisecond})

	var kill issuance.FaultInjector = issuance.FaultFunc(func(context.Context, issuance.FaultPoint, *big.Int) error { return nil })
	if p := crashtest.Param("point"); p != "none" {
		nth, err := strconv.Atoi(crashtest.Param("nth"))
		require.NoError(t, err)
		kill = crashtest.KillAt(issuance.FaultPoint(p), nth)
	}
	// Every fifth issuance stops after its reservation, as a caller that
	// went away would: stale reservations for the sweep to abandon.
	var reserved atomic.Int64
	faults := issuance.FaultFunc(func(ctx context.Context, point issuance.FaultPoint, serial *big.Int) error {
		if err := kill.Fault(ctx, point, serial); err != nil {
			return err
		}
		if point == issuance.AfterReserve && reserved.Add(1)%5 == 0 {
			return errors.New("caller went away")
		}
		return nil
	})
	p := e.Pipeline(func(c *issuance.Config) { c.Owner = "child"; c.Faults = faults; c.DisableLint = true })

	// Phase 1: issue concurrently.
	var mu sync.Mutex
	var issued []*big.Int
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := 0; w < childWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < childCerts/childWorkers; i++ {
				res, err := p.Issue(e.Ctx, e.Request())
				if n := done.Add(1); ctdown && n == childCerts/2 {
					e.SetModes(ctlogtest.Accept) // the logs come back
				}
				if err == nil {
					mu.Lock()
					issued = append(issued, res.Serial)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ctdown || crashtest.Param("point") == "none" {
		// Killed at a random moment: keep issuing and revoking until the
		// parent's SIGKILL lands.
		for i := 0; ; i++ {
			res, err := p.Issue(e.Ctx, e.Request())
			if err == nil && i%3 == 0 {
				p.Revoke(e.Ctx, p.IssuerID(), res.Serial, ocspstate.ReasonSuperseded, time.Time{})
			}
		}
	}
	// Phase 2: revoke every third certificate.
	for i, s := range issued {
		if i%3 == 0 {
			_, err := p.Revoke(e.Ctx, p.IssuerID(), s, ocspstate.ReasonKeyCompromise, time.Time{})
			require.NoError(t, err)
		}
	}
	// Phase 3: four days later, sweep: abandon the stale reservations,
	// re-sign every response.
	clock.Advance(childJump)
	s, err := recovery.New(recovery.Config{Store: e.Store, Signers: []*ocspstate.ResponseSigner{e.Signer},
		Resumers: []recovery.Resumer{p}, Now: clock.Now, Owner: "child-sweeper", Faults: kill, Workers: 4})
	require.NoError(t, err)
	rep, err := s.Sweep(e.Ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Errors)
}
