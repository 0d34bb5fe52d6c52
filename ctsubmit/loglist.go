package ctsubmit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
)

// ErrNoUsableLog is returned, wrapped, by [LoadLogList] when the list
// parses but holds no log in state usable or qualified.
var ErrNoUsableLog = errors.New("ctsubmit: log list has no usable or qualified log")

// LoadLogList parses a v3 log list (Chrome's log_list.json, schema
// https://www.gstatic.com/ct/log_list/v3/log_list_schema.json) with
// certificate-transparency-go's loglist3 and returns the logs a CA may
// submit to: RFC 6962 logs and static-ct-api ("tiled") logs whose state is
// usable or qualified. Pending, read-only, retired and rejected logs are
// left out. A tiled log's URL is its submission_url.
//
// Every log returned has passed the checks [New] makes (a P-256 or
// RSA ≥ 2048 key, an http(s) URL, a unique name and key, an operator), and its
// log_id, when present, equals the SHA-256 of its key: a list that fails
// these is refused whole rather than trimmed, since it is corrupt or
// newer than this code. Logs are returned in list order, temporal
// intervals included: [Submitter.Submit] picks, per certificate, the logs
// whose interval contains its NotAfter.
//
// The list's signature is not checked here; check it first (loglist3's
// NewFromSignedJSON) if the bytes come from the network.
func LoadLogList(data []byte) ([]*Log, error) {
	ll, err := loglist3.NewFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: %w", err)
	}
	var (
		logs    []*Log
		total   int
		skipped = map[string]int{}
		seen    = map[[32]byte]string{}
		names   = map[string]bool{}
	)
	add := func(op *loglist3.Operator, desc, u string, key, id []byte, state *loglist3.LogStates, ti *loglist3.TemporalInterval, tiled bool) error {
		total++
		switch s := state.LogStatus(); s {
		case loglist3.UsableLogStatus, loglist3.QualifiedLogStatus:
		default:
			skipped[stateName(s)]++
			return nil
		}
		l := &Log{Name: desc, Operator: op.Name, URL: u, Key: bytes.Clone(key), Tiled: tiled}
		if l.Name == "" {
			l.Name = u
		}
		if ti != nil {
			l.TemporalStart, l.TemporalEnd = ti.StartInclusive, ti.EndExclusive
		}
		if _, err := l.check(); err != nil {
			return err
		}
		lid := l.ID()
		if len(id) > 0 && !bytes.Equal(id, lid[:]) {
			return fmt.Errorf("log %q: log_id %x is not the SHA-256 of its key (%x)", l.Name, id, lid)
		}
		if other, dup := seen[lid]; dup {
			return fmt.Errorf("log %q has the same key as log %q", l.Name, other)
		}
		if names[l.Name] {
			return fmt.Errorf("two logs are named %q", l.Name)
		}
		seen[lid], names[l.Name] = l.Name, true
		logs = append(logs, l)
		return nil
	}
	for _, op := range ll.Operators {
		if op == nil {
			continue
		}
		for _, lg := range op.Logs {
			if lg == nil {
				continue
			}
			if err := add(op, lg.Description, lg.URL, lg.Key, lg.LogID, lg.State, lg.TemporalInterval, false); err != nil {
				return nil, fmt.Errorf("ctsubmit: log list: %w", err)
			}
		}
		for _, lg := range op.TiledLogs {
			if lg == nil {
				continue
			}
			if err := add(op, lg.Description, lg.SubmissionURL, lg.Key, lg.LogID, lg.State, lg.TemporalInterval, true); err != nil {
				return nil, fmt.Errorf("ctsubmit: log list: %w", err)
			}
		}
	}
	if len(logs) == 0 {
		return nil, fmt.Errorf("%w (%d logs listed; by state: %v)", ErrNoUsableLog, total, skipped)
	}
	return logs, nil
}

func stateName(s loglist3.LogStatus) string {
	switch s {
	case loglist3.PendingLogStatus:
		return "pending"
	case loglist3.ReadOnlyLogStatus:
		return "readonly"
	case loglist3.RetiredLogStatus:
		return "retired"
	case loglist3.RejectedLogStatus:
		return "rejected"
	}
	return "no state"
}

// MarshalLogList writes logs as a v3 log list that [LoadLogList] reads
// back: one operator entry per distinct [Log.Operator], in order of first
// appearance; tiled logs under tiled_logs with URL as both submission and
// monitoring URL. Each log is in state usable since timestamp, or retired
// if [Log.Retired] is set. MMD is written as 86400 s (RFC 6962 logs) or
// 60 s (tiled logs). A temporal interval is written only when both of its
// ends are set; a log with one end set is refused, since the schema has
// no open interval.
//
// It exists for tests and demos that run their own logs: a real CA loads
// the list Chrome publishes.
func MarshalLogList(logs []*Log, timestamp time.Time) ([]byte, error) {
	ll := loglist3.LogList{Version: "1", LogListTimestamp: timestamp.UTC()}
	ops := map[string]*loglist3.Operator{}
	for i, l := range logs {
		if l == nil {
			return nil, fmt.Errorf("ctsubmit: logs[%d] is nil", i)
		}
		if _, err := l.check(); err != nil {
			return nil, fmt.Errorf("ctsubmit: logs[%d]: %w", i, err)
		}
		var ti *loglist3.TemporalInterval
		switch {
		case !l.TemporalStart.IsZero() && !l.TemporalEnd.IsZero():
			ti = &loglist3.TemporalInterval{StartInclusive: l.TemporalStart.UTC(), EndExclusive: l.TemporalEnd.UTC()}
		case !l.TemporalStart.IsZero() || !l.TemporalEnd.IsZero():
			return nil, fmt.Errorf("ctsubmit: log %q: a v3 log list cannot express a half-open temporal interval", l.Name)
		}
		state := &loglist3.LogStates{Usable: &loglist3.LogState{Timestamp: timestamp.UTC()}}
		if !l.Retired.IsZero() {
			state = &loglist3.LogStates{Retired: &loglist3.LogState{Timestamp: l.Retired.UTC()}}
		}
		op := ops[l.Operator]
		if op == nil {
			op = &loglist3.Operator{Name: l.Operator, Email: []string{}, Logs: []*loglist3.Log{}, TiledLogs: []*loglist3.TiledLog{}}
			ops[l.Operator] = op
			ll.Operators = append(ll.Operators, op)
		}
		id := l.ID()
		if l.Tiled {
			op.TiledLogs = append(op.TiledLogs, &loglist3.TiledLog{
				Description: l.Name, LogID: id[:], Key: l.Key, SubmissionURL: l.URL, MonitoringURL: l.URL,
				MMD: 60, State: state, TemporalInterval: ti,
			})
			continue
		}
		op.Logs = append(op.Logs, &loglist3.Log{
			Description: l.Name, LogID: id[:], Key: l.Key, URL: l.URL,
			MMD: 86400, State: state, TemporalInterval: ti,
		})
	}
	out, err := json.MarshalIndent(ll, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("ctsubmit: encoding log list: %w", err)
	}
	return append(out, '\n'), nil
}
