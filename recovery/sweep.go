package recovery

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
)

// Resumer finishes in-flight records of one issuer: *issuance.Pipeline.
type Resumer interface {
	IssuerID() ocspstate.IssuerID
	Resume(ctx context.Context, issuer ocspstate.IssuerID, serial *big.Int) (*issuance.Result, error)
}

// Fault points inside the sweep, for the crash harness. They use the
// pipeline's injector type, so one injector covers both.
const (
	AfterSweepSign    issuance.FaultPoint = "sweep-after-sign"    // refreshed response signed in memory only
	AfterSweepCommit  issuance.FaultPoint = "sweep-after-commit"  // refreshed response durable
	AfterSweepAbandon issuance.FaultPoint = "sweep-after-abandon" // expired reservation abandoned
)

// SweepFaultPoints lists the sweep's fault points.
var SweepFaultPoints = []issuance.FaultPoint{AfterSweepSign, AfterSweepCommit, AfterSweepAbandon}

// Config configures a [Sweeper]. Store and Signers are required.
type Config struct {
	// Store is swept through its due-time index.
	Store ocspstate.Store
	// Signers re-sign responses, one per issuer. Required.
	Signers []*ocspstate.ResponseSigner
	// Resumers finish in-flight records whose lease expired, one per
	// issuer (the issuance Pipelines). Without one, expired reservations
	// are still abandoned, but precertificates in flight are set aside
	// for RetryAfter and reported, never guessed at.
	Resumers []Resumer
	// Due must be the due policy the store was opened with (it decides
	// when a response needs re-signing and when service ends).
	Due ocspstate.DuePolicy
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Owner names this sweeper in leases. Empty means
	// issuance.DefaultOwner().
	Owner string
	// BatchSize is how many due records are handed to the workers at a
	// time; the commits of one batch land while the next is signed. From
	// a store that is an [ocspstate.DueReader], the index is read
	// readAhead (16,384) entries at a time, or BatchSize if larger; from
	// any other, BatchSize records at a time, plus those the sweep took
	// that Store.Due still returns (in flight, or failed). Zero means 1000.
	BatchSize int
	// Workers is how many records are handled (resumed, or their response
	// signed) at once: size it to the signer (CPU cores, or what an HSM
	// takes). Commits do not hold a worker: each worker's signed responses
	// of a batch are committed together, in the background, in one write
	// that the store's group commit shares with the other workers'. Zero
	// means 8 per CPU.
	Workers int
	// RetryAfter is how long a record that could not be handled is set
	// aside (by taking its lease) before a sweep tries it again. Zero
	// means 5 minutes.
	RetryAfter time.Duration
	// Skew is the tolerance when validating stored responses. Zero means
	// 5 minutes.
	Skew time.Duration
	// Faults, if set, is called at the sweep's fault points.
	Faults issuance.FaultInjector
	// Logger gets one line per sweep and per failed record. Nil discards.
	Logger *slog.Logger
	// Registerer, if set, registers the sweeper's metrics.
	Registerer prometheus.Registerer
}

// Sweeper finds everything due in a store and does it: resumes or
// abandons in-flight records whose lease expired, re-signs responses that
// are missing, invalid or due under BR §4.9.9, and retires records whose
// OCSP service has ended. It is safe to run several Sweepers, in several
// processes, at once and while pipelines work (I7): in-flight records are
// taken only through their leases, and every write is a compare-and-swap.
//
// Start a CA in this order: open the store, Sweep once (so nothing a crash
// left behind waits for the first background run), start the responder and
// accept issuance, then Run in the background.
type Sweeper struct {
	cfg       Config
	readAhead int // entries read from a DueReader at once: readAhead
	signers   map[ocspstate.IssuerID]*ocspstate.ResponseSigner
	resumers  map[ocspstate.IssuerID]Resumer
	validator *ocspstate.Validator
	log       *slog.Logger
	m         *sweepMetrics

	// buf is the memory of the last sweep's first read of the index,
	// reused by the next (see DueReader.DueAfter); nil while a sweep has
	// it.
	bufMu sync.Mutex
	buf   []byte
}

// New checks cfg and returns a Sweeper.
func New(cfg Config) (*Sweeper, error) {
	if cfg.Store == nil {
		return nil, errors.New("recovery: Config.Store is required")
	}
	if len(cfg.Signers) == 0 {
		return nil, errors.New("recovery: Config.Signers is required: one response signer per issuer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = issuance.DefaultOwner()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8 * runtime.GOMAXPROCS(0)
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Minute
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sweeper{cfg: cfg, signers: map[ocspstate.IssuerID]*ocspstate.ResponseSigner{}, resumers: map[ocspstate.IssuerID]Resumer{}, log: cfg.Logger, readAhead: readAhead}
	for _, sg := range cfg.Signers {
		if _, dup := s.signers[sg.IssuerID()]; dup {
			return nil, fmt.Errorf("recovery: two signers for issuer %s", sg.IssuerID())
		}
		s.signers[sg.IssuerID()] = sg
	}
	for _, r := range cfg.Resumers {
		if _, ok := s.signers[r.IssuerID()]; !ok {
			return nil, fmt.Errorf("recovery: resumer for issuer %s has no signer", r.IssuerID())
		}
		s.resumers[r.IssuerID()] = r
	}
	certs := make([]*x509.Certificate, len(cfg.Signers))
	for i, sg := range cfg.Signers {
		certs[i] = sg.Issuer()
	}
	v, err := ocspstate.NewValidator(certs...)
	if err != nil {
		return nil, err
	}
	s.validator = v
	if s.m, err = newSweepMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Action is what a sweep did with one record.
type Action string

// The actions a Report counts.
const (
	ActionAbandoned Action = "abandoned" // expired reservation → Abandoned
	ActionIssued    Action = "issued"    // resumed in flight → Issued
	ActionCTFailed  Action = "ct-failed" // resumed in flight → CTFailed
	ActionRefreshed Action = "refreshed" // response re-signed
	ActionRetired   Action = "retired"   // service ended; left the due index
	ActionSkipped   Action = "skipped"   // nothing to do by the time it was handled
	ActionSetAside  Action = "set-aside" // could not be handled; retried after RetryAfter
	ActionBusy      Action = "leased"    // another worker holds its lease
	ActionFailed    Action = "failed"    // an error; see Report.Errors
)

// RecordError is a failure to handle one record. One never stops a sweep.
type RecordError struct {
	Issuer ocspstate.IssuerID
	Serial *big.Int
	Err    error
}

func (e RecordError) Error() string {
	return fmt.Sprintf("serial %s (issuer %s): %v", ocspstate.SerialHex(e.Serial), e.Issuer, e.Err)
}

// Report is what one sweep found and did.
type Report struct {
	// Due is how many due records the sweep took from the index.
	Due int
	// Actions counts records by what was done with them. A resumed record
	// whose response was also re-signed counts under both.
	Actions map[Action]int
	// Errors lists every record that failed.
	Errors []RecordError
	// OldestResponse is the age (now − thisUpdate) of the oldest stored
	// response among the due records.
	OldestResponse time.Duration
	// Find is the time spent reading the due index; Total the whole sweep.
	Find, Total time.Duration
}

// Count returns how many records got action a.
func (r *Report) Count(a Action) int { return r.Actions[a] }

// String summarises the report on one line.
func (r *Report) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "due %d", r.Due)
	for _, a := range []Action{ActionAbandoned, ActionIssued, ActionCTFailed, ActionRefreshed, ActionRetired, ActionSkipped, ActionBusy, ActionSetAside, ActionFailed} {
		if n := r.Actions[a]; n > 0 {
			fmt.Fprintf(&b, ", %s %d", a, n)
		}
	}
	fmt.Fprintf(&b, " in %s (index %s)", r.Total.Round(time.Millisecond), r.Find.Round(time.Microsecond))
	return b.String()
}

// Sweep takes everything due now from the store's index and does it. Its
// cost grows with the number of due records, not with the size of the
// store. Records that fail are reported in Report.Errors and the sweep goes
// on; the error return is for the store itself failing, or ctx ending.
// Running it twice in a row finds nothing to do the second time, unless
// records failed or became due in between.
func (s *Sweeper) Sweep(ctx context.Context) (*Report, error) {
	start := time.Now()
	now := s.cfg.Now()
	rep := &Report{Actions: map[Action]int{}}
	var mu sync.Mutex
	seen := map[ocspstate.Key]bool{}
	defer func() {
		rep.Total = time.Since(start)
		s.m.observe(rep)
	}()
	done := func(r *ocspstate.Record, acts []Action, err error) {
		mu.Lock()
		for _, a := range acts {
			rep.Actions[a]++
		}
		if err != nil {
			rep.Actions[ActionFailed]++
			rep.Errors = append(rep.Errors, RecordError{Issuer: r.Issuer, Serial: r.Serial, Err: err})
		}
		mu.Unlock()
		if err != nil {
			s.log.Warn("sweep: record failed", "serial", ocspstate.SerialHex(r.Serial), "state", r.State.String(), "err", err)
		}
	}
	// The commits of one batch complete while the next is read and signed.
	// Until they land, that batch's records are still due. A store that
	// is a DueReader reads on from the last entry read, s.readAhead entries
	// at a time, and its entries are decoded by the workers. With any
	// other, a read skips what was seen, and one that finds only that
	// waits for the commits to land and reads again.
	var pending *sync.WaitGroup
	inFlight := 0 // records in the batch whose commits are pending
	// The memory of the first read, for the next sweep's: kept only once
	// the commits have landed (records decoded from entries hold copies,
	// but nothing may still read the entries).
	var firstBuf []byte
	firstSize := -1
	defer func() {
		if pending != nil {
			pending.Wait()
		}
		if firstSize >= 0 {
			s.keepBuf(firstBuf, firstSize)
		}
	}()
	dr, _ := s.cfg.Store.(ocspstate.DueReader)
	var last *ocspstate.DueEntry
	var ahead []ocspstate.DueEntry // read and not yet taken
	exhausted := false             // the last read found no more
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		limit := s.cfg.BatchSize
		var todo []dueItem
		read := 0         // entries or records read
		leftover := false // unseen records read but not taken this round
		t0 := time.Now()
		if dr != nil {
			if len(ahead) == 0 && !exhausted {
				want := max(limit, s.readAhead)
				var buf []byte
				first := last == nil
				if first {
					// The first read reuses the memory of the last
					// sweep's first read (all done with): resident
					// memory, where fresh memory costs a page fault per
					// 4 KB and a third of the time to read the index.
					buf = s.takeBuf()
				}
				entries, err := dr.DueAfter(ctx, now, last, want, buf)
				rep.Find += time.Since(t0)
				if first {
					firstBuf, firstSize = buf, 0
					for i := range entries {
						firstSize += entries[i].Size()
					}
				}
				if err != nil {
					return rep, fmt.Errorf("recovery: reading due records: %w", err)
				}
				if len(entries) > 0 {
					last = &entries[len(entries)-1]
				}
				ahead, exhausted = entries, len(entries) < want
			}
			read = min(limit, len(ahead))
			todo = make([]dueItem, read)
			for i := range todo {
				todo[i].e = &ahead[i]
			}
			ahead = ahead[read:]
			leftover = len(ahead) > 0 || !exhausted
		} else {
			// Read past what Store.Due returns again: the previous batch,
			// still due until its commits land (so that the next is signed
			// meanwhile), and whatever this sweep took that stayed due.
			mu.Lock()
			// Taken this sweep and perhaps still due: failed, or leased
			// or changed by someone else. Store.Due returns them again,
			// ahead of the records behind them.
			limit += rep.Actions[ActionBusy] + rep.Actions[ActionSkipped] + rep.Actions[ActionFailed]
			mu.Unlock()
			if pending != nil {
				limit += inFlight
			}
			batch, err := s.cfg.Store.Due(ctx, now, limit)
			rep.Find += time.Since(t0)
			if err != nil {
				return rep, fmt.Errorf("recovery: reading due records: %w", err)
			}
			read = len(batch)
			for _, r := range batch {
				k := r.Key()
				if seen[k] {
					continue
				}
				if len(todo) == s.cfg.BatchSize {
					leftover = true
					break
				}
				seen[k] = true
				todo = append(todo, dueItem{r: r})
			}
		}
		if len(todo) == 0 {
			if pending != nil && read == limit {
				// Everything read is in flight; let it land, then look
				// again.
				pending.Wait()
				pending = nil
				continue
			}
			break
		}
		rep.Due += len(todo)
		inFlight = len(todo)
		work := make(chan dueItem)
		var wg sync.WaitGroup
		commits := new(sync.WaitGroup)
		for w := 0; w < s.cfg.Workers && w < len(todo); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Re-signed responses are committed in groups, each one
				// write to the store, without holding up the worker.
				var group []signed
				flush := func() {
					if len(group) == 0 {
						return
					}
					g := group
					group = nil
					commits.Add(1)
					go func() {
						defer commits.Done()
						s.commit(ctx, g, done)
					}()
				}
				var oldest time.Duration // merged into the report at the end
				defer func() {
					mu.Lock()
					rep.OldestResponse = max(rep.OldestResponse, oldest)
					mu.Unlock()
				}()
				for it := range work {
					r, err := it.record()
					if err != nil {
						// A damaged record: its own error, not the sweep's.
						done(r, nil, err)
						continue
					}
					if r.OCSP.Enabled && !r.OCSP.ThisUpdate.IsZero() {
						oldest = max(oldest, now.Sub(r.OCSP.ThisUpdate))
					}
					acts, sg, err := s.handle(ctx, r, now)
					if sg == nil || err != nil {
						done(r, acts, err)
						continue
					}
					sg.acts = acts
					group = append(group, *sg)
					if len(group) == refreshGroup {
						flush()
					}
				}
				flush()
			}()
		}
	feed:
		for _, r := range todo {
			select {
			case work <- r:
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		if pending != nil {
			pending.Wait()
		}
		pending = commits
		if dr != nil && read < limit && !leftover {
			break // the index is exhausted and everything read taken
		}
		// A short read from Store.Due proves nothing: pgstore skips rows
		// that other transactions hold locked (a concurrent writer, or one
		// whose process died and whose connection the server has not yet
		// closed). Read again after the batch, until a read finds nothing
		// new.
	}
	if pending != nil {
		pending.Wait()
		pending = nil
	}
	if rep.Due > 0 || len(rep.Errors) > 0 {
		s.log.Info("sweep", "report", rep.String(), "errors", len(rep.Errors))
	}
	return rep, nil
}

// Run sweeps every interval, with ±10% jitter so that several sweepers do
// not march in step, until ctx ends; it then returns ctx's error. A failed
// sweep is logged and retried at the next interval.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return errors.New("recovery: Run needs a positive interval")
	}
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweep failed; retrying next interval", "err", err)
		}
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(interval))
		t := time.NewTimer(interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

var errRaced = errors.New("recovery: record changed under the sweep")

// takeBuf returns the memory kept for the first read of a sweep, or nil
// (another sweep has it, or there is none yet).
func (s *Sweeper) takeBuf() []byte {
	s.bufMu.Lock()
	defer s.bufMu.Unlock()
	buf := s.buf
	s.buf = nil
	return buf
}

// keepBuf keeps, for the next sweep, the memory of this sweep's first read
// (buf, which held size bytes of entries), or new memory of that size if
// buf was too small. It runs when the sweep returns, when nothing uses the
// entries any more: records decoded from them hold copies.
func (s *Sweeper) keepBuf(buf []byte, size int) {
	if cap(buf) < size {
		buf = make([]byte, size+size/8)
	}
	s.bufMu.Lock()
	if cap(buf) > cap(s.buf) {
		s.buf = buf
	}
	s.bufMu.Unlock()
}

// readAhead is how many entries of a DueReader's index the sweeper reads
// at once (or BatchSize, if larger): about 9 MB of undecoded entries. One
// large read, while the cores are not yet busy signing, costs less than a
// read per batch competing with the signing and the commits: a sweep of
// 10,000 records reads its index once.
const readAhead = 16384

// dueItem is a due record to handle: decoded already (from Store.Due), or
// a DueReader's entry, decoded by the worker that handles it.
type dueItem struct {
	r *ocspstate.Record
	e *ocspstate.DueEntry
}

// record returns the item's record. For an entry that fails to decode, it
// returns a record naming only its issuer and serial, and the error.
func (it dueItem) record() (*ocspstate.Record, error) {
	if it.r != nil {
		return it.r, nil
	}
	r, err := it.e.Record()
	if err != nil {
		return &ocspstate.Record{Issuer: it.e.Issuer(), Serial: it.e.Serial()}, err
	}
	return r, nil
}

// refreshGroup caps how many re-signed responses a worker commits at once,
// in one write to the store, so that a commit carries many and its fixed
// cost (two fdatasyncs, the meta page, the upper B+tree pages) is shared.
// A worker commits what it holds when its batch ends, while the next batch
// is being read and signed; with the default batch and worker count that
// is its whole share of the batch (about 60), and the store's group commit
// joins the workers' writes into commits of about 300. Committed one at a
// time as they were signed, they made commits of about 30 and a sweep
// half as fast; with this cap at 64, commits of about 120 and a sweep 5%
// slower (BenchmarkSweep).
const refreshGroup = 256

// signed is a re-signed response waiting to be committed, with what was
// already done to its record.
type signed struct {
	r    *ocspstate.Record
	resp *ocspstate.Response
	acts []Action
}

// commit stores a group of re-signed responses, each a compare-and-swap
// on the response it replaces, and reports each record's outcome to done.
func (s *Sweeper) commit(ctx context.Context, group []signed, done func(*ocspstate.Record, []Action, error)) {
	refs := make([]ocspstate.Refresh, len(group))
	for i, g := range group {
		refs[i] = ocspstate.Refresh{Issuer: g.r.Issuer, Serial: g.r.Serial, Prev: g.r.OCSP.ResponseDER, Response: g.resp}
	}
	errs := ocspstate.RefreshResponses(ctx, s.cfg.Store, refs)
	for i, g := range group {
		err := errs[i]
		switch {
		case errors.Is(err, ocspstate.ErrResponseChanged):
			// Someone refreshed or revoked it meanwhile: theirs stands.
			done(g.r, append(g.acts, ActionSkipped), nil)
		case err != nil:
			done(g.r, g.acts, err)
		default:
			// Crash here: the refreshed response is durable; the record
			// is no longer due.
			done(g.r, append(g.acts, ActionRefreshed), s.fault(ctx, AfterSweepCommit, g.r.Serial))
		}
	}
}

// handle does what r needs at now and says what it did. A re-signed
// response still has to be committed: handle returns it, for the caller
// to commit with others without holding a worker.
func (s *Sweeper) handle(ctx context.Context, r *ocspstate.Record, now time.Time) ([]Action, *signed, error) {
	var acts []Action
	if r.State.InFlight() && (r.Lease.Owner == "" || !now.Before(r.Lease.Expires)) {
		a, err := s.resume(ctx, r, now)
		if a != "" {
			acts = append(acts, a)
		}
		if err != nil {
			return acts, nil, err
		}
		// Look again: resuming may have changed the record.
		if r, err = s.cfg.Store.Get(ctx, r.Issuer, r.Serial); err != nil {
			return acts, nil, err
		}
	}
	if r.OCSP.Enabled {
		a, sg, err := s.refresh(ctx, r, now)
		if a != "" {
			acts = append(acts, a)
		}
		if err != nil || sg != nil {
			return acts, sg, err
		}
	}
	if len(acts) == 0 {
		acts = append(acts, ActionSkipped)
	}
	return acts, nil, nil
}

// resume moves an in-flight record whose lease expired forward.
func (s *Sweeper) resume(ctx context.Context, r *ocspstate.Record, now time.Time) (Action, error) {
	if res, ok := s.resumers[r.Issuer]; ok {
		out, err := res.Resume(ctx, r.Issuer, r.Serial)
		switch {
		case errors.Is(err, issuance.ErrLeaseLost):
			return ActionBusy, nil
		case errors.Is(err, issuance.ErrCTFailed):
			return ActionCTFailed, nil
		case err != nil:
			return "", err
		}
		if !out.Moved {
			return ActionSkipped, nil // another worker finished it first
		}
		switch out.State {
		case ocspstate.Abandoned:
			return ActionAbandoned, s.fault(ctx, AfterSweepAbandon, r.Serial)
		case ocspstate.Issued:
			return ActionIssued, nil
		case ocspstate.CTFailed:
			return ActionCTFailed, nil
		}
		return "", fmt.Errorf("resume left the record in %s", out.State)
	}
	if r.State == ocspstate.Reserved {
		// Nothing was published; no pipeline is needed to give up.
		_, err := s.cfg.Store.Update(ctx, r.Issuer, r.Serial, func(c *ocspstate.Record) error {
			if c.State != ocspstate.Reserved {
				return errRaced
			}
			if err := c.CheckLease(s.cfg.Owner, s.cfg.Now()); err != nil {
				return err
			}
			c.State = ocspstate.Abandoned
			c.Lease = ocspstate.Lease{}
			return nil
		})
		switch {
		case errors.Is(err, errRaced), errors.Is(err, ocspstate.ErrLeaseHeld):
			return ActionBusy, nil
		case err != nil:
			return "", err
		}
		return ActionAbandoned, s.fault(ctx, AfterSweepAbandon, r.Serial)
	}
	// A precertificate in flight and no pipeline for its issuer here: set
	// it aside so it does not hold up the index, and say so.
	_, err := s.cfg.Store.Update(ctx, r.Issuer, r.Serial, func(c *ocspstate.Record) error {
		if err := c.CheckLease(s.cfg.Owner, s.cfg.Now()); err != nil {
			return err
		}
		if !c.State.InFlight() {
			return errRaced
		}
		c.Lease = ocspstate.Lease{Owner: s.cfg.Owner, Expires: s.cfg.Now().Add(s.cfg.RetryAfter)}
		return nil
	})
	if errors.Is(err, errRaced) || errors.Is(err, ocspstate.ErrLeaseHeld) {
		return ActionBusy, nil
	}
	if err != nil {
		return "", err
	}
	return ActionSetAside, fmt.Errorf("%s record with an expired lease and no pipeline for issuer %s in this sweeper: start one with the issuer key and CT logs to finish it", r.State, r.Issuer)
}

// refresh re-signs r's response if it is missing, invalid or due, and
// retires r if its OCSP service has ended. A new response is returned for
// the caller to commit.
func (s *Sweeper) refresh(ctx context.Context, r *ocspstate.Record, now time.Time) (Action, *signed, error) {
	if !now.Before(s.cfg.Due.ServiceEnd(r)) {
		// Past NotAfter plus the margin: no more responses. Touching the
		// record recomputes its due time, which takes it off the index.
		if _, err := s.cfg.Store.Update(ctx, r.Issuer, r.Serial, func(*ocspstate.Record) error { return nil }); err != nil {
			return "", nil, err
		}
		return ActionRetired, nil, nil
	}
	need := len(r.OCSP.ResponseDER) == 0 || !now.Before(s.cfg.Due.RefreshDue(r.OCSP.ThisUpdate, r.OCSP.NextUpdate))
	if !need {
		if _, err := s.validator.CheckRecord(r, now, s.cfg.Skew); err != nil {
			s.log.Warn("sweep: stored response fails validation; re-signing", "serial", ocspstate.SerialHex(r.Serial), "err", err)
			need = true
		}
	}
	if !need {
		return "", nil, nil
	}
	signer, ok := s.signers[r.Issuer]
	if !ok {
		return "", nil, fmt.Errorf("no response signer for issuer %s", r.Issuer)
	}
	resp, err := signer.SignRecord(r)
	if err != nil {
		return "", nil, err
	}
	// Crash here: the new response never left memory; the old one (or
	// none) is still stored and the record still due.
	if err := s.fault(ctx, AfterSweepSign, r.Serial); err != nil {
		return "", nil, err
	}
	return "", &signed{r: r, resp: resp}, nil
}

func (s *Sweeper) fault(ctx context.Context, p issuance.FaultPoint, serial *big.Int) error {
	if s.cfg.Faults == nil {
		return nil
	}
	return s.cfg.Faults.Fault(ctx, p, serial)
}
