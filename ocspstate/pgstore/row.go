package pgstore

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/certpipe/precert/ocspstate"
)

// hotColumns are what Due reads: every field of a Record except the
// immutable blobs. fullColumns add them.
const (
	hotColumns = "issuer, serial, version, state, ocsp_enabled, ocsp_status, revoked_at, reason, response, " +
		"this_update, next_update, not_before, not_after, lease_owner, lease_expires, created, updated, due"
	fullColumns = hotColumns + ", intent, precert, scts, final"
)

// statements are the SQL texts, with the schema's quoted name in them.
// pgx prepares each once per connection.
type statements struct {
	reserve, get, getForUpdate, lockMany string
	response                             string
	updateHead, updateTail, countMove    string
	due, dueClaim, releaseClaims         string
	counts, scanFirst, scanNext          string
}

func newStatements(schema string) statements {
	records, counts := schema+".records", schema+".counts"
	return statements{
		// $1..$19 the record, $20 the counter shard.
		reserve: `WITH i AS (
			INSERT INTO ` + records + ` (issuer, serial, version, state, ocsp_enabled, ocsp_status, revoked_at, reason, response,
				this_update, next_update, not_before, not_after, lease_owner, lease_expires, created, updated, due, intent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
			ON CONFLICT (issuer, serial) DO NOTHING
			RETURNING 1
		), c AS (
			UPDATE ` + counts + ` SET n = n + 1 WHERE state = $4 AND shard = $20 AND EXISTS (SELECT FROM i)
		)
		SELECT count(*) FROM i`,
		get:          `SELECT ` + fullColumns + ` FROM ` + records + ` WHERE issuer = $1 AND serial = $2`,
		getForUpdate: `SELECT ` + fullColumns + ` FROM ` + records + ` WHERE issuer = $1 AND serial = $2 FOR UPDATE`,
		// $1 issuers, $2 serials, pairwise: locked in key order.
		lockMany: `SELECT ` + hotColumns + ` FROM ` + records + `
			WHERE (issuer, serial) IN (SELECT * FROM unnest($1::bytea[], $2::bytea[]))
			ORDER BY issuer, serial FOR UPDATE`,
		response: `SELECT response FROM ` + records + ` WHERE issuer = $1 AND serial = $2`,
		// $1 issuer, $2 serial, $3 expected version, $4.. the hot fields;
		// put appends the immutable columns being set.
		updateHead: `UPDATE ` + records + ` SET version = $4, state = $5, ocsp_enabled = $6, ocsp_status = $7, revoked_at = $8,
			reason = $9, response = $10, this_update = $11, next_update = $12, lease_owner = $13, lease_expires = $14,
			updated = $15, due = $16, claim_owner = NULL, claim_expires = NULL`,
		updateTail: ` WHERE issuer = $1 AND serial = $2 AND version = $3`,
		// Moves one count from the old state to the new, only if the
		// record was written. States only ever move to higher numbers, so
		// counter rows are locked in one order by everyone.
		countMove: `UPDATE ` + counts + ` SET n = n + d.delta
			FROM (VALUES ($%[1]d::smallint, -1), ($%[2]d::smallint, 1)) AS d (state, delta)
			WHERE ` + counts + `.state = d.state AND ` + counts + `.shard = $%[3]d AND EXISTS (SELECT FROM u)`,
		due: `SELECT ` + hotColumns + ` FROM ` + records + ` WHERE due <= $1 ORDER BY due LIMIT $2`,
		// $1 now, $2 this instance, $3 the store's clock, $4 limit, $5
		// claim expiry.
		dueClaim: `WITH c AS (
			SELECT issuer, serial FROM ` + records + `
			WHERE due <= $1 AND (claim_owner IS NULL OR claim_owner = $2 OR claim_expires <= $3)
			ORDER BY due
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		)
		UPDATE ` + records + ` AS r SET claim_owner = $2, claim_expires = $5
		FROM c WHERE r.issuer = c.issuer AND r.serial = c.serial
		RETURNING ` + prefixed("r.", hotColumns),
		releaseClaims: `UPDATE ` + records + ` SET claim_owner = NULL, claim_expires = NULL WHERE due <= $2 AND claim_owner = $1`,
		counts:        `SELECT state, sum(n)::bigint FROM ` + counts + ` GROUP BY state ORDER BY state`,
		scanFirst:     `SELECT ` + fullColumns + ` FROM ` + records + ` ORDER BY issuer, serial LIMIT $1`,
		scanNext:      `SELECT ` + fullColumns + ` FROM ` + records + ` WHERE (issuer, serial) > ($1, $2) ORDER BY issuer, serial LIMIT $3`,
	}
}

func prefixed(p, columns string) string {
	return p + strings.ReplaceAll(columns, ", ", ", "+p)
}

// scanRecord decodes one row of hotColumns (or fullColumns, if full).
// Rows are trusted but verified: anything no store write produces is
// ErrCorrupt, never a panic and never a guess.
func scanRecord(row pgx.Row, full bool) (*ocspstate.Record, error) {
	var (
		issuer, serial, response, intent, precert, final []byte
		scts                                             [][]byte
		version                                          int64
		state, status, reason                            int16
		enabled                                          bool
		owner                                            string
		revokedAt, thisUpdate, nextUpdate, notBefore     pgtype.Timestamptz
		notAfter, leaseExpires, created, updated, due    pgtype.Timestamptz
	)
	dest := []any{&issuer, &serial, &version, &state, &enabled, &status, &revokedAt, &reason, &response,
		&thisUpdate, &nextUpdate, &notBefore, &notAfter, &owner, &leaseExpires, &created, &updated, &due}
	if full {
		dest = append(dest, &intent, &precert, &scts, &final)
	}
	if err := row.Scan(dest...); err != nil {
		var se pgx.ScanArgError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: %v", ocspstate.ErrCorrupt, err)
		}
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: row %x/%x: %s", ocspstate.ErrCorrupt, issuer, serial, fmt.Sprintf(format, args...))
	}
	r := &ocspstate.Record{}
	if len(issuer) != len(r.Issuer) {
		return nil, bad("issuer of %d bytes", len(issuer))
	}
	copy(r.Issuer[:], issuer)
	if len(serial) == 0 || len(serial) > ocspstate.MaxSerialOctets || serial[0] == 0 {
		return nil, bad("serial is not a minimal positive magnitude")
	}
	r.Serial = new(big.Int).SetBytes(serial)
	if version <= 0 {
		return nil, bad("version %d", version)
	}
	r.Version = uint64(version)
	r.State = ocspstate.State(state)
	if state < 0 || !r.State.Valid() {
		return nil, bad("state %d", state)
	}
	if status < 0 || status > int16(ocspstate.Revoked) {
		return nil, bad("OCSP status %d", status)
	}
	if reason < 0 {
		return nil, bad("reason %d", reason)
	}
	r.OCSP = ocspstate.OCSP{Enabled: enabled, Status: ocspstate.Status(status), Reason: int(reason), ResponseDER: nilIfEmpty(response)}
	r.Lease.Owner = owner
	var err error
	for _, f := range []struct {
		dst      *time.Time
		src      pgtype.Timestamptz
		name     string
		required bool
	}{
		{&r.OCSP.RevokedAt, revokedAt, "revoked_at", false},
		{&r.OCSP.ThisUpdate, thisUpdate, "this_update", false},
		{&r.OCSP.NextUpdate, nextUpdate, "next_update", false},
		{&r.NotBefore, notBefore, "not_before", true},
		{&r.NotAfter, notAfter, "not_after", true},
		{&r.Lease.Expires, leaseExpires, "lease_expires", false},
		{&r.Created, created, "created", true},
		{&r.Updated, updated, "updated", true},
		{&r.Due, due, "due", false},
	} {
		switch {
		case !f.src.Valid && f.required:
			err = bad("%s is null", f.name)
		case f.src.Valid && f.src.InfinityModifier != pgtype.Finite:
			err = bad("%s is infinite", f.name)
		case f.src.Valid:
			*f.dst = f.src.Time.UTC()
		}
		if err != nil {
			return nil, err
		}
	}
	if !full {
		return r, nil
	}
	if len(intent) == 0 {
		return nil, bad("no intent")
	}
	r.IntentDER, r.PrecertDER, r.FinalDER = intent, nilIfEmpty(precert), nilIfEmpty(final)
	if len(scts) > 0 {
		for i, sct := range scts {
			if len(sct) == 0 {
				return nil, bad("SCT %d is empty", i)
			}
		}
		r.SCTs = scts
	}
	return r, nil
}

// norm gives t the form it has once stored: PostgreSQL keeps
// microseconds, in UTC, with no monotonic clock reading.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// normalize gives every time of r its stored form, and every empty byte
// field the nil it reads back as.
func normalize(r *ocspstate.Record) {
	for _, t := range []*time.Time{&r.NotBefore, &r.NotAfter, &r.OCSP.RevokedAt, &r.OCSP.ThisUpdate, &r.OCSP.NextUpdate,
		&r.Lease.Expires, &r.Created, &r.Updated, &r.Due} {
		*t = norm(*t)
	}
	r.OCSP.ResponseDER = nilIfEmpty(r.OCSP.ResponseDER)
	r.PrecertDER = nilIfEmpty(r.PrecertDER)
	r.FinalDER = nilIfEmpty(r.FinalDER)
	if len(r.SCTs) == 0 {
		r.SCTs = nil
	}
}

// ts is t as a query argument: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
