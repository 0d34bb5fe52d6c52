package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the table layout this build writes:
// the number of the newest embedded migration. Open refuses a schema whose
// version is newer.
const SchemaVersion = 1

//go:embed migrations/*.sql
var migrationFiles embed.FS

// A migration is one embedded file, migrations/NNNN_name.sql, applied in
// one transaction together with its row in schema_migrations.
type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, rest, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: embedded migration %s is not named NNNN_name.sql", base)
		}
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: rest, sql: string(text)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("pgstore: embedded migrations skip from %d to %d", i, m.version)
		}
	}
	if len(out) != SchemaVersion {
		return nil, fmt.Errorf("pgstore: %d embedded migrations, but SchemaVersion is %d", len(out), SchemaVersion)
	}
	return out, nil
}

// lockKey is the pg_advisory_xact_lock key that serialises migrations of
// one schema across every process opening it.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("precert/pgstore schema " + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to SchemaVersion, creating it if needed,
// under a transaction-scoped advisory lock so that processes opening the
// store at once apply each migration exactly once. DDL is transactional in
// PostgreSQL: a migration that fails leaves nothing behind.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: starting the schema check: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.schema)); err != nil {
		return fmt.Errorf("pgstore: taking the migration lock for schema %s: %w", s.schema, err)
	}
	q := pgx.Identifier{s.schema}.Sanitize()
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", s.schema).Scan(&exists); err != nil {
		return fmt.Errorf("pgstore: looking for schema %s: %w", s.schema, err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+q); err != nil {
			return fmt.Errorf("pgstore: creating schema %s: %w (grant CREATE on the database, or create the schema for this role)", s.schema, err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
		version integer PRIMARY KEY,
		name    text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("pgstore: creating %s.schema_migrations: %w", s.schema, err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+q+".schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("pgstore: reading the schema version of %s: %w", s.schema, err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("%w: schema %s is at version %d, this build knows %d: run a newer precert, or open another schema", ErrSchemaTooNew, s.schema, current, SchemaVersion)
	}
	if current == 0 {
		var tables int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('records', 'counts')", s.schema).Scan(&tables); err != nil {
			return fmt.Errorf("pgstore: inspecting schema %s: %w", s.schema, err)
		}
		if tables > 0 {
			return fmt.Errorf("pgstore: schema %s has precert tables but no recorded version: not made by this package, or damaged; open another schema", s.schema)
		}
	}
	for _, m := range all[current:] {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", q)); err != nil {
			return fmt.Errorf("pgstore: applying migration %d (%s) to schema %s: %w", m.version, m.name, s.schema, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+q+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return fmt.Errorf("pgstore: recording migration %d in schema %s: %w", m.version, s.schema, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: committing the schema of %s: %w", s.schema, err)
	}
	return nil
}

// ErrSchemaTooNew: the schema was migrated by a newer build of this
// package. Open refuses it rather than write rows the newer build may not
// expect.
var ErrSchemaTooNew = errors.New("pgstore: schema is newer than this build")

// DropSchema drops schema and everything in it, if it exists: every
// record in it is gone. It is for throwaway schemas (tests, benchmarks);
// a CA's own schema is never dropped by this package.
func DropSchema(ctx context.Context, dsn, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pgstore: dropping schema %s: %w", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("pgstore: dropping schema %s: %w", schema, err)
	}
	return nil
}
