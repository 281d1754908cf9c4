package track_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track"
)

// backend opens fresh stores of one kind.
type backend struct {
	name string
	// newURL returns the URL of a new, empty store.
	newURL func(t *testing.T) string
	// raw opens the database behind url directly.
	raw func(t *testing.T, u string) *sql.DB
}

const envPostgres = "DEEPGO_TEST_POSTGRES"

var sqliteBackend = backend{
	name:   "sqlite",
	newURL: func(t *testing.T) string { return filepath.Join(t.TempDir(), "store.db") },
	raw: func(t *testing.T, u string) *sql.DB {
		db, err := sql.Open("sqlite", u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	},
}

// postgresBackend gives every store its own schema (search_path) in the
// database named by $DEEPGO_TEST_POSTGRES, dropped at the end of the test.
var postgresBackend = backend{
	name: "postgres",
	newURL: func(t *testing.T) string {
		dsn := os.Getenv(envPostgres)
		if dsn == "" {
			t.Skipf("PostgreSQL tests skipped: set %s to a DSN such as postgres://deepgo:deepgo@127.0.0.1:5432/deepgo_test "+
				"(Debian: apt-get install postgresql; pg_ctlcluster 15 main start; "+
				"su postgres -c \"psql -c \\\"CREATE ROLE deepgo LOGIN PASSWORD 'deepgo'\\\"\"; "+
				"su postgres -c \"psql -c 'CREATE DATABASE deepgo_test OWNER deepgo'\")", envPostgres)
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "t_" + hex.EncodeToString(b[:])
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatalf("creating schema in %s: %v", envPostgres, err)
		}
		t.Cleanup(func() {
			db, err := sql.Open("pgx", dsn)
			if err == nil {
				db.Exec("DROP SCHEMA " + schema + " CASCADE")
				db.Close()
			}
		})
		pu, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s is not a URL: %v", envPostgres, err)
		}
		q := pu.Query()
		q.Set("search_path", schema)
		pu.RawQuery = q.Encode()
		return pu.String()
	},
	raw: func(t *testing.T, u string) *sql.DB {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	},
}

var backends = []backend{sqliteBackend, postgresBackend}

func open(t *testing.T, u string) track.Store {
	t.Helper()
	s, err := track.OpenOptions(u, track.Options{ArtifactRoot: filepath.Join(t.TempDir(), "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEach runs f against a fresh store of every backend.
func forEach(t *testing.T, f func(t *testing.T, s track.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, open(t, b.newURL(t))) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err wraps target and mentions every part.
func wantErr(t *testing.T, err, target error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", target)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q does not wrap %v", err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

var ctx = context.Background()

func TestExperiments(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		d, err := s.Experiment(ctx, track.DefaultExperiment)
		must(t, err)
		if d.ID != "0" {
			t.Fatalf("default experiment ID %q, want 0", d.ID)
		}
		e, err := s.CreateExperiment(ctx, "mnist")
		must(t, err)
		_, err = s.CreateExperiment(ctx, "mnist")
		wantErr(t, err, track.ErrConflict, "mnist")
		byID, err := s.Experiment(ctx, e.ID)
		must(t, err)
		if byID.Name != "mnist" {
			t.Fatalf("experiment %s is %q", e.ID, byID.Name)
		}
		_, err = s.Experiment(ctx, "nope")
		wantErr(t, err, track.ErrNotFound, "nope")
		all, err := s.ListExperiments(ctx)
		must(t, err)
		if len(all) != 2 || all[0].Name != track.DefaultExperiment || all[1].Name != "mnist" {
			t.Fatalf("experiments %+v", all)
		}
		_, err = s.CreateExperiment(ctx, "bad\x07name")
		wantErr(t, err, track.ErrInvalid, "control character")
	})
}

func TestRunsLifecycleAndFilters(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		t0 := time.Now().Add(-time.Hour)
		a, err := s.CreateRun(ctx, track.NewRun{Experiment: "exp-a", Name: "alpha", Tags: map[string]string{"team": "x"}, StartTime: t0})
		must(t, err)
		if len(a.ID) != 32 || a.Status != track.StatusRunning || a.PID != os.Getpid() {
			t.Fatalf("new run %+v", a)
		}
		b, err := s.CreateRun(ctx, track.NewRun{Experiment: "exp-b", Name: "beta"})
		must(t, err)
		c, err := s.CreateRun(ctx, track.NewRun{Experiment: "exp-b"})
		must(t, err)
		if !strings.HasPrefix(c.Name, "run-") {
			t.Fatalf("generated name %q", c.Name)
		}
		must(t, s.EndRun(ctx, b.ID, track.StatusFinished, time.Time{}))
		wantErr(t, s.EndRun(ctx, b.ID, "DONE", time.Time{}), track.ErrInvalid, "DONE")
		wantErr(t, s.EndRun(ctx, "0000", track.StatusFailed, time.Time{}), track.ErrNotFound, "0000")

		got, err := s.GetRun(ctx, a.ID)
		must(t, err)
		if got.Name != "alpha" || got.Tags["team"] != "x" || !got.StartTime.Equal(t0.Truncate(time.Millisecond)) || got.Status != track.StatusRunning {
			t.Fatalf("GetRun %+v", got)
		}
		gb, err := s.GetRun(ctx, b.ID)
		must(t, err)
		if gb.Status != track.StatusFinished || gb.EndTime.IsZero() {
			t.Fatalf("ended run %+v", gb)
		}
		_, err = s.GetRun(ctx, "missing")
		wantErr(t, err, track.ErrNotFound, "missing")

		ids := func(rs []track.Run, err error) string {
			t.Helper()
			must(t, err)
			var n []string
			for _, r := range rs {
				n = append(n, r.Name)
			}
			return strings.Join(n, ",")
		}
		if got := ids(s.ListRuns(ctx, track.RunFilter{})); got != c.Name+",beta,alpha" && got != "beta,"+c.Name+",alpha" {
			t.Fatalf("all runs (newest first): %s", got)
		}
		if got := ids(s.ListRuns(ctx, track.RunFilter{Experiment: "exp-a"})); got != "alpha" {
			t.Fatalf("exp-a runs: %s", got)
		}
		if got := ids(s.ListRuns(ctx, track.RunFilter{ExperimentID: b.ExperimentID, Statuses: []track.Status{track.StatusFinished}})); got != "beta" {
			t.Fatalf("finished exp-b runs: %s", got)
		}
		if got := ids(s.ListRuns(ctx, track.RunFilter{NameContains: "lph"})); got != "alpha" {
			t.Fatalf("name filter: %s", got)
		}
		if rs, err := s.ListRuns(ctx, track.RunFilter{Limit: 1}); err != nil || len(rs) != 1 {
			t.Fatalf("limit 1: %d runs, %v", len(rs), err)
		}
		_, err = s.ListRuns(ctx, track.RunFilter{Statuses: []track.Status{"BOGUS"}})
		wantErr(t, err, track.ErrInvalid, "BOGUS")
	})
}

func TestParamsTagsWriteRules(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		r, err := s.CreateRun(ctx, track.NewRun{})
		must(t, err)
		must(t, s.LogParam(ctx, r.ID, "lr", "0.01"))
		must(t, s.LogParam(ctx, r.ID, "lr", "0.01")) // same value: fine
		err = s.LogParam(ctx, r.ID, "lr", "0.1")
		wantErr(t, err, track.ErrConflict, `"lr"`, `"0.01"`, `"0.1"`)
		must(t, s.SetTag(ctx, r.ID, "note", "one"))
		must(t, s.SetTag(ctx, r.ID, "note", "two"))
		// A batch is all or nothing: the conflicting param voids its metrics.
		err = s.LogBatch(ctx, r.ID, track.Batch{
			Params:  map[string]string{"lr": "0.5", "epochs": "3"},
			Metrics: []track.Metric{{Key: "loss", Value: 1, Step: 1}},
		})
		wantErr(t, err, track.ErrConflict, "lr")
		got, err := s.GetRun(ctx, r.ID)
		must(t, err)
		if got.Params["lr"] != "0.01" || got.Tags["note"] != "two" || len(got.Params) != 1 || len(got.Metrics) != 0 {
			t.Fatalf("after the failed batch: params %v tags %v metrics %v", got.Params, got.Tags, got.Metrics)
		}
		wantErr(t, s.LogParam(ctx, "nope", "a", "b"), track.ErrNotFound, "nope")
		wantErr(t, s.LogParam(ctx, r.ID, "", "b"), track.ErrInvalid, "empty")
		wantErr(t, s.LogParam(ctx, r.ID, strings.Repeat("k", 251), "b"), track.ErrInvalid, "250")
		wantErr(t, s.LogParam(ctx, r.ID, "k", strings.Repeat("v", 6001)), track.ErrInvalid, "6000")
		wantErr(t, s.SetTag(ctx, r.ID, "t", "nul\x00byte"), track.ErrInvalid, "NUL")
		wantErr(t, s.SetTag(ctx, r.ID, "tab\tkey", "v"), track.ErrInvalid, "control character")
	})
}

func TestMetricsHistoryAndSpecialValues(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		r, err := s.CreateRun(ctx, track.NewRun{})
		must(t, err)
		t0 := time.UnixMilli(1_700_000_000_000)
		vals := []float64{0.5, math.NaN(), math.Inf(1), math.Inf(-1), -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64}
		var batch []track.Metric
		for i, v := range vals {
			batch = append(batch, track.Metric{Key: "loss", Value: v, Step: int64(i), Time: t0.Add(time.Duration(i) * time.Second)})
		}
		// Logged out of order: history comes back sorted by step.
		must(t, s.LogBatch(ctx, r.ID, track.Batch{Metrics: batch[3:]}))
		must(t, s.LogBatch(ctx, r.ID, track.Batch{Metrics: batch[:3]}))
		must(t, s.LogMetric(ctx, r.ID, track.Metric{Key: "acc", Value: math.NaN(), Step: 9}))
		must(t, s.LogMetric(ctx, r.ID, track.Metric{Key: "acc", Value: 0.9, Step: 2}))
		h, err := s.MetricHistory(ctx, r.ID, "loss")
		must(t, err)
		if len(h) != 1 || len(h["loss"]) != len(vals) {
			t.Fatalf("history %v", h)
		}
		for i, m := range h["loss"] {
			same := m.Value == vals[i] || (math.IsNaN(m.Value) && math.IsNaN(vals[i]))
			if !same || m.Step != int64(i) || !m.Time.Equal(batch[i].Time) {
				t.Fatalf("point %d: %+v, want value %v step %d time %v", i, m, vals[i], i, batch[i].Time)
			}
		}
		all, err := s.MetricHistory(ctx, r.ID)
		must(t, err)
		if len(all) != 2 || len(all["acc"]) != 2 || all["acc"][0].Step != 2 {
			t.Fatalf("all keys: %v", all)
		}
		got, err := s.GetRun(ctx, r.ID)
		must(t, err)
		// Latest = largest step, whatever the logging order.
		if l := got.Metrics["loss"]; l.Step != 6 || l.Value != math.SmallestNonzeroFloat64 {
			t.Fatalf("latest loss %+v", l)
		}
		if l := got.Metrics["acc"]; l.Step != 9 || !math.IsNaN(l.Value) {
			t.Fatalf("latest acc %+v (want NaN at step 9)", l)
		}
		// NaN and ±Inf survive JSON too.
		js, err := json.Marshal(h["loss"][:4])
		must(t, err)
		if !strings.Contains(string(js), `"NaN"`) || !strings.Contains(string(js), `"-Infinity"`) {
			t.Fatalf("JSON %s", js)
		}
		var back []track.Metric
		must(t, json.Unmarshal(js, &back))
		if !math.IsNaN(back[1].Value) || !math.IsInf(back[2].Value, 1) || !math.IsInf(back[3].Value, -1) || back[0].Value != 0.5 {
			t.Fatalf("JSON round trip %+v", back)
		}

		err = s.LogMetric(ctx, r.ID, track.Metric{Key: "val\nloss", Value: 1})
		wantErr(t, err, track.ErrInvalid, "metric key", "control character")
		err = s.LogMetric(ctx, r.ID, track.Metric{Key: "bell\x07", Value: 1})
		wantErr(t, err, track.ErrInvalid, "U+0007")
		_, err = s.MetricHistory(ctx, "nope")
		wantErr(t, err, track.ErrNotFound, "nope")
	})
}

func TestArtifacts(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		r, err := s.CreateRun(ctx, track.NewRun{})
		must(t, err)
		src := t.TempDir()
		must(t, os.WriteFile(filepath.Join(src, "model.json"), []byte(`{"a":1}`), 0o644))
		must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(src, "sub", "w.bin"), []byte("12345"), 0o644))
		arts, err := s.LogArtifact(ctx, r.ID, src, "model")
		must(t, err)
		if len(arts) != 2 || arts[0].Path != "model/model.json" || arts[1].Path != "model/sub/w.bin" || arts[1].Size != 5 {
			t.Fatalf("artifacts %+v", arts)
		}
		_, err = s.LogArtifact(ctx, r.ID, filepath.Join(src, "model.json"), "")
		must(t, err)
		list, err := s.ListArtifacts(ctx, r.ID)
		must(t, err)
		if len(list) != 3 || list[0].Path != "model.json" {
			t.Fatalf("listed %+v", list)
		}
		b, err := os.ReadFile(filepath.Join(r.ArtifactDir, "model", "sub", "w.bin"))
		if err != nil || string(b) != "12345" {
			t.Fatalf("copied artifact: %q, %v", b, err)
		}
		_, err = s.LogArtifact(ctx, r.ID, src, "../escape")
		wantErr(t, err, track.ErrInvalid, "../escape")
		_, err = s.LogArtifact(ctx, r.ID, filepath.Join(src, "missing"), "x")
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("missing source: %v", err)
		}
		must(t, s.DeleteRun(ctx, r.ID))
		if _, err := os.Stat(r.ArtifactDir); !os.IsNotExist(err) {
			t.Fatalf("artifact dir after DeleteRun: %v", err)
		}
		_, err = s.GetRun(ctx, r.ID)
		wantErr(t, err, track.ErrNotFound)
		wantErr(t, s.DeleteRun(ctx, r.ID), track.ErrNotFound)
	})
}

func TestRegistry(t *testing.T) {
	forEach(t, func(t *testing.T, s track.Store) {
		r, err := s.CreateRun(ctx, track.NewRun{Name: "trainer"})
		must(t, err)
		v1, err := s.RegisterModel(ctx, "digits", r.ID, "/models/a")
		must(t, err)
		v2, err := s.RegisterModel(ctx, "digits", "", "/models/b")
		must(t, err)
		o1, err := s.RegisterModel(ctx, "other", "", "/models/c")
		must(t, err)
		if v1.Version != 1 || v2.Version != 2 || o1.Version != 1 {
			t.Fatalf("versions %d %d %d, want 1 2 1", v1.Version, v2.Version, o1.Version)
		}
		_, err = s.RegisterModel(ctx, "digits", "no-such-run", "/x")
		wantErr(t, err, track.ErrNotFound, "no-such-run")

		must(t, s.SetAlias(ctx, "digits", "production", 1))
		must(t, s.SetAlias(ctx, "digits", "staging", 2))
		mv, err := s.ResolveAlias(ctx, "digits", "production")
		must(t, err)
		if mv.Version != 1 || mv.RunID != r.ID || mv.Source != "/models/a" {
			t.Fatalf("production -> %+v", mv)
		}
		must(t, s.SetAlias(ctx, "digits", "production", 2)) // moves
		m, err := s.GetModel(ctx, "digits")
		must(t, err)
		if m.Aliases["production"] != 2 || m.Aliases["staging"] != 2 || len(m.Versions) != 2 ||
			len(m.Versions[0].Aliases) != 0 || strings.Join(m.Versions[1].Aliases, ",") != "production,staging" {
			t.Fatalf("model %+v", m)
		}
		wantErr(t, s.SetAlias(ctx, "digits", "production", 7), track.ErrNotFound, "version 7")
		wantErr(t, s.SetAlias(ctx, "digits", "v2", 1), track.ErrInvalid, "reserved")
		wantErr(t, s.SetAlias(ctx, "digits", "bad alias", 1), track.ErrInvalid, "bad alias")
		must(t, s.DeleteAlias(ctx, "digits", "staging"))
		wantErr(t, s.DeleteAlias(ctx, "digits", "staging"), track.ErrNotFound)
		_, err = s.ResolveAlias(ctx, "digits", "staging")
		wantErr(t, err, track.ErrNotFound, "staging")
		_, err = s.GetModelVersion(ctx, "digits", 3)
		wantErr(t, err, track.ErrNotFound)
		_, err = s.GetModel(ctx, "nope")
		wantErr(t, err, track.ErrNotFound, "nope")
		all, err := s.ListModels(ctx)
		must(t, err)
		if len(all) != 2 || all[0].Name != "digits" || all[1].Name != "other" || len(all[1].Versions) != 1 {
			t.Fatalf("ListModels %+v", all)
		}
		// The run that made version 1 cannot be deleted under it.
		wantErr(t, s.DeleteRun(ctx, r.ID), track.ErrConflict, "digits", "version 1")
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.newURL(t)
			s := open(t, u)
			r, err := s.CreateRun(ctx, track.NewRun{Name: "kept"})
			must(t, err)
			must(t, s.LogParam(ctx, r.ID, "p", "1"))
			must(t, s.Close())
			for range 2 {
				s2 := open(t, u)
				v, err := track.StoreSchemaVersion(ctx, s2)
				must(t, err)
				if v != track.SchemaVersion {
					t.Fatalf("schema version %d, want %d", v, track.SchemaVersion)
				}
				got, err := s2.GetRun(ctx, r.ID)
				must(t, err)
				if got.Params["p"] != "1" {
					t.Fatalf("run after reopen: %+v", got)
				}
				must(t, s2.Close())
			}
			var n, distinct int
			must(t, b.raw(t, u).QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version`).Scan(&n, &distinct))
			if n != track.SchemaVersion || distinct != n {
				t.Fatalf("schema_version has %d rows (%d distinct), want %d", n, distinct, track.SchemaVersion)
			}
		})
	}
}

func TestDeadRunsAreKilled(t *testing.T) {
	// A process that has exited, for a PID that is surely dead.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	must(t, cmd.Run())
	deadPID := cmd.Process.Pid
	host, _ := os.Hostname()
	forEach(t, func(t *testing.T, s track.Store) {
		mine, err := s.CreateRun(ctx, track.NewRun{Name: "mine"})
		must(t, err)
		gone, err := s.CreateRun(ctx, track.NewRun{Name: "gone", PID: deadPID, Host: host})
		must(t, err)
		old := time.Now().Add(-3 * time.Hour)
		stale, err := s.CreateRun(ctx, track.NewRun{Name: "stale", PID: 1, Host: "another-host", StartTime: old})
		must(t, err)
		fresh, err := s.CreateRun(ctx, track.NewRun{Name: "fresh", PID: 1, Host: "another-host"})
		must(t, err)
		runs, err := s.ListRuns(ctx, track.RunFilter{})
		must(t, err)
		want := map[string]track.Status{mine.ID: track.StatusRunning, gone.ID: track.StatusKilled, stale.ID: track.StatusKilled, fresh.ID: track.StatusRunning}
		for _, r := range runs {
			if r.Status != want[r.ID] {
				t.Fatalf("run %s: %s, want %s", r.Name, r.Status, want[r.ID])
			}
		}
		st, err := s.GetRun(ctx, stale.ID)
		must(t, err)
		if !st.EndTime.Equal(old.Truncate(time.Millisecond)) {
			t.Fatalf("stale run ended at %v, want its last heartbeat %v", st.EndTime, old)
		}
		ids, err := s.ReapDead(ctx)
		must(t, err)
		if len(ids) != 0 {
			t.Fatalf("second reap killed %v", ids)
		}
	})
}

func TestUnreachablePostgres(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close() // now nothing listens there
	_, err = track.Open("postgres://deepgo:s3cret@" + addr + "/deepgo")
	wantErr(t, err, nil, "cannot connect to PostgreSQL", addr)
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestOpenBadLocation(t *testing.T) {
	_, err := track.Open("mysql://localhost/x")
	wantErr(t, err, nil, "mysql://localhost/x", "not a SQLite file path")
	f := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(f, []byte("x"), 0o644))
	_, err = track.Open(filepath.Join(f, "store.db")) // under a regular file
	wantErr(t, err, nil, "store")
	_, err = track.OpenOptions(filepath.Join(t.TempDir(), "s.db"), track.Options{Synchronous: "OFF"})
	wantErr(t, err, nil, "OFF")
}

func TestDefaultURL(t *testing.T) {
	t.Setenv(track.EnvStore, "")
	t.Setenv("XDG_DATA_HOME", "/data/home")
	if got := track.DefaultURL(); got != "/data/home/deepgo/store.db" {
		t.Fatalf("DefaultURL with XDG_DATA_HOME: %s", got)
	}
	t.Setenv(track.EnvStore, "postgres://h/db")
	if got := track.DefaultURL(); got != "postgres://h/db" {
		t.Fatalf("DefaultURL with %s: %s", track.EnvStore, got)
	}
}
