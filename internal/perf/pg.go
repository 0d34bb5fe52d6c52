package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/certpipe/precert/ocspstate/pgstore"
)

// PostgresSchemaName returns a fresh schema name for one measurement,
// "precert_bench_" and random hex.
func PostgresSchemaName() string {
	var b [6]byte
	rand.Read(b[:])
	return "precert_bench_" + hex.EncodeToString(b[:])
}

// DropPostgresSchema drops schema and everything in it, if it exists.
func DropPostgresSchema(dsn, schema string) error {
	return pgstore.DropSchema(context.Background(), dsn, schema)
}
