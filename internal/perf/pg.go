package perf

import (
	"crypto/rand"
	"encoding/hex"
)

// PostgresSchemaName returns a fresh schema name for one measurement,
// "precert_bench_" and random hex.
func PostgresSchemaName() string {
	var b [6]byte
	rand.Read(b[:])
	return "precert_bench_" + hex.EncodeToString(b[:])
}
