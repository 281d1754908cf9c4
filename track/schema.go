package track

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migration is one schema step. Its statements run in order inside one
// transaction that also records the version in schema_version, so a step is
// applied entirely or not at all. {{ID}} is replaced by the dialect's
// auto-increment integer primary key.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations are applied in order; never edit a released one, append a new
// one.
var migrations = []migration{
	{1, "initial schema", []string{
		`CREATE TABLE experiments (
			id {{ID}},
			name TEXT NOT NULL UNIQUE,
			created_ms BIGINT NOT NULL)`,
		`INSERT INTO experiments (id, name, created_ms) VALUES (0, 'Default', {{NOW}})`,
		`CREATE TABLE runs (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			experiment_id BIGINT NOT NULL REFERENCES experiments(id),
			status TEXT NOT NULL,
			start_ms BIGINT NOT NULL,
			end_ms BIGINT,
			artifact_dir TEXT NOT NULL,
			pid BIGINT NOT NULL,
			host TEXT NOT NULL,
			heartbeat_ms BIGINT NOT NULL)`,
		`CREATE INDEX runs_experiment ON runs (experiment_id, start_ms)`,
		`CREATE TABLE params (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			key TEXT NOT NULL,
			value TEXT NOT NULL,
			PRIMARY KEY (run_id, key))`,
		`CREATE TABLE tags (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			key TEXT NOT NULL,
			value TEXT NOT NULL,
			PRIMARY KEY (run_id, key))`,
		// special: 0 finite (value holds it), 1 NaN, 2 +Inf, 3 -Inf (value 0):
		// portable across SQLite (which turns NaN into NULL) and PostgreSQL.
		`CREATE TABLE metrics (
			id {{ID}},
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			key TEXT NOT NULL,
			value DOUBLE PRECISION NOT NULL,
			special SMALLINT NOT NULL,
			step BIGINT NOT NULL,
			ts_ms BIGINT NOT NULL)`,
		`CREATE INDEX metrics_run_key ON metrics (run_id, key, step)`,
		`CREATE TABLE latest_metrics (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			key TEXT NOT NULL,
			value DOUBLE PRECISION NOT NULL,
			special SMALLINT NOT NULL,
			step BIGINT NOT NULL,
			ts_ms BIGINT NOT NULL,
			PRIMARY KEY (run_id, key))`,
		`CREATE TABLE artifacts (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			path TEXT NOT NULL,
			size BIGINT NOT NULL,
			PRIMARY KEY (run_id, path))`,
	}},
	{2, "model registry", []string{
		`CREATE TABLE registered_models (
			name TEXT PRIMARY KEY,
			description TEXT NOT NULL DEFAULT '',
			created_ms BIGINT NOT NULL)`,
		`CREATE TABLE model_versions (
			name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE,
			version BIGINT NOT NULL,
			run_id TEXT REFERENCES runs(id),
			source TEXT NOT NULL,
			description TEXT NOT NULL DEFAULT '',
			created_ms BIGINT NOT NULL,
			PRIMARY KEY (name, version))`,
		`CREATE TABLE model_aliases (
			name TEXT NOT NULL,
			alias TEXT NOT NULL,
			version BIGINT NOT NULL,
			PRIMARY KEY (name, alias),
			FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON DELETE CASCADE)`,
	}},
	{3, "run status index", []string{
		`CREATE INDEX runs_status ON runs (status)`,
	}},
}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = migrations[len(migrations)-1].version

// migrate brings the database to SchemaVersion. Each pending migration runs
// in its own transaction; concurrent openers serialize on the write lock
// (SQLite BEGIN IMMEDIATE) or an advisory lock (PostgreSQL) and skip steps
// another process already applied.
func (s *sqlStore) migrate(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727370)`); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_ms BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("track: creating schema_version in %s: %w", s.URL(), err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	v, err := s.schemaVersion(ctx)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("track: store %s has schema version %d, newer than this program's %d: upgrade deepgo", s.URL(), v, SchemaVersion)
	}
	return nil
}

func (s *sqlStore) apply(ctx context.Context, m migration) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727370)`); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_version WHERE version = ?`), m.version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		id := "INTEGER PRIMARY KEY"
		if s.postgres {
			id = "BIGSERIAL PRIMARY KEY"
		}
		now := fmt.Sprint(time.Now().UnixMilli())
		for _, st := range m.stmts {
			st = strings.ReplaceAll(strings.ReplaceAll(st, "{{ID}}", id), "{{NOW}}", now)
			if _, err := tx.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("track: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)`),
			m.version, m.name, time.Now().UnixMilli())
		return err
	})
}

func (s *sqlStore) schemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("track: reading schema_version: %w", err)
	}
	return int(v.Int64), nil
}

// StoreSchemaVersion returns the schema version recorded in a store opened
// by Open (the number of migrations applied to it).
func StoreSchemaVersion(ctx context.Context, s Store) (int, error) {
	ss, ok := s.(*sqlStore)
	if !ok {
		return 0, fmt.Errorf("track.StoreSchemaVersion: %T is not a store made by track.Open", s)
	}
	return ss.schemaVersion(ctx)
}
