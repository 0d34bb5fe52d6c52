package ctsubmit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzResponseBody answers Submit, for one of two logs, with arbitrary
// bytes and an arbitrary status. Submit must not panic; it either returns
// SCTs that verify, or an *Error whose cause for that log is the one the
// status calls for, with a message.
func FuzzResponseBody(f *testing.F) {
	p := precert(f, 90*day)
	now := time.Now()
	fixed := func() time.Time { return now }

	// A log whose answers the fuzzer replaces, and a seed: its real answer.
	fuzzed, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "fuzzed", Now: fixed})
	require.NoError(f, err)
	req, err := json.Marshal(ct.AddChainRequest{Chain: p.Chain})
	require.NoError(f, err)
	rec := httptest.NewRecorder()
	fuzzed.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ct.AddPreChainPath, bytes.NewReader(req)))
	require.Equal(f, http.StatusOK, rec.Code)
	valid := rec.Body.Bytes()
	var resp map[string]any
	require.NoError(f, json.Unmarshal(valid, &resp))
	variant := func(k string, v any) []byte {
		m := map[string]any{}
		for k, v := range resp {
			m[k] = v
		}
		m[k] = v
		b, err := json.Marshal(m)
		require.NoError(f, err)
		return b
	}
	f.Add(uint16(200), valid)
	f.Add(uint16(200), variant("timestamp", uint64(1)<<63))
	f.Add(uint16(200), variant("extensions", "!!"))
	f.Add(uint16(200), variant("id", "AAAA"))
	f.Add(uint16(200), variant("sct_version", 1))
	f.Add(uint16(200), variant("signature", "BAMAAA=="))
	f.Add(uint16(200), []byte("null"))
	f.Add(uint16(200), []byte("{}"))
	f.Add(uint16(200), []byte("<html>"))
	f.Add(uint16(400), []byte("bad chain"))
	f.Add(uint16(429), []byte{})
	f.Add(uint16(302), []byte{})

	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		code := 100 + int(status)%500
		synctest.Test(t, func(t *testing.T) {
			other, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "other", Now: fixed})
			require.NoError(t, err)
			inner := ctlogtest.Transport(other)
			fuzzedHost := strings.TrimPrefix(fuzzed.URL, "http://")
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Host != fuzzedHost {
					return inner.RoundTrip(r)
				}
				_ = r.Body.Close()
				return &http.Response{
					StatusCode: code, Header: http.Header{}, Request: r,
					Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
				}, nil
			})}
			logs := []*ctsubmit.Log{fuzzed.Log(), other.Log()}
			s := newSubmitter(t, ctsubmit.Config{Logs: logs, HTTPClient: client, Now: fixed})
			scts, err := s.Submit(t.Context(), p.Chain, p.Cert.NotAfter)
			if err == nil {
				requireValid(t, p, scts)
				return
			}
			var e *ctsubmit.Error
			require.True(t, errors.As(err, &e), "%v", err)
			le := logError(t, e, "fuzzed")
			require.NotEmpty(t, le.Error())
			want := map[ctsubmit.Kind]bool{}
			switch {
			case code == 200:
				want[ctsubmit.KindMalformed], want[ctsubmit.KindInvalidSCT] = true, true
			case code == 408:
				want[ctsubmit.KindTimeout] = true
			case code == 429:
				want[ctsubmit.KindRateLimited] = true
			case code >= 400 && code < 500:
				want[ctsubmit.KindRejected] = true
			case code >= 500:
				want[ctsubmit.KindServerError] = true
			default:
				want[ctsubmit.KindMalformed] = true
			}
			require.True(t, want[le.Kind], "status %d gave %v", code, le)
			require.Equal(t, code, le.Status)
		})
	})
}
