package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}
