package recovery_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

// corruptOnDisk edits the stored bytes of one record (its hot part, which
// holds the OCSP response) in a closed bbolt store, as a damaged disk would,
// bypassing every rule of the store. fn may change bytes but not lengths.
func corruptOnDisk(t *testing.T, path string, id ocspstate.IssuerID, serial *big.Int, fn func(raw []byte, r *ocspstate.Record)) {
	t.Helper()
	s, err := ocspstate.Open(path, ocspstate.Options{ReadOnly: true})
	require.NoError(t, err)
	r, err := s.Get(context.Background(), id, serial)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	key := []byte(ocspstate.NewKey(id, serial))
	editOnDisk(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		v := append([]byte(nil), b.Get(key)...)
		require.NotEmpty(t, v)
		fn(v, r)
		return b.Put(key, v)
	})
}

// editOnDisk runs fn in a write transaction on the closed bbolt store at
// path, as a damaged disk would change it, bypassing every rule of the
// store.
func editOnDisk(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(fn))
}

// flipSignatureByte flips a byte near the end of resp (its signature)
// wherever resp appears in raw.
func flipSignatureByte(t *testing.T, raw, resp []byte) {
	t.Helper()
	i := bytes.Index(raw, resp)
	require.GreaterOrEqual(t, i, 0)
	raw[i+len(resp)-3] ^= 0x01
}

// scanTampered damages what Scan returns: the auditor's only view of the
// store.
type scanTampered struct {
	ocspstate.Store
	damage map[string]func(*ocspstate.Record)
}

func (s *scanTampered) Scan(ctx context.Context, fn func(*ocspstate.Record) error) error {
	return s.Store.Scan(ctx, func(r *ocspstate.Record) error {
		if f := s.damage[r.Serial.String()]; f != nil {
			f(r)
		}
		return fn(r)
	})
}

func TestAuditCatchesCorruption(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	var issued []*issuance.Result
	for i := 0; i < 3; i++ {
		res, err := p.Issue(e.Ctx, e.Request())
		require.NoError(t, err)
		issued = append(issued, res)
	}
	other := e.Record(issued[1].Serial)
	oldResp := e.Record(issued[0].Serial).OCSP // signed now; stale in 5 days
	e.SetModes(ctlogtest.Reject)
	_, err := p.Issue(e.Ctx, e.Request())
	require.ErrorIs(t, err, issuance.ErrCTFailed)
	require.Empty(t, audit(t, e), "a healthy store audits clean")

	stale := func() *ocspstate.OCSP {
		e.Clock.Advance(-5 * 24 * time.Hour)
		defer e.Clock.Advance(5 * 24 * time.Hour)
		res, err := e.Signer.Sign(issued[0].Serial, ocspstate.Good, time.Time{}, 0)
		require.NoError(t, err)
		o := oldResp
		o.ResponseDER, o.ThisUpdate, o.NextUpdate = res.DER, res.ThisUpdate, res.NextUpdate
		return &o
	}()

	for _, tc := range []struct {
		name   string
		damage func(*ocspstate.Record)
		kind   string
	}{
		{"precert without a response", func(r *ocspstate.Record) { r.OCSP.ResponseDER = nil }, recovery.KindNoResponse},
		{"response for another serial", func(r *ocspstate.Record) { r.OCSP.ResponseDER = other.OCSP.ResponseDER }, recovery.KindResponseSerial},
		{"stale response", func(r *ocspstate.Record) { r.OCSP = *stale }, recovery.KindResponseStale},
		{"truncated 1-byte response", func(r *ocspstate.Record) { r.OCSP.ResponseDER = r.OCSP.ResponseDER[:1] }, recovery.KindResponseInvalid},
		{"5-byte unauthorized stored", func(r *ocspstate.Record) { r.OCSP.ResponseDER = []byte{0x30, 0x03, 0x0a, 0x01, 0x06} }, recovery.KindResponseInvalid},
		{"final that does not correspond", func(r *ocspstate.Record) { r.FinalDER = other.FinalDER }, recovery.KindFinalMismatch},
		{"SCTs differ from the record's", func(r *ocspstate.Record) { r.SCTs = other.SCTs[:1] }, recovery.KindSCT},
		{"OCSP disabled", func(r *ocspstate.Record) { r.OCSP.Enabled = false }, recovery.KindOCSPDisabled},
		{"revoked in the record, good on the wire", func(r *ocspstate.Record) {
			r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, e.Clock.Now(), 1
		}, recovery.KindResponseStatus},
		{"intent differs from the precert", func(r *ocspstate.Record) { r.IntentDER = other.IntentDER }, recovery.KindIntent},
		{"precert of another serial", func(r *ocspstate.Record) { r.PrecertDER = other.PrecertDER }, recovery.KindPrecert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := issued[0].Serial
			s := &scanTampered{Store: e.Store, damage: map[string]func(*ocspstate.Record){target.String(): tc.damage}}
			a := &recovery.Auditor{Issuers: []*x509.Certificate{e.CA.Intermediate}, Logs: e.CTLogs()}
			vs, err := a.Audit(e.Ctx, s, e.Clock.Now())
			require.NoError(t, err)
			require.NotEmpty(t, vs)
			found := false
			for _, v := range vs {
				if v.Kind != recovery.KindDuplicateSerial { // names whichever record was scanned second
					require.Equal(t, 0, v.Serial.Cmp(target), "only the damaged record is reported: %v", v)
				}
				found = found || v.Kind == tc.kind
			}
			require.True(t, found, "want a %s violation, got %v", tc.kind, vs)
		})
	}

	t.Run("duplicate serial", func(t *testing.T) {
		s := &scanTampered{Store: e.Store, damage: map[string]func(*ocspstate.Record){
			issued[2].Serial.String(): func(r *ocspstate.Record) { r.PrecertDER = other.PrecertDER },
		}}
		vs, err := recovery.Audit(e.Ctx, s, []*x509.Certificate{e.CA.Intermediate}, e.Clock.Now())
		require.NoError(t, err)
		kinds := map[string]bool{}
		for _, v := range vs {
			kinds[v.Kind] = true
		}
		require.True(t, kinds[recovery.KindDuplicateSerial], "%v", vs)
	})

	t.Run("signature flipped on disk", func(t *testing.T) {
		require.NoError(t, e.Store.Close())
		corruptOnDisk(t, e.Path, e.IssuerID(), issued[2].Serial, func(raw []byte, r *ocspstate.Record) {
			flipSignatureByte(t, raw, r.OCSP.ResponseDER)
		})
		e.Store = e.OpenStore()
		vs := audit(t, e)
		require.Len(t, vs, 1)
		require.Equal(t, recovery.KindResponseInvalid, vs[0].Kind)
		require.Equal(t, 0, vs[0].Serial.Cmp(issued[2].Serial))
	})
}

func TestAuditUnknownIssuer(t *testing.T) {
	e := pipetest.New(t, pipetest.Options{})
	p := e.Pipeline(func(c *issuance.Config) { c.DisableLint = true })
	_, err := p.Issue(e.Ctx, e.Request())
	require.NoError(t, err)
	vs, err := recovery.Audit(e.Ctx, e.Store, []*x509.Certificate{e.CA.Root}, e.Clock.Now())
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.Equal(t, recovery.KindUnknownIssuer, vs[0].Kind)
}
