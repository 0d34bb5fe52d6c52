package ctsubmit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors a Submit failure may wrap; test with [errors.Is].
var (
	// ErrUnsatisfiable: even if every eligible log answered, the policy
	// could not be met for this certificate (too few logs or operators
	// accept its NotAfter, or its lifetime is one the policy refuses).
	// Nothing was submitted.
	ErrUnsatisfiable = errors.New("ctsubmit: the policy cannot be met with the configured logs")
	// ErrOverallTimeout: [Config.OverallTimeout] passed before the
	// policy was met. It wraps [context.DeadlineExceeded].
	ErrOverallTimeout = fmt.Errorf("ctsubmit: overall timeout: %w", context.DeadlineExceeded)
)

// Causes of the contexts Submit cancels.
var (
	errPerLogTimeout = fmt.Errorf("per-log timeout: %w", context.DeadlineExceeded)
	errNotNeeded     = errors.New("not needed: the policy was met with other logs' SCTs")
)

// Kind classifies why one log gave no usable SCT.
type Kind int

// The kinds of [LogError]. Every failed submission has exactly one.
const (
	// KindRejected: the log answered 4xx (other than 408 and 429): it
	// refuses this chain (unknown root, expired, malformed) — the body
	// usually says why. Retrying the same chain will not help.
	KindRejected Kind = iota + 1
	// KindRateLimited: the log answered 429 on every attempt, or asked,
	// with Retry-After, for a wait longer than the time left.
	KindRateLimited
	// KindServerError: the log answered 5xx (503 on every attempt, or any
	// other 5xx once).
	KindServerError
	// KindTimeout: no answer before the per-log or the overall deadline
	// (or 408 on every attempt).
	KindTimeout
	// KindTransport: no HTTP exchange: DNS, connection refused or reset,
	// TLS.
	KindTransport
	// KindMalformed: the log answered 200 (or another unexpected status)
	// with a body that is not a well-formed add-pre-chain response.
	KindMalformed
	// KindInvalidSCT: a well-formed SCT that must not be used: its
	// signature does not verify over the precertificate, its LogID is
	// not the log's, or its timestamp is out of range. The log (or
	// something between it and us) is broken or hostile.
	KindInvalidSCT
	// KindCancelled: the submission was stopped before it finished: the
	// caller's context ended, or the policy was met without it.
	KindCancelled
	// KindNotTried: the log was not submitted to (its temporal interval
	// excludes the certificate, it is retired, or Submit ended first).
	KindNotTried
)

var kindNames = [...]string{
	KindRejected:    "rejected",
	KindRateLimited: "rate-limited",
	KindServerError: "server-error",
	KindTimeout:     "timeout",
	KindTransport:   "transport",
	KindMalformed:   "malformed-response",
	KindInvalidSCT:  "invalid-sct",
	KindCancelled:   "cancelled",
	KindNotTried:    "not-tried",
}

// String returns the kind's name, as used in messages and in the
// "outcome" label of the metrics.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// LogError is why one log gave no usable SCT.
type LogError struct {
	// Log is the log.
	Log *Log
	// Kind classifies the failure.
	Kind Kind
	// Status is the HTTP status of the last response, or 0 if there was
	// none.
	Status int
	// Body is an excerpt of the last response's body (at most 256 bytes,
	// invalid UTF-8 replaced), empty if none.
	Body string
	// RetryAfter is the wait the log last asked for with Retry-After, or 0.
	RetryAfter time.Duration
	// Attempts is the number of HTTP requests made to the log.
	Attempts int
	// Err is the underlying detail: the signature error, the decoding
	// error, the transport error, the context's cause.
	Err error
}

// Error says which log failed, how, and what it answered.
func (e *LogError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s: %s", e.Log, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (Retry-After %s)", e.RetryAfter)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, "; body: %q", e.Body)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *LogError) Unwrap() error { return e.Err }

// Error is returned by [Submitter.Submit] when CT did not yield SCTs that
// meet the policy. The precertificate may nonetheless sit in some log: a
// CA must keep answering OCSP for it.
type Error struct {
	// Needed is the least number of SCTs from distinct logs the policy
	// asked for; Got is how many verified SCTs were collected.
	Needed, Got int
	// Policy is what the policy said of the SCTs collected, if it was
	// consulted.
	Policy error
	// Err is why Submit stopped early, if it did: [ErrUnsatisfiable],
	// [ErrOverallTimeout], or the caller's context's cause.
	Err error
	// Logs has one entry per configured log, in [Config.Logs] order,
	// saying why it gave no usable SCT. Logs whose SCTs were collected
	// are not listed.
	Logs []*LogError
}

// Error summarises the failure on the first line and lists each log's
// cause on its own line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ctsubmit: CT submission failed: %d verified SCT(s), the policy needs at least %d from distinct logs", e.Got, e.Needed)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Policy != nil && e.Got > 0 { // with no SCT at all, the causes say more
		fmt.Fprintf(&b, "\n  %s", strings.ReplaceAll(e.Policy.Error(), "\n", "\n  "))
	}
	for _, le := range e.Logs {
		fmt.Fprintf(&b, "\n  %s", le.Error())
	}
	return b.String()
}

// Unwrap returns Err, Policy and each [LogError], so that [errors.Is] and
// [errors.As] see all of them.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Policy != nil {
		errs = append(errs, e.Policy)
	}
	for _, le := range e.Logs {
		errs = append(errs, le)
	}
	return errs
}

// excerpt returns at most 256 bytes of body as valid UTF-8.
func excerpt(body []byte) string {
	const n = 256
	cut := len(body) > n
	if cut {
		body = body[:n]
	}
	s := strings.ToValidUTF8(string(body), string(utf8.RuneError))
	s = strings.TrimSpace(s)
	if cut {
		s += "…"
	}
	return s
}
