// Package pgtest gives tests and benchmarks a PostgreSQL schema of their
// own for [pgstore]: a fresh, uniquely named schema that is dropped when
// the test ends.
//
// The database is named by PRECERT_PG_DSN, or [DefaultDSN] (the local
// server with trust authentication, database "test"). Without a reachable
// server a test skips, saying so — or fails, under PRECERT_INTEGRATION=1
// (see package integration).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certpipe/precert/internal/integration"
	"github.com/certpipe/precert/ocspstate/pgstore"
)

// DefaultDSN is the database tests use when PRECERT_PG_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns PRECERT_PG_DSN, or DefaultDSN.
func DSN() string {
	if dsn := os.Getenv("PRECERT_PG_DSN"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Reachable returns nil if a connection to dsn succeeds within a few
// seconds.
func Reachable(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// Require returns the DSN, or skips tb (fails it under
// PRECERT_INTEGRATION=1) if the server cannot be reached.
func Require(tb testing.TB) string {
	tb.Helper()
	dsn := DSN()
	if err := Reachable(context.Background(), dsn); err != nil {
		integration.Missing(tb, fmt.Sprintf("PostgreSQL (%v)", err),
			"start it (pg_ctlcluster <version> main start) or point PRECERT_PG_DSN at a database where this role may create schemas")
	}
	return dsn
}

// Schema returns the DSN and the name of a schema nobody else uses, which
// is dropped, with everything in it, when tb ends. The schema itself is
// not created: pgstore.Open does that.
func Schema(tb testing.TB) (dsn, schema string) {
	tb.Helper()
	dsn = Require(tb)
	schema = NewSchemaName()
	tb.Cleanup(func() {
		if err := pgstore.DropSchema(context.Background(), dsn, schema); err != nil {
			tb.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

// NewSchemaName returns a fresh schema name, "precert_test_" and random
// hex.
func NewSchemaName() string {
	var b [6]byte
	rand.Read(b[:])
	return "precert_test_" + hex.EncodeToString(b[:])
}
