package ctsubmit

import (
	"math/rand/v2"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

var (
	checkTime = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	notBefore = checkTime.Add(-time.Hour)
	retiredAt = checkTime.Add(-10 * day)
)

// validity returns a validity period starting at notBefore that lasts d
// (NotAfter = NotBefore + d).
func validity(d time.Duration) Validity {
	return Validity{NotBefore: notBefore, NotAfter: notBefore.Add(d)}
}

type logOpt func(*Log)

var tiled logOpt = func(l *Log) { l.Tiled = true }

func retired(at time.Time) logOpt { return func(l *Log) { l.Retired = at } }

// plog makes a log for policy tests: only Name, Operator, Key (for the ID),
// Tiled and Retired matter.
func plog(name, operator string, opts ...logOpt) *Log {
	l := &Log{Name: name, Operator: operator, URL: "https://" + name + ".example/", Key: []byte("key of " + name)}
	for _, o := range opts {
		o(l)
	}
	return l
}

func sctAt(l *Log, ts time.Time) SCT {
	return SCT{Log: l, Parsed: &ct.SignedCertificateTimestamp{Timestamp: uint64(ts.UnixMilli())}}
}

// Logs of the policy tables: operators A (3 logs), B, C, tiled D and E,
// and R whose logs are retired.
var (
	a1, a2, a3 = plog("a1", "A"), plog("a2", "A"), plog("a3", "A")
	b1         = plog("b1", "B")
	c1         = plog("c1", "C")
	d1         = plog("d1", "D", tiled)
	e1         = plog("e1", "E", tiled)
	r1         = plog("r1", "R", retired(retiredAt))
	r2         = plog("r2", "R2", retired(retiredAt))
)

// now returns SCTs from logs, all issued at checkTime.
func now(logs ...*Log) []SCT { return at(checkTime, logs...) }

// at returns SCTs from logs, all issued at ts.
func at(ts time.Time, logs ...*Log) []SCT {
	var out []SCT
	for _, l := range logs {
		out = append(out, sctAt(l, ts))
	}
	return out
}

func TestLifetimes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v          Validity
		chromeNeed int // 0: error
		appleDays  int
		appleNeed  int // 0: error
	}{
		{"zero length", validity(0), 2, 1, 2},
		{"90 days", validity(90 * day), 2, 91, 2},
		{"90 days inclusive", validity(90*day - time.Second), 2, 90, 2},
		{"180 days minus 1s", validity(180*day - time.Second), 2, 180, 2},
		// The boundary where the two policies part: Chrome counts
		// NotAfter−NotBefore, Apple adds the last second (RFC 5280).
		{"exactly 180 days", validity(180 * day), 2, 181, 3},
		{"180 days plus 1s", validity(180*day + time.Second), 3, 181, 3},
		{"181 days", validity(181 * day), 3, 182, 3},
		{"398 days minus 1s", validity(398*day - time.Second), 3, 398, 3},
		{"exactly 398 days", validity(398 * day), 3, 399, 0},
		{"825 days", validity(825 * day), 3, 826, 0},
		{"negative", validity(-time.Second), 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ChromePolicy{}.Needed(tc.v)
			if tc.chromeNeed == 0 {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.chromeNeed, n)
			}
			if tc.appleDays > 0 {
				require.Equal(t, tc.appleDays, ApplePolicy{}.LifetimeDays(tc.v))
			}
			n, err = ApplePolicy{}.Needed(tc.v)
			if tc.appleNeed == 0 {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.appleNeed, n)
			}
			n, err = DefaultPolicy().Needed(tc.v)
			if tc.chromeNeed == 0 || tc.appleNeed == 0 {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				require.Equal(t, max(tc.chromeNeed, tc.appleNeed), n)
			}
		})
	}
}

type policyCase struct {
	name    string
	v       Validity
	scts    []SCT
	wantErr string // "" means compliant; otherwise a substring of the error
}

func runPolicyCases(t *testing.T, p Policy, cases []policyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.v, tc.scts, checkTime)
			// The quick check a Submitter makes reaches the same verdict.
			quick := quickCheck(p, tc.v, tc.scts, checkTime, false)
			require.Equal(t, err == nil, quick == nil, "Check: %v; quick check: %v", err, quick)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestChromePolicy(t *testing.T) {
	short, exactly180, long := validity(90*day), validity(180*day), validity(180*day+time.Second)
	beforeRetirement := retiredAt.Add(-5 * day)
	runPolicyCases(t, ChromePolicy{}, []policyCase{
		{"no SCT", short, nil, "no SCT from a log that is not retired"},
		{"one SCT", short, now(a1), "SCTs from 1 distinct qualifying logs, a lifetime of 90 days needs 2"},
		{"two logs two operators", short, now(a1, b1), ""},
		{"one log twice", short, now(a1, a1), "SCTs from 1 distinct"},
		{"two logs one operator", short, now(a1, a2), "SCTs from 1 log operators"},
		{"180 days exactly needs two", exactly180, now(a1, b1), ""},
		{"over 180 days needs three", long, now(a1, b1), "a lifetime of 180 days 1s needs 3"},
		{"over 180 days, three logs three operators", long, now(a1, b1, c1), ""},
		{"over 180 days, three logs two operators", long, now(a1, a2, b1), ""},
		{"over 180 days, three logs one operator", long, now(a1, a2, a3), "SCTs from 1 log operators"},
		{"retired log, SCT and issuance before retirement", short, at(beforeRetirement, a1, r1), ""},
		{"retired log, SCT after retirement", short, append(now(a1), sctAt(r1, retiredAt)), "SCTs from 1 distinct"},
		// The earliest SCT from a log not retired dates the issuance: a
		// certificate issued after the retirement cannot count an old
		// SCT from the retired log.
		{"retired log, issuance after retirement", short, append(now(a1), sctAt(r1, beforeRetirement)), "SCTs from 1 distinct"},
		{"only retired logs", short, at(beforeRetirement, r1, r2), "no SCT from a log that is not retired"},
		{"only tiled logs", short, now(d1, e1), "no SCT from an RFC 6962 (non-tiled) log"},
		{"one tiled, one RFC 6962", short, now(a1, d1), ""},
		{"extra SCTs do not hurt", short, append(now(a1, b1, a2), sctAt(r1, retiredAt)), ""},
		{"nil entries are ignored", short, append(now(a1, b1), SCT{}), ""},
	})
}

func TestApplePolicy(t *testing.T) {
	short, day181, long := validity(90*day), validity(180*day), validity(300*day)
	beforeRetirement := retiredAt.Add(-5 * day)
	runPolicyCases(t, ApplePolicy{}, []policyCase{
		{"no SCT", short, nil, "no SCT from a currently approved"},
		{"one SCT", short, now(a1), "1 SCTs count"},
		{"two logs two operators", short, now(a1, b1), ""},
		{"one log twice", short, now(a1, a1), "1 SCTs count"},
		{"two logs one operator: one counts", short, now(a1, a2), "1 SCTs count (from 2 logs of 1 operators, at most 1 per operator)"},
		{"three logs one operator, plus another", short, now(a1, a2, a3, b1), ""},
		{"180 days exactly is 181 days: two are not enough", day181, now(a1, b1), "a lifetime of 181 days needs 3"},
		{"181 days: two per operator count", day181, now(a1, a2, b1), ""},
		{"300 days: three logs three operators", long, now(a1, b1, c1), ""},
		{"300 days: three logs one operator", long, now(a1, a2, a3), "2 SCTs count"},
		{"once-approved log counts", long, append(now(a1, b1), sctAt(r1, beforeRetirement)), ""},
		{"retired log's SCT after retirement", long, append(now(a1, b1), sctAt(r1, retiredAt)), "2 SCTs count"},
		{"only retired logs", short, at(beforeRetirement, r1, r2), "no SCT from a currently approved"},
		{"only tiled logs", short, now(d1, e1), "no SCT from an RFC 6962 (non-tiled) log"},
		{"one tiled, one RFC 6962", short, now(a1, d1), ""},
		{"over 398 days", validity(398 * day), now(a1, b1, c1), "exceeds 398 days"},
	})
}

func TestDefaultPolicy(t *testing.T) {
	runPolicyCases(t, DefaultPolicy(), []policyCase{
		{"90 days, two operators", validity(90 * day), now(a1, b1), ""},
		{"exactly 180 days: Chrome is met, Apple wants three", validity(180 * day), now(a1, b1), "Apple CT policy not met"},
		{"exactly 180 days, three logs", validity(180 * day), now(a1, a2, b1), ""},
		// Apple counts one SCT per operator for short certificates;
		// Chrome wants two operators: both refuse.
		{"two logs one operator", validity(90 * day), now(a1, a2), "Chrome CT policy not met"},
	})
	err := DefaultPolicy().Check(validity(90*day), now(a1, a2), checkTime)
	require.ErrorContains(t, err, "Apple CT policy not met")
	require.Error(t, AllOf().Check(validity(day), now(a1, b1), checkTime))
	_, err = AllOf().Needed(validity(day))
	require.Error(t, err)
}

// TestQuickCheckAgrees compares the quick check with Check over random
// sets of SCTs from the table's logs (retired, tiled, shared operators),
// random issuance times and lifetimes, for every policy; and checks that
// explained restores Check's error.
func TestQuickCheckAgrees(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	logs := []*Log{a1, a2, a3, b1, c1, d1, e1, r1, r2}
	lifetimes := []time.Duration{-time.Second, 90 * day, 180 * day, 180*day + time.Second, 200 * day, 398 * day, 399 * day}
	times := []time.Time{checkTime, retiredAt.Add(-day), retiredAt.Add(time.Second)}
	policies := map[string]Policy{"chrome": ChromePolicy{}, "apple": ApplePolicy{}, "default": DefaultPolicy(), "empty": AllOf()}
	for range 3000 {
		var scts []SCT
		for range r.IntN(6) {
			scts = append(scts, sctAt(logs[r.IntN(len(logs))], times[r.IntN(len(times))]))
		}
		v := validity(lifetimes[r.IntN(len(lifetimes))])
		for name, p := range policies {
			full := p.Check(v, scts, checkTime)
			quick := quickCheck(p, v, scts, checkTime, false)
			require.Equal(t, full == nil, quick == nil, "%s: Check: %v; quick check: %v", name, full, quick)
			if quick != nil {
				require.Equal(t, full, explained(quick, p, v, scts, checkTime), name)
			}
		}
	}
}
