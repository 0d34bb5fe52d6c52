package ctsubmit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Validity is a certificate's validity period, as in its TBSCertificate.
// Each policy derives the certificate's lifetime from it in its own way.
type Validity struct {
	// NotBefore and NotAfter are the certificate's, both inclusive
	// (RFC 5280 §4.1.2.5).
	NotBefore, NotAfter time.Time
}

// Policy decides when a set of embedded SCTs is enough.
//
// Implementations are pure functions of their arguments and safe for
// concurrent use. [ChromePolicy] and [ApplePolicy] follow the published
// rules; [DefaultPolicy] requires both.
type Policy interface {
	// Needed returns the least number of SCTs, from distinct logs, that
	// can satisfy the policy for a certificate with validity v: a
	// [Submitter] starts that many submissions at once. It returns an
	// error if no set of SCTs can (a lifetime the policy does not
	// accept).
	Needed(v Validity) (int, error)
	// Check returns nil if scts, whose signatures are already verified,
	// satisfy the policy when embedded in a certificate with validity v
	// and checked at time now, and otherwise an error saying what is
	// missing. SCTs from the same log count once.
	Check(v Validity, scts []SCT, now time.Time) error
}

// DefaultPolicy returns the policy a [Submitter] uses when
// [Config.Policy] is nil: [ChromePolicy] and [ApplePolicy] together.
func DefaultPolicy() Policy { return AllOf(ChromePolicy{}, ApplePolicy{}) }

// AllOf returns a policy that is met when every one of ps is met. Its
// Needed is the largest of theirs.
func AllOf(ps ...Policy) Policy { return allOf(slices.Clone(ps)) }

type allOf []Policy

func (a allOf) Needed(v Validity) (int, error) {
	n := 0
	var errs []error
	for _, p := range a {
		m, err := p.Needed(v)
		if err != nil {
			errs = append(errs, err)
		}
		n = max(n, m)
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if n == 0 {
		return 0, errors.New("ctsubmit: empty policy")
	}
	return n, nil
}

func (a allOf) Check(v Validity, scts []SCT, now time.Time) error {
	return a.check(v, scts, now, true)
}

func (a allOf) check(v Validity, scts []SCT, now time.Time, explain bool) error {
	if len(a) == 0 {
		return errors.New("ctsubmit: empty policy")
	}
	var errs []error
	for _, p := range a {
		if err := quickCheck(p, v, scts, now, explain); err != nil {
			if !explain {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// errNotMet is what this package's policies return when not asked to
// explain why they are not met.
var errNotMet = errors.New("ctsubmit: CT policy not met")

// checker is implemented by this package's policies: check is Check,
// except that with explain false it may return errNotMet instead of an
// error saying what is missing, sparing the messages while a Submitter
// waits for SCTs.
type checker interface {
	check(v Validity, scts []SCT, now time.Time, explain bool) error
}

// quickCheck is p.Check, without the explanation when explain is false
// and p is one of this package's policies. Its verdict is Check's.
func quickCheck(p Policy, v Validity, scts []SCT, now time.Time, explain bool) error {
	if c, ok := p.(checker); ok {
		return c.check(v, scts, now, explain)
	}
	return p.Check(v, scts, now)
}

// explained turns err, a failure from quickCheck(p, v, scts, now, false),
// into the error Check returns.
func explained(err error, p Policy, v Validity, scts []SCT, now time.Time) error {
	if _, ok := p.(checker); ok {
		if full := p.Check(v, scts, now); full != nil {
			return full
		}
	}
	return err
}

// ChromePolicy is the Chrome Certificate Transparency Policy for embedded
// SCTs in certificates issued on or after 15 April 2022
// (https://googlechrome.github.io/CertificateTransparency/ct_policy.html).
// A set of SCTs complies when:
//
//  1. at least one SCT is from a log that is not retired at the time of
//     check (Qualified, Usable or ReadOnly);
//  2. there are SCTs from at least N distinct logs that are not retired,
//     or are retired but issued the SCT — and the earliest SCT from a
//     log not retired was issued — before the log's retirement; N is 2
//     for a lifetime of 180 days or less and 3 beyond;
//  3. among the SCTs satisfying 1 and 2, at least two are from distinct
//     log operators;
//  4. at least one of them is from an RFC 6962 log, not a static-ct-api
//     (tiled) one, as Chrome enforces since it admitted tiled logs.
//
// The lifetime is [ChromePolicy.Lifetime]. Log operators are compared by
// [Log.Operator]; the log list's previous_operators history is not
// modelled, so a log that changed hands counts for its current operator.
type ChromePolicy struct{}

// chromeLongLifetime is the boundary of Chrome's table: "<= 180 days".
const chromeLongLifetime = 180 * 24 * time.Hour

// Lifetime returns the certificate lifetime Chrome compares with 180 days:
// NotAfter minus NotBefore, exactly as Chrome's policy enforcer computes
// it (valid_expiry − valid_start). Unlike RFC 5280's inclusive validity it
// does not add the final second, so a certificate whose NotAfter is
// NotBefore + 180×86400 s has a lifetime of exactly 180 days and needs 2
// SCTs; one second more needs 3.
func (ChromePolicy) Lifetime(v Validity) time.Duration { return v.NotAfter.Sub(v.NotBefore) }

// Needed returns 2 for a [ChromePolicy.Lifetime] of 180 days or less and 3
// beyond.
func (p ChromePolicy) Needed(v Validity) (int, error) {
	lt := p.Lifetime(v)
	if lt < 0 {
		return 0, fmt.Errorf("ctsubmit: Chrome CT policy: NotAfter %s precedes NotBefore %s", v.NotAfter.Format(time.RFC3339), v.NotBefore.Format(time.RFC3339))
	}
	if lt > chromeLongLifetime {
		return 3, nil
	}
	return 2, nil
}

// Check applies the rules listed on [ChromePolicy].
func (p ChromePolicy) Check(v Validity, scts []SCT, now time.Time) error {
	return p.check(v, scts, now, true)
}

func (p ChromePolicy) check(v Validity, scts []SCT, now time.Time, explain bool) error {
	need, err := p.Needed(v)
	if err != nil {
		return err
	}
	// Chrome takes as the issuance date the earliest SCT from a log not
	// retired at check time.
	var issued time.Time
	for _, s := range scts {
		if s.Log == nil || s.Parsed == nil {
			continue
		}
		if !s.Log.RetiredAt(now) && (issued.IsZero() || s.Timestamp().Before(issued)) {
			issued = s.Timestamp()
		}
	}
	counted := distinctLogs(scts, func(s SCT) bool {
		if !s.Log.RetiredAt(now) {
			return true
		}
		return s.Timestamp().Before(s.Log.Retired) && !issued.IsZero() && issued.Before(s.Log.Retired)
	})
	rfc6962 := slices.ContainsFunc(counted, func(s SCT) bool { return !s.Log.Tiled })
	if !explain {
		if issued.IsZero() || len(counted) < need || distinctOperators(counted) < 2 || !rfc6962 {
			return errNotMet
		}
		return nil
	}
	var problems []string
	if issued.IsZero() {
		problems = append(problems, "no SCT from a log that is not retired")
	}
	if len(counted) < need {
		problems = append(problems, fmt.Sprintf("SCTs from %d distinct qualifying logs, a lifetime of %s needs %d",
			len(counted), fmtDays(p.Lifetime(v)), need))
	}
	if ops := operators(counted); len(ops) < 2 {
		problems = append(problems, fmt.Sprintf("SCTs from %d log operators %q, at least 2 are needed", len(ops), ops))
	}
	if !rfc6962 {
		problems = append(problems, "no SCT from an RFC 6962 (non-tiled) log")
	}
	if len(problems) > 0 {
		return fmt.Errorf("ctsubmit: Chrome CT policy not met: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ApplePolicy is Apple's Certificate Transparency policy for embedded SCTs
// (https://support.apple.com/en-us/103214), for certificates issued on or
// after 21 April 2021. A set of SCTs complies when:
//
//  1. at least one SCT is from a log currently approved (not retired at
//     the time of check);
//  2. counting only SCTs from logs once or currently approved (a retired
//     log's SCT counts if issued before its retirement), and at most a
//     capped number per log operator, there are SCTs from at least N
//     distinct logs: N = 2 with at most 1 per operator for a lifetime of
//     180 days or less, N = 3 with at most 2 per operator for 181 to 398
//     days;
//  3. at least one of them is from a log compliant with RFC 6962, not a
//     static-ct-api (tiled) one.
//
// A lifetime over 398 days cannot comply: Apple does not trust such
// certificates. The lifetime is [ApplePolicy.LifetimeDays].
type ApplePolicy struct{}

// LifetimeDays returns the lifetime in days Apple compares with its table:
// the RFC 5280 §4.1.2.5 validity period "from notBefore through notAfter,
// inclusive" — NotAfter − NotBefore + 1 second — in days of 86,400
// seconds, where any part of a day counts as a day. So NotAfter =
// NotBefore + 180 days − 1 s is 180 days, and NotAfter = NotBefore + 180
// days is 181 days (while Chrome counts that one as 180).
func (ApplePolicy) LifetimeDays(v Validity) int {
	d := v.NotAfter.Sub(v.NotBefore) + time.Second
	const day = 24 * time.Hour
	days := d / day
	if d%day != 0 {
		days++
	}
	return int(days)
}

// table returns the number of SCTs from distinct logs and the most per
// operator that count, for a lifetime in days.
func (p ApplePolicy) table(v Validity) (need, perOperator int, err error) {
	if v.NotAfter.Before(v.NotBefore) {
		return 0, 0, fmt.Errorf("ctsubmit: Apple CT policy: NotAfter %s precedes NotBefore %s", v.NotAfter.Format(time.RFC3339), v.NotBefore.Format(time.RFC3339))
	}
	switch days := p.LifetimeDays(v); {
	case days <= 180:
		return 2, 1, nil
	case days <= 398:
		return 3, 2, nil
	default:
		return 0, 0, fmt.Errorf("ctsubmit: Apple CT policy: a lifetime of %d days exceeds 398 days, no SCTs can make it compliant", days)
	}
}

// Needed returns 2 for 180 days or less, 3 for 181 to 398 days, and an
// error beyond.
func (p ApplePolicy) Needed(v Validity) (int, error) {
	need, _, err := p.table(v)
	return need, err
}

// Check applies the rules listed on [ApplePolicy].
func (p ApplePolicy) Check(v Validity, scts []SCT, now time.Time) error {
	return p.check(v, scts, now, true)
}

func (p ApplePolicy) check(v Validity, scts []SCT, now time.Time, explain bool) error {
	need, perOp, err := p.table(v)
	if err != nil {
		return err
	}
	counted := distinctLogs(scts, func(s SCT) bool {
		return !s.Log.RetiredAt(now) || s.Timestamp().Before(s.Log.Retired)
	})
	perOperator := map[string]int{}
	for _, s := range counted {
		perOperator[s.Log.Operator]++
	}
	n := 0
	for _, k := range perOperator {
		n += min(k, perOp)
	}
	approved := slices.ContainsFunc(counted, func(s SCT) bool { return !s.Log.RetiredAt(now) })
	rfc6962 := slices.ContainsFunc(counted, func(s SCT) bool { return !s.Log.Tiled })
	if !explain {
		if !approved || n < need || !rfc6962 {
			return errNotMet
		}
		return nil
	}
	var problems []string
	if !approved {
		problems = append(problems, "no SCT from a currently approved (not retired) log")
	}
	if n < need {
		problems = append(problems, fmt.Sprintf("%d SCTs count (from %d logs of %d operators, at most %d per operator), a lifetime of %d days needs %d",
			n, len(counted), len(perOperator), perOp, p.LifetimeDays(v), need))
	}
	if !rfc6962 {
		problems = append(problems, "no SCT from an RFC 6962 (non-tiled) log")
	}
	if len(problems) > 0 {
		return fmt.Errorf("ctsubmit: Apple CT policy not met: %s", strings.Join(problems, "; "))
	}
	return nil
}

// distinctLogs returns the SCTs that pass keep, at most one per log.
func distinctLogs(scts []SCT, keep func(SCT) bool) []SCT {
	var out []SCT
	seen := map[[32]byte]bool{}
	for _, s := range scts {
		if s.Log == nil || s.Parsed == nil || !keep(s) {
			continue
		}
		id := s.Log.ID()
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, s)
	}
	return out
}

// distinctOperators returns the number of distinct operators of scts.
func distinctOperators(scts []SCT) int {
	n := 0
	for i, s := range scts {
		if !slices.ContainsFunc(scts[:i], func(t SCT) bool { return t.Log.Operator == s.Log.Operator }) {
			n++
		}
	}
	return n
}

// operators returns the distinct operators of scts, sorted.
func operators(scts []SCT) []string {
	var ops []string
	for _, s := range scts {
		if !slices.Contains(ops, s.Log.Operator) {
			ops = append(ops, s.Log.Operator)
		}
	}
	slices.Sort(ops)
	return ops
}

// fmtDays renders a lifetime in days, with seconds if it is not whole.
func fmtDays(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return fmt.Sprintf("%d days %s", d/day, d%day)
}
