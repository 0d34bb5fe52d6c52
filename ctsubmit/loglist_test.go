package ctsubmit_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
)

// spki returns the DER public key of a fresh P-256 key.
func spki(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return der
}

// chromeList returns a log list in the shape Chrome publishes, with one
// log in each state and a tiled log, and the fresh keys of its 7 logs, in
// list order.
func chromeList(t testing.TB) (string, [][]byte) {
	t.Helper()
	var (
		keys  [][]byte
		pairs []string
	)
	for i := range 7 {
		k := spki(t)
		keys = append(keys, k)
		pairs = append(pairs, fmt.Sprintf("KEY%d", i), base64.StdEncoding.EncodeToString(k), fmt.Sprintf("ID%d", i), idOf(k))
	}
	return strings.NewReplacer(pairs...).Replace(`{
  "version": "62.11",
  "log_list_timestamp": "2026-05-30T12:54:11Z",
  "operators": [
    {
      "name": "Google",
      "email": ["google-ct-logs@googlegroups.com"],
      "logs": [
        {
          "description": "Google 'Argon2026h1' log",
          "log_id": "ID0", "key": "KEY0",
          "url": "https://ct.googleapis.com/logs/us1/argon2026h1/",
          "mmd": 86400,
          "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}},
          "temporal_interval": {"start_inclusive": "2026-01-01T00:00:00Z", "end_exclusive": "2026-07-01T00:00:00Z"}
        },
        {
          "description": "Google 'Argon2026h2' log",
          "log_id": "ID1", "key": "KEY1",
          "url": "https://ct.googleapis.com/logs/us1/argon2026h2/",
          "mmd": 86400,
          "state": {"qualified": {"timestamp": "2025-06-01T00:00:00Z"}},
          "temporal_interval": {"start_inclusive": "2026-07-01T00:00:00Z", "end_exclusive": "2027-01-01T00:00:00Z"}
        },
        {
          "description": "Google 'Old' log",
          "log_id": "ID2", "key": "KEY2",
          "url": "https://ct.googleapis.com/logs/old/",
          "mmd": 86400,
          "state": {"retired": {"timestamp": "2024-01-01T00:00:00Z"}}
        }
      ]
    },
    {
      "name": "Let's Encrypt",
      "email": ["sre@letsencrypt.org"],
      "logs": [
        {
          "description": "Let's Encrypt 'Frozen' log",
          "log_id": "ID3", "key": "KEY3",
          "url": "https://frozen.ct.letsencrypt.org/",
          "mmd": 86400,
          "state": {"readonly": {"timestamp": "2024-01-01T00:00:00Z", "final_tree_head": {"sha256_root_hash": "AAAA", "tree_size": 1}}}
        },
        {
          "description": "Let's Encrypt 'Pending' log",
          "log_id": "ID4", "key": "KEY4",
          "url": "https://pending.ct.letsencrypt.org/",
          "mmd": 86400,
          "state": {"pending": {"timestamp": "2026-05-01T00:00:00Z"}}
        }
      ],
      "tiled_logs": [
        {
          "description": "Let's Encrypt 'Sycamore2026h1'",
          "log_id": "ID5", "key": "KEY5",
          "submission_url": "https://log.sycamore.ct.letsencrypt.org/2026h1/",
          "monitoring_url": "https://mon.sycamore.ct.letsencrypt.org/2026h1/",
          "mmd": 60,
          "state": {"usable": {"timestamp": "2025-06-01T00:00:00Z"}},
          "temporal_interval": {"start_inclusive": "2026-01-01T00:00:00Z", "end_exclusive": "2026-07-01T00:00:00Z"}
        },
        {
          "description": "Let's Encrypt 'Rejected'",
          "log_id": "ID6", "key": "KEY6",
          "submission_url": "https://rejected.ct.letsencrypt.org/",
          "monitoring_url": "https://rejected-mon.ct.letsencrypt.org/",
          "mmd": 60,
          "state": {"rejected": {"timestamp": "2025-06-01T00:00:00Z"}}
        }
      ]
    }
  ]
}`), keys
}

func TestLoadLogList(t *testing.T) {
	list, keys := chromeList(t)
	logs, err := ctsubmit.LoadLogList([]byte(list))
	require.NoError(t, err)
	require.Len(t, logs, 3, "usable, qualified and the usable tiled log")

	argon := logs[0]
	require.Equal(t, "Google 'Argon2026h1' log", argon.Name)
	require.Equal(t, "Google", argon.Operator)
	require.Equal(t, "https://ct.googleapis.com/logs/us1/argon2026h1/", argon.URL)
	require.Equal(t, keys[0], argon.Key)
	require.False(t, argon.Tiled)
	require.True(t, argon.Retired.IsZero())
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), argon.TemporalStart.UTC())
	require.Equal(t, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), argon.TemporalEnd.UTC())

	require.Equal(t, "Google 'Argon2026h2' log", logs[1].Name)

	syc := logs[2]
	require.Equal(t, "Let's Encrypt", syc.Operator)
	require.True(t, syc.Tiled)
	require.Equal(t, "https://log.sycamore.ct.letsencrypt.org/2026h1/", syc.URL)

	// The temporal interval picks the shard per NotAfter.
	for _, tc := range []struct {
		notAfter time.Time
		want     []string
	}{
		{time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), nil},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), []string{argon.Name, syc.Name}},
		{time.Date(2026, 6, 30, 23, 59, 59, 0, time.UTC), []string{argon.Name, syc.Name}},
		{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), []string{logs[1].Name}},
	} {
		var got []string
		for _, l := range logs {
			if l.Accepts(tc.notAfter) {
				got = append(got, l.Name)
			}
		}
		require.Equal(t, tc.want, got, "NotAfter %s", tc.notAfter)
	}
}

func TestLoadLogListErrors(t *testing.T) {
	good, keys := chromeList(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weak, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name string
		data string
		want string
	}{
		{"not JSON", "<html>", "failed to parse log list"},
		{"empty object", "{}", "no usable or qualified log (0 logs listed"},
		{"no usable log", strings.ReplaceAll(strings.ReplaceAll(good, `"usable"`, `"retired"`), `"qualified"`, `"pending"`),
			"no usable or qualified log (7 logs listed; by state: map[pending:2 readonly:1 rejected:1 retired:3])"},
		{"log_id mismatch", strings.Replace(good, `"log_id": "`+idOf(keys[0])+`"`, `"log_id": "`+idOf(keys[6])+`"`, 1), "is not the SHA-256 of its key"},
		{"bad key", strings.Replace(good, b64(keys[0]), b64([]byte("nope")), 1), "parsing Key"},
		{"weak RSA key", strings.Replace(strings.Replace(good, b64(keys[0]), b64(weak), 1), `"log_id": "`+idOf(keys[0])+`", `, "", 1), "RSA-1024"},
		{"relative URL", strings.Replace(good, "https://ct.googleapis.com/logs/us1/argon2026h1/", "/argon", 1), "not an absolute http or https URL"},
		{"same key twice", strings.Replace(strings.Replace(good, b64(keys[1]), b64(keys[0]), 1), idOf(keys[1]), idOf(keys[0]), 1), "same key"},
		{"operator without name", strings.Replace(good, `"name": "Google"`, `"name": ""`, 1), "has no Operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, err := ctsubmit.LoadLogList([]byte(tc.data))
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, logs)
		})
	}
	_, err = ctsubmit.LoadLogList([]byte("{}"))
	require.ErrorIs(t, err, ctsubmit.ErrNoUsableLog)
}

func idOf(key []byte) string {
	s := sha256.Sum256(key)
	return base64.StdEncoding.EncodeToString(s[:])
}

func TestMarshalLogListRoundTrip(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	logs := []*ctsubmit.Log{
		{Name: "one", Operator: "Op A", URL: "http://127.0.0.1:1001", Key: spki(t)},
		{Name: "two", Operator: "Op B", URL: "http://127.0.0.1:1002", Key: spki(t), TemporalStart: start, TemporalEnd: start.AddDate(1, 0, 0)},
		{Name: "three", Operator: "Op A", URL: "https://tiled.example/2026/", Key: spki(t), Tiled: true},
	}
	data, err := ctsubmit.MarshalLogList(logs, start)
	require.NoError(t, err)
	got, err := ctsubmit.LoadLogList(data)
	require.NoError(t, err)
	// Operators group their logs: Op A's RFC 6962 log, Op A's tiled log,
	// then Op B's.
	require.Len(t, got, 3)
	for i, want := range []*ctsubmit.Log{logs[0], logs[2], logs[1]} {
		require.Equal(t, want.Name, got[i].Name)
		require.Equal(t, want.Operator, got[i].Operator)
		require.Equal(t, want.URL, got[i].URL)
		require.Equal(t, want.Key, got[i].Key)
		require.Equal(t, want.Tiled, got[i].Tiled)
		require.True(t, want.TemporalStart.Equal(got[i].TemporalStart))
		require.True(t, want.TemporalEnd.Equal(got[i].TemporalEnd))
	}

	// A retired log is written as retired, and not loaded back.
	retired := *logs[0]
	retired.Retired = start
	data, err = ctsubmit.MarshalLogList([]*ctsubmit.Log{&retired, logs[1]}, start)
	require.NoError(t, err)
	require.Contains(t, string(data), `"retired"`)
	got, err = ctsubmit.LoadLogList(data)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "two", got[0].Name)

	half := *logs[0]
	half.TemporalEnd = start
	_, err = ctsubmit.MarshalLogList([]*ctsubmit.Log{&half}, start)
	require.ErrorContains(t, err, "half-open")
	_, err = ctsubmit.MarshalLogList([]*ctsubmit.Log{nil}, start)
	require.ErrorContains(t, err, "nil")
}

// FuzzLoadLogList feeds arbitrary bytes to LoadLogList: no panic, an error
// or logs that pass New's checks and survive a write and a read.
func FuzzLoadLogList(f *testing.F) {
	list, _ := chromeList(f)
	f.Add([]byte(list))
	f.Add([]byte(`{"operators":[{"name":"x","logs":[null],"tiled_logs":[null]},null]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		logs, err := ctsubmit.LoadLogList(data)
		if err != nil {
			require.NotEmpty(t, err.Error())
			require.Nil(t, logs)
			return
		}
		require.NotEmpty(t, logs)
		_, err = ctsubmit.New(ctsubmit.Config{Logs: logs})
		require.NoError(t, err)
		var closed []*ctsubmit.Log // MarshalLogList cannot write half-open intervals
		for _, l := range logs {
			if l.TemporalStart.IsZero() == l.TemporalEnd.IsZero() {
				closed = append(closed, l)
			}
		}
		if len(closed) == 0 {
			return
		}
		out, err := ctsubmit.MarshalLogList(closed, time.Unix(0, 0))
		require.NoError(t, err)
		again, err := ctsubmit.LoadLogList(out)
		require.NoError(t, err)
		require.Len(t, again, len(closed))
	})
}
