package pgstore_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/ocspstate/pgstore"
	"github.com/certpipe/precert/ocspstate/pgstore/pgtest"
	"github.com/certpipe/precert/ocspstate/storetest"
	"github.com/certpipe/precert/recovery"
	"github.com/certpipe/precert/recovery/crashtest"
)

// The multi-instance crash test: four pipeline processes and two sweeper
// processes share one schema; the parent SIGKILLs one of them at random
// every so often and starts it again, for crashDuration. Then it kills
// them all, reopens the store, sweeps, audits and sweeps again.
const (
	crashPipelines = 4
	crashSweepers  = 2
	crashWorkers   = 3 // issuing goroutines per pipeline process
	// crashLease is the pipelines' lease: a killed process's records are
	// resumed by the sweepers once it has passed.
	crashLease = 4 * time.Second
	crashConns = 4 // connections per child; 6 children stay far below max_connections
)

// crashDuration is PRECERT_PG_CRASH_SECONDS, 20 seconds by default, 6
// with -short.
func crashDuration(t *testing.T) time.Duration {
	if s := os.Getenv("PRECERT_PG_CRASH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PRECERT_PG_CRASH_SECONDS")
		return time.Duration(n) * time.Second
	}
	if testing.Short() {
		return 6 * time.Second
	}
	return 20 * time.Second
}

func TestMultiInstanceCrash(t *testing.T) {
	if crashtest.IsChild() {
		crashChild(t)
		return
	}
	dsn, schema := pgtest.Schema(t)
	dir := t.TempDir()
	ca := testpki.Shared(t, testpki.ECDSAP256)
	require.NoError(t, ca.Save(dir))
	_, err := ctlogtest.NewKeys(dir, 2)
	require.NoError(t, err)
	// Create the schema before the children race to.
	s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema, MaxConns: 1})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	type slot struct {
		params map[string]string
		child  *crashtest.Child
		starts int
	}
	var slots []*slot
	for i := 0; i < crashPipelines+crashSweepers; i++ {
		role := "pipeline"
		if i >= crashPipelines {
			role = "sweeper"
		}
		slots = append(slots, &slot{params: map[string]string{
			"role": role, "index": strconv.Itoa(i), "dir": dir, "dsn": dsn, "schema": schema,
			"released": filepath.Join(dir, fmt.Sprintf("released-%d.txt", i)),
		}})
	}
	start := func(sl *slot) {
		sl.starts++
		sl.child = crashtest.Start(t, "TestMultiInstanceCrash", sl.params, 5*time.Minute)
	}
	for _, sl := range slots {
		start(sl)
	}
	// Kill one child at a random moment, restart it, repeat. A child that
	// ends by itself has failed: report its output.
	kills := 0
	end := time.After(crashDuration(t))
chaos:
	for {
		pause := time.Duration(300+mrand.IntN(900)) * time.Millisecond
		select {
		case <-end:
			break chaos
		case <-time.After(pause):
		}
		for _, sl := range slots {
			select {
			case <-sl.child.Done():
				out := sl.child.Wait()
				t.Fatalf("%s child %s ended by itself (exit %d):\n%s", sl.params["role"], sl.params["index"], out.ExitCode, out.Output)
			default:
			}
		}
		sl := slots[mrand.IntN(len(slots))]
		sl.child.Kill()
		out := sl.child.Wait()
		require.True(t, out.Killed, "child %s was not killed by SIGKILL:\n%s", sl.params["index"], out.Output)
		kills++
		start(sl)
	}
	var outputs strings.Builder
	for _, sl := range slots {
		sl.child.Kill()
		out := sl.child.Wait()
		require.True(t, out.Killed, "%s child %s ended by itself (exit %d):\n%s", sl.params["role"], sl.params["index"], out.ExitCode, out.Output)
		fmt.Fprintf(&outputs, "--- %s %s (started %d times), last run:\n%s\n", sl.params["role"], sl.params["index"], sl.starts, out.Output)
	}

	// Recovery, as a CA instance restarted after the last crash would do
	// it: every lease a child held has expired by the parent's clock.
	clock := storetest.NewClock(time.Now().Add(crashLease + time.Minute))
	env := newCrashEnv(t, dir, dsn, schema, clock.Now, 8)
	sw, err := recovery.New(recovery.Config{Store: env.store, Signers: []*ocspstate.ResponseSigner{env.signer},
		Resumers: []recovery.Resumer{env.newPipeline(t, "parent", nil)}, Now: clock.Now, Owner: "parent-sweeper"})
	require.NoError(t, err)
	a := &recovery.Auditor{Issuers: []*x509.Certificate{ca.Intermediate}, Logs: env.ctLogs}
	v, err := crashtest.Verify(context.Background(), sw, a, env.store, clock.Now())
	require.NoError(t, err)
	t.Logf("%d kills; %s", kills, v)
	if !v.OK() {
		t.Errorf("recovery left: %s\n%v\nchild output:\n%s", v, v.Violations, outputs.String())
	}
	require.Empty(t, v.Violations)

	// No serial was released twice, and what was released is what the
	// store holds.
	released := map[string]string{}
	for _, sl := range slots[:crashPipelines] {
		f, err := os.Open(sl.params["released"])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			serial, sum, ok := strings.Cut(sc.Text(), " ")
			if !ok || len(sum) != 64 {
				continue // a line cut short by SIGKILL
			}
			prev, dup := released[serial]
			require.False(t, dup, "serial %s released twice (final %s and %s)", serial, prev, sum)
			released[serial] = sum
		}
		require.NoError(t, sc.Err())
		f.Close()
	}
	for serial, sum := range released {
		n, ok := new(big.Int).SetString(serial, 16)
		require.True(t, ok)
		r, err := env.store.Get(context.Background(), env.signer.IssuerID(), n)
		require.NoError(t, err, "released serial %s has no record", serial)
		require.Equal(t, ocspstate.Issued, r.State, "released serial %s", serial)
		got := sha256.Sum256(r.FinalDER)
		require.Equal(t, sum, hex.EncodeToString(got[:]), "released serial %s: the stored final certificate is another one", serial)
	}
	t.Logf("released %d certificates; states after recovery %v", len(released), v.Counts)
	// The test proves nothing if nothing happened.
	require.NotZero(t, kills)
	require.NotEmpty(t, released, "no certificate was issued during the run")
	for _, st := range []ocspstate.State{ocspstate.Reserved, ocspstate.Precert, ocspstate.SCTs} {
		require.Zero(t, v.Counts[st], "nothing left in flight after recovery")
	}
}

// crashEnv is one process's view: the store, CT logs with the shared
// keys, and what its pipelines need.
type crashEnv struct {
	store  *pgstore.Store
	signer *ocspstate.ResponseSigner
	ctLogs []*ctsubmit.Log
	ct     *ctsubmit.Submitter
	ca     *testpki.CA
	now    func() time.Time
}

func newCrashEnv(t *testing.T, dir, dsn, schema string, now func() time.Time, conns int32) *crashEnv {
	ca, err := testpki.Load(dir)
	require.NoError(t, err)
	e := &crashEnv{ca: ca, now: now}
	e.store, err = pgstore.Open(context.Background(), dsn, pgstore.Options{Issuers: []*x509.Certificate{ca.Intermediate},
		Now: now, Schema: schema, MaxConns: conns, ClaimTTL: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { e.store.Close() })
	e.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey, Now: now})
	require.NoError(t, err)
	keys, err := ctlogtest.LoadKeys(dir, 2)
	require.NoError(t, err)
	var logs []*ctlogtest.Log
	for i, k := range keys {
		l := ctlogtest.New(t, ctlogtest.Options{Name: "log-" + string(rune('a'+i)), Key: k, Now: now})
		logs = append(logs, l)
		e.ctLogs = append(e.ctLogs, l.Log())
	}
	e.ct, err = ctsubmit.New(ctsubmit.Config{Logs: e.ctLogs, Now: now, Stagger: 50 * time.Millisecond,
		PerLogTimeout: time.Second, OverallTimeout: time.Second,
		HTTPClient: &http.Client{Transport: ctlogtest.Transport(logs...)}})
	require.NoError(t, err)
	return e
}

func (e *crashEnv) newPipeline(t *testing.T, owner string, faults issuance.FaultInjector) *issuance.Pipeline {
	p, err := issuance.New(issuance.Config{Store: e.store, Issuer: e.ca.Intermediate, IssuerKey: e.ca.IntermediateKey,
		Chain: []*x509.Certificate{e.ca.Intermediate, e.ca.Root}, Responses: e.signer, CT: e.ct, Now: e.now,
		DisableLint: true, Owner: fmt.Sprintf("%s/%d", owner, os.Getpid()), LeaseDuration: crashLease, Faults: faults})
	require.NoError(t, err)
	return p
}

// crashChild runs until it is killed: a pipeline issuing (and sometimes
// abandoning, sometimes revoking) on several goroutines, or a sweeper
// sweeping every few hundred milliseconds.
func crashChild(t *testing.T) {
	role, index := crashtest.Param("role"), crashtest.Param("index")
	e := newCrashEnv(t, crashtest.Param("dir"), crashtest.Param("dsn"), crashtest.Param("schema"), time.Now, crashConns)
	ctx := context.Background()
	if role == "sweeper" {
		sw, err := recovery.New(recovery.Config{Store: e.store, Signers: []*ocspstate.ResponseSigner{e.signer},
			Resumers: []recovery.Resumer{e.newPipeline(t, role+"-"+index+"-resumer", nil)},
			Owner:    fmt.Sprintf("sweeper-%s/%d", index, os.Getpid()), BatchSize: 100, Workers: 4})
		require.NoError(t, err)
		for {
			rep, err := sw.Sweep(ctx)
			require.NoError(t, err)
			if rep.Due > 0 {
				fmt.Printf("sweep: %s\n", rep)
			}
			for _, re := range rep.Errors {
				fmt.Printf("sweep error: %v\n", re)
			}
			time.Sleep(time.Duration(200+mrand.IntN(200)) * time.Millisecond)
		}
	}
	f, err := os.OpenFile(crashtest.Param("released"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	var mu sync.Mutex
	// Every fifth issuance stops after its reservation, as a caller that
	// went away would: stale reservations for the sweepers to abandon.
	var reserved atomic.Int64
	faults := issuance.FaultFunc(func(_ context.Context, point issuance.FaultPoint, _ *big.Int) error {
		if point == issuance.AfterReserve && reserved.Add(1)%5 == 0 {
			return errors.New("caller went away")
		}
		return nil
	})
	p := e.newPipeline(t, "pipeline-"+index, faults)
	for w := 0; w < crashWorkers; w++ {
		go func() {
			for i := 0; ; i++ {
				key, err := testpki.NewKey(e.ca.KeyType)
				if err != nil {
					panic(err)
				}
				res, err := p.Issue(ctx, pipetest.RequestFor(e.ca, key.Public(), time.Now()))
				if err != nil {
					if !strings.Contains(err.Error(), "caller went away") {
						fmt.Printf("issue: %v\n", err)
					}
					continue
				}
				// Released: the caller has the certificate. Record which.
				sum := sha256.Sum256(res.Final.Raw)
				mu.Lock()
				fmt.Fprintf(f, "%s %s\n", ocspstate.SerialHex(res.Serial), hex.EncodeToString(sum[:]))
				mu.Unlock()
				if i%4 == 0 {
					p.Revoke(ctx, p.IssuerID(), res.Serial, ocspstate.ReasonSuperseded, time.Time{})
				}
			}
		}()
	}
	select {}
}
