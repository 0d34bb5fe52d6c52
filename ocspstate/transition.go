package ocspstate

import (
	"bytes"
	"fmt"
	"time"
)

// allowed[from][to]: the state graph. Staying put is always allowed (a
// lease renewal, a response refresh, a revocation).
var allowed = [...][Abandoned + 1]bool{
	Reserved: {Reserved: true, Precert: true, Abandoned: true},
	Precert:  {Precert: true, SCTs: true, CTFailed: true},
	SCTs:     {SCTs: true, Issued: true},
	Issued:   {Issued: true},
	CTFailed: {CTFailed: true},
	Abandoned: {
		Abandoned: true,
	},
}

// CanTransition reports whether the state graph allows from → to.
func CanTransition(from, to State) bool {
	return from.Valid() && to.Valid() && allowed[from][to]
}

// CheckReserve reports whether r may be reserved: state Reserved, a valid
// serial, an intent, a validity period, a lease, and nothing signed yet.
func CheckReserve(r *Record) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: reserving serial %s: %s", ErrInvalidRecord, SerialHex(r.Serial), fmt.Sprintf(format, args...))
	}
	if err := CheckSerial(r.Serial); err != nil {
		return err
	}
	switch {
	case r.State != Reserved:
		return bad("state is %s, want Reserved", r.State)
	case len(r.IntentDER) == 0:
		return bad("no intent (unsigned precertificate TBS)")
	case r.NotBefore.IsZero() || !r.NotAfter.After(r.NotBefore):
		return bad("validity %s to %s is empty", fmtTime(r.NotBefore), fmtTime(r.NotAfter))
	case r.Lease.Owner == "" || r.Lease.Expires.IsZero():
		return bad("no lease: a reservation must name its owner and lease expiry")
	case len(r.PrecertDER) != 0 || len(r.FinalDER) != 0 || len(r.SCTs) != 0:
		return bad("nothing may be signed before the serial is reserved")
	case r.OCSP.Enabled || r.OCSP.Status != 0 || len(r.OCSP.ResponseDER) != 0 || !r.OCSP.RevokedAt.IsZero() || r.OCSP.Reason != 0:
		return bad("OCSP must stay off until the precertificate is committed")
	}
	return nil
}

// CheckTransition applies the rules every store enforces on every write,
// old being the committed record and new what a closure made of it:
//
//   - the state follows the graph (see the package documentation): no
//     going back, Abandoned only from Reserved;
//   - issuer, serial, intent, validity and creation time never change, and
//     the precertificate, SCTs and final certificate never change once
//     written;
//   - each state carries what it promises: a precertificate from Precert
//     on, SCTs in SCTs and Issued, a final certificate in Issued only;
//   - OCSP is enabled exactly in the published states (Precert, SCTs,
//     Issued, CTFailed), with a status and a response, and never disabled;
//   - revocation only from Precert on, with a time and an RFC 5280
//     reason, and never undone or altered;
//   - a lease held by another owner is not taken before it expires
//     (releasing it, by clearing the owner, is allowed).
//
// It is pure: the response's signature and freshness are checked by
// [CheckUpdate].
func CheckTransition(old, new *Record, now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: serial %s %s→%s: %s", ErrIllegalTransition, SerialHex(old.Serial), old.State, new.State, fmt.Sprintf(format, args...))
	}
	if !new.State.Valid() {
		return bad("%v is not a state", new.State)
	}
	if !CanTransition(old.State, new.State) {
		return bad("the state graph does not allow it")
	}
	switch {
	case new.Issuer != old.Issuer:
		return bad("issuer changed")
	case new.Serial == nil || new.Serial.Cmp(old.Serial) != 0:
		return bad("serial changed")
	case !bytes.Equal(new.IntentDER, old.IntentDER):
		return bad("intent changed")
	case !new.NotBefore.Equal(old.NotBefore) || !new.NotAfter.Equal(old.NotAfter):
		return bad("validity changed")
	case !new.Created.Equal(old.Created) || new.Version != old.Version:
		return bad("created time or version changed: only the store sets them")
	case len(old.PrecertDER) != 0 && !bytes.Equal(new.PrecertDER, old.PrecertDER):
		return bad("precertificate changed after it was written")
	case len(old.FinalDER) != 0 && !bytes.Equal(new.FinalDER, old.FinalDER):
		return bad("final certificate changed after it was written")
	case len(old.SCTs) != 0 && !sameSCTs(old.SCTs, new.SCTs):
		return bad("SCTs changed after they were written")
	}

	published := new.State.Published()
	switch {
	case published && len(new.PrecertDER) == 0:
		return bad("no precertificate")
	case !published && len(new.PrecertDER) != 0:
		return bad("a precertificate exists only from Precert on")
	case (new.State == SCTs || new.State == Issued) && len(new.SCTs) == 0:
		return bad("no SCTs")
	case new.State != SCTs && new.State != Issued && len(new.SCTs) != 0:
		return bad("SCTs belong to states SCTs and Issued only")
	case new.State == Issued && len(new.FinalDER) == 0:
		return bad("no final certificate")
	case new.State != Issued && len(new.FinalDER) != 0:
		return bad("a final certificate belongs to state Issued only")
	}

	o, n := old.OCSP, new.OCSP
	switch {
	case o.Enabled && !n.Enabled:
		return bad("OCSP cannot be disabled once enabled")
	case published && !n.Enabled:
		return bad("OCSP must be enabled, with a signed response, when the precertificate is committed (I1)")
	case !published && (n.Enabled || n.Status != 0 || len(n.ResponseDER) != 0 || !n.RevokedAt.IsZero()):
		return bad("no OCSP status or response may exist before Precert or after abandonment")
	case published && n.Status != Good && n.Status != Revoked:
		return bad("OCSP status %v is neither good nor revoked", n.Status)
	case published && len(n.ResponseDER) == 0:
		return bad("OCSP is enabled but no response is stored")
	case o.Status == Revoked && (n.Status != Revoked || !n.RevokedAt.Equal(o.RevokedAt) || n.Reason != o.Reason):
		return bad("revocation cannot be undone or altered")
	case n.Status == Good && (!n.RevokedAt.IsZero() || n.Reason != 0):
		return bad("a good status carries no revocation time or reason")
	case n.Status == Revoked && n.RevokedAt.IsZero():
		return bad("revocation needs a time")
	}
	if n.Status == Revoked {
		if err := CheckReason(n.Reason); err != nil {
			return bad("%v", err)
		}
	}

	if old.State.InFlight() && old.Lease.Owner != "" && new.Lease.Owner != "" && new.Lease.Owner != old.Lease.Owner && now.Before(old.Lease.Expires) {
		return fmt.Errorf("%w: serial %s: %q cannot take the lease held by %q until %s", ErrLeaseHeld,
			SerialHex(old.Serial), new.Lease.Owner, old.Lease.Owner, fmtTime(old.Lease.Expires))
	}
	return nil
}

func sameSCTs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// CheckUpdate is what a store calls before committing new over old at now:
// [CheckTransition], then, when the response changed or the record is
// entering a published state, full validation of the response with v (the
// signature, the serial, the status, freshness with skew), so that no store
// ever commits an OCSP-enabled record whose response does not validate.
func CheckUpdate(old, new *Record, now time.Time, v *Validator, skew time.Duration) error {
	if err := CheckTransition(old, new, now); err != nil {
		return err
	}
	if !new.OCSP.Enabled {
		return nil
	}
	if old.OCSP.Enabled && bytes.Equal(old.OCSP.ResponseDER, new.OCSP.ResponseDER) && old.OCSP.Status == new.OCSP.Status {
		// Unchanged response, unchanged status: it was validated when it
		// was committed, and may have aged since; refreshing it is the
		// sweeper's job, not a reason to refuse this write.
		if !old.OCSP.ThisUpdate.Equal(new.OCSP.ThisUpdate) || !old.OCSP.NextUpdate.Equal(new.OCSP.NextUpdate) {
			return fmt.Errorf("%w: serial %s: thisUpdate/nextUpdate changed without a new response", ErrIllegalTransition, SerialHex(new.Serial))
		}
		return nil
	}
	if v == nil {
		return fmt.Errorf("%w: serial %s: the store has no issuer certificates to validate OCSP responses with", ErrInvalidRecord, SerialHex(new.Serial))
	}
	if _, err := v.CheckRecord(new, now, skew); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return nil
}

// PrepareUpdate is the part of [Store.Update] every store shares: it runs
// fn on a copy of old and applies the store's rules to the result at now.
// The fields the store owns are its own, whatever fn did to them: Updated
// and Due are reset, Due recomputed with due even when nothing else
// changed (so that a record whose service ended leaves the index when
// touched). It returns old itself when fn changed nothing. Otherwise the
// record must pass [CheckUpdate], and comes back with Version one more
// than old's, Updated now and its Due. normalize, which may be nil, gives
// the record the form the store keeps (time precision, empty fields), and
// now should already have it.
func PrepareUpdate(old *Record, fn func(*Record) error, now time.Time, due DuePolicy, v *Validator, skew time.Duration, normalize func(*Record)) (*Record, error) {
	next := old.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	next.Updated = old.Updated
	next.Due = due.Due(next, now)
	if normalize != nil {
		normalize(next)
	}
	if next.Equal(old) {
		return old, nil
	}
	if err := CheckUpdate(old, next, now, v, skew); err != nil {
		return nil, err
	}
	stamp(old, next, now, due, normalize)
	return next, nil
}

// stamp sets the fields a store owns on next, a checked change of old at
// now.
func stamp(old, next *Record, now time.Time, due DuePolicy, normalize func(*Record)) {
	next.Version = old.Version + 1
	next.Updated = now
	next.Due = due.Due(next, now)
	if normalize != nil {
		normalize(next)
	}
}
