package ctsubmit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	ct "github.com/google/certificate-transparency-go"

	"github.com/certpipe/precert/internal/ctenc"
)

const (
	// maxAttempts bounds the requests to one log in one Submit.
	maxAttempts = 3
	// firstBackoff is the wait before the second attempt; it doubles.
	firstBackoff = 250 * time.Millisecond
	// maxResponseBody bounds what is read of a response. An
	// add-pre-chain answer is a few hundred bytes.
	maxResponseBody = 64 << 10
	userAgent       = "precert-ctsubmit/1"
)

// attempt makes up to maxAttempts requests to one log and returns its
// verified SCT or why there is none. ctx carries the per-log deadline.
//
// Unlike certificate-transparency-go's jsonclient, which retries 429, 503,
// transport errors and undecodable 200s until the context ends, it gives
// up at once on answers that will not change (garbage, a bad SCT, a 4xx)
// and on a Retry-After that does not fit in the time left, so that the
// race can replace the log immediately.
func (s *Submitter) attempt(ctx context.Context, e *logEntry, pc *precertChain, body []byte) (*SCT, *LogError) {
	le := &LogError{Log: e.log}
	for {
		le.Attempts++
		status, header, resp, err := s.post(ctx, e.url, body)
		if err != nil {
			if ctx.Err() != nil {
				return nil, s.stopped(ctx, le)
			}
			le.Kind, le.Status, le.Body, le.RetryAfter, le.Err = KindTransport, 0, "", 0, err
		} else {
			le.Status, le.RetryAfter, le.Err = status, 0, nil
			if status != http.StatusOK {
				le.Body = excerpt(resp)
			}
			switch {
			case status == http.StatusOK:
				sct, err := parseAddChainResponse(resp)
				if err != nil {
					le.Kind, le.Body, le.Err = KindMalformed, excerpt(resp), err
					return nil, le
				}
				if err := s.verify(e, pc, sct); err != nil {
					le.Kind, le.Body, le.Err = KindInvalidSCT, excerpt(resp), err
					return nil, le
				}
				raw, err := ctenc.MarshalSCT(sct)
				if err != nil {
					le.Kind, le.Err = KindMalformed, fmt.Errorf("re-encoding the SCT: %w", err)
					return nil, le
				}
				return &SCT{Log: e.log, Parsed: sct, Raw: raw}, nil
			case status == http.StatusTooManyRequests:
				le.Kind, le.RetryAfter = KindRateLimited, retryAfter(header, s.now())
			case status == http.StatusServiceUnavailable:
				le.Kind, le.RetryAfter = KindServerError, retryAfter(header, s.now())
			case status == http.StatusRequestTimeout:
				le.Kind = KindTimeout
			case status >= 400 && status < 500:
				le.Kind = KindRejected
				return nil, le
			case status >= 500:
				le.Kind = KindServerError
				return nil, le
			default:
				le.Kind, le.Err = KindMalformed, fmt.Errorf("unexpected HTTP status %d (redirects are not followed)", status)
				return nil, le
			}
		}
		if le.Attempts >= maxAttempts {
			return nil, le
		}
		wait := max(firstBackoff<<(le.Attempts-1), le.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			le.Err = errors.Join(le.Err, fmt.Errorf("not retrying: the wait of %s outlasts the deadline", wait))
			return nil, le
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, s.stopped(ctx, le)
		case <-t.C:
		}
	}
}

// stopped classifies a submission whose context ended, keeping what the
// log last answered.
func (s *Submitter) stopped(ctx context.Context, le *LogError) *LogError {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errPerLogTimeout):
		le.Kind, le.Err = KindTimeout, fmt.Errorf("no SCT within the per-log timeout of %s", s.perLog)
	case errors.Is(cause, context.DeadlineExceeded):
		le.Kind, le.Err = KindTimeout, cause
	default:
		le.Kind, le.Err = KindCancelled, cause
	}
	return le
}

// post sends one add-pre-chain request and reads at most
// maxResponseBody+1 bytes of the answer.
func (s *Submitter) post(ctx context.Context, url string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). It returns 0 if absent or unparsable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// parseAddChainResponse decodes an add-(pre-)chain response body
// (RFC 6962 §4.1) into an SCT, checking its form but not its signature.
// It parses bytes from the network, and is fuzzed.
func parseAddChainResponse(body []byte) (*ct.SignedCertificateTimestamp, error) {
	if len(body) > maxResponseBody {
		return nil, fmt.Errorf("response body exceeds %d bytes", maxResponseBody)
	}
	var r ct.AddChainResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("not a JSON add-chain response: %w", err)
	}
	if r.SCTVersion != ct.V1 {
		return nil, fmt.Errorf("sct_version %d, only v1 (0) exists", r.SCTVersion)
	}
	if len(r.ID) != len(ct.LogID{}.KeyID) {
		return nil, fmt.Errorf("id is %d bytes, a LogID is %d", len(r.ID), len(ct.LogID{}.KeyID))
	}
	if r.Timestamp == 0 {
		return nil, errors.New("timestamp is missing or zero")
	}
	exts, err := base64.StdEncoding.DecodeString(r.Extensions)
	if err != nil {
		return nil, fmt.Errorf("extensions are not base64: %w", err)
	}
	if len(exts) > 1<<16-1 {
		return nil, fmt.Errorf("extensions are %d bytes, the most is 65535", len(exts))
	}
	if len(r.Signature) == 0 {
		return nil, errors.New("signature is missing")
	}
	ds, rest, err := ctenc.ParseDigitallySigned(r.Signature)
	if err != nil {
		return nil, fmt.Errorf("signature is not a TLS DigitallySigned: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("signature has %d trailing bytes", len(rest))
	}
	if len(ds.Signature) == 0 {
		return nil, errors.New("signature is empty")
	}
	sct := &ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		Timestamp:  r.Timestamp,
		Extensions: ct.CTExtensions(exts),
		Signature:  ds,
	}
	copy(sct.LogID.KeyID[:], r.ID)
	return sct, nil
}

// verify checks a decoded SCT from e: LogID, signature and timestamp.
func (s *Submitter) verify(e *logEntry, pc *precertChain, sct *ct.SignedCertificateTimestamp) error {
	if err := pc.verify(e.id, e.pub, sct); err != nil {
		return err
	}
	return checkTimestamp(sct.Timestamp, pc.notBefore, s.now(), s.maxSkew)
}

// checkTimestamp accepts an SCT timestamp no later than now+skew and no
// earlier than min(notBefore, now)−skew. The lower bound is the
// precertificate's NotBefore, not now, because a log may answer a repeated
// submission (after a crash, say) with the SCT it issued the first time.
func checkTimestamp(ms uint64, notBefore, now time.Time, skew time.Duration) error {
	if ms > 1<<62 {
		return fmt.Errorf("timestamp %d ms is out of range", ms)
	}
	ts := time.UnixMilli(int64(ms))
	if latest := now.Add(skew); ts.After(latest) {
		return fmt.Errorf("timestamp %s is %s ahead of now, more than MaxSkew (%s)",
			ts.UTC().Format(time.RFC3339Nano), ts.Sub(now), skew)
	}
	earliest := notBefore
	if now.Before(earliest) {
		earliest = now
	}
	if earliest = earliest.Add(-skew); ts.Before(earliest) {
		return fmt.Errorf("timestamp %s precedes the precertificate's NotBefore %s by more than MaxSkew (%s)",
			ts.UTC().Format(time.RFC3339Nano), notBefore.UTC().Format(time.RFC3339), skew)
	}
	return nil
}
