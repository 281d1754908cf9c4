package track

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// StaleAfter is how old a RUNNING run's heartbeat may get before the run is
// considered dead whatever its PID says (the Logger beats every few
// seconds).
var StaleAfter = 2 * time.Minute

// sqlStore is the Store on database/sql, for SQLite and PostgreSQL. Queries
// are written with '?' placeholders and rewritten for PostgreSQL by q.
type sqlStore struct {
	db           *sql.DB
	postgres     bool
	url          string
	artifactRoot string
	host         string
	pid          int
}

// q rewrites '?' placeholders as $1, $2… for PostgreSQL.
func (s *sqlStore) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// tx runs f in a transaction, committing if it returns nil.
func (s *sqlStore) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *sqlStore) URL() string { return s.url }

func (s *sqlStore) Close() error { return s.db.Close() }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }

// encode splits a float into the stored (value, special) pair.
func encode(v float64) (float64, int) {
	switch {
	case math.IsNaN(v):
		return 0, 1
	case math.IsInf(v, 1):
		return 0, 2
	case math.IsInf(v, -1):
		return 0, 3
	}
	return v, 0
}

func decode(v float64, special int) float64 {
	switch special {
	case 1:
		return math.NaN()
	case 2:
		return math.Inf(1)
	case 3:
		return math.Inf(-1)
	}
	return v
}

func newRunID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wrapDB adds the store and operation to a database error.
func (s *sqlStore) wrapDB(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("track.%s (%s): %w", op, s.url, err)
}

// ---- experiments ----

func (s *sqlStore) CreateExperiment(ctx context.Context, name string) (Experiment, error) {
	if err := checkName("experiment name", name); err != nil {
		return Experiment{}, err
	}
	now := time.Now()
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM experiments WHERE name = ?`), name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("track: experiment %q already exists: %w", name, ErrConflict)
		}
		return tx.QueryRowContext(ctx, s.q(`INSERT INTO experiments (name, created_ms) VALUES (?, ?) RETURNING id`), name, ms(now)).Scan(&id)
	})
	if err != nil {
		return Experiment{}, s.wrapDB("CreateExperiment", err)
	}
	return Experiment{ID: strconv.FormatInt(id, 10), Name: name, CreatedAt: fromMS(ms(now))}, nil
}

func (s *sqlStore) Experiment(ctx context.Context, idOrName string) (Experiment, error) {
	var (
		id  int64
		e   Experiment
		cms int64
	)
	row := s.db.QueryRowContext(ctx, s.q(`SELECT id, name, created_ms FROM experiments WHERE name = ?`), idOrName)
	if n, err := strconv.ParseInt(idOrName, 10, 64); err == nil {
		row = s.db.QueryRowContext(ctx, s.q(`SELECT id, name, created_ms FROM experiments WHERE id = ? OR name = ? ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END`), n, idOrName, n)
	}
	err := row.Scan(&id, &e.Name, &cms)
	if errors.Is(err, sql.ErrNoRows) {
		return Experiment{}, fmt.Errorf("track: experiment %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return Experiment{}, s.wrapDB("Experiment", err)
	}
	e.ID, e.CreatedAt = strconv.FormatInt(id, 10), fromMS(cms)
	return e, nil
}

func (s *sqlStore) ListExperiments(ctx context.Context) ([]Experiment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_ms FROM experiments ORDER BY id`)
	if err != nil {
		return nil, s.wrapDB("ListExperiments", err)
	}
	defer rows.Close()
	var out []Experiment
	for rows.Next() {
		var (
			id, cms int64
			e       Experiment
		)
		if err := rows.Scan(&id, &e.Name, &cms); err != nil {
			return nil, s.wrapDB("ListExperiments", err)
		}
		e.ID, e.CreatedAt = strconv.FormatInt(id, 10), fromMS(cms)
		out = append(out, e)
	}
	return out, s.wrapDB("ListExperiments", rows.Err())
}

// ---- runs ----

func (s *sqlStore) CreateRun(ctx context.Context, nr NewRun) (Run, error) {
	exp := nr.Experiment
	if exp == "" {
		exp = DefaultExperiment
	}
	if err := checkName("experiment name", exp); err != nil {
		return Run{}, err
	}
	id := newRunID()
	name := nr.Name
	if name == "" {
		name = "run-" + id[:8]
	}
	if err := checkName("run name", name); err != nil {
		return Run{}, err
	}
	for k, v := range nr.Tags {
		if err := checkTag(k, v); err != nil {
			return Run{}, err
		}
	}
	start := nr.StartTime
	if start.IsZero() {
		start = time.Now()
	}
	pid, host := nr.PID, nr.Host
	if pid == 0 {
		pid = s.pid
	}
	if host == "" {
		host = s.host
	}
	var r Run
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var eid int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM experiments WHERE name = ?`), exp).Scan(&eid)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, s.q(`INSERT INTO experiments (name, created_ms) VALUES (?, ?) RETURNING id`), exp, ms(time.Now())).Scan(&eid)
		}
		if err != nil {
			return err
		}
		dir := filepath.Join(s.artifactRoot, strconv.FormatInt(eid, 10), id, "artifacts")
		r = Run{ID: id, Name: name, ExperimentID: strconv.FormatInt(eid, 10), Status: StatusRunning,
			StartTime: fromMS(ms(start)), ArtifactDir: dir, PID: pid, Host: host, Heartbeat: fromMS(ms(start)),
			Params: map[string]string{}, Tags: map[string]string{}, Metrics: map[string]Metric{}}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO runs (id, name, experiment_id, status, start_ms, artifact_dir, pid, host, heartbeat_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, name, eid, string(StatusRunning), ms(start), dir, pid, host, ms(start)); err != nil {
			return err
		}
		for k, v := range nr.Tags {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)`), id, k, v); err != nil {
				return err
			}
			r.Tags[k] = v
		}
		return nil
	})
	if err != nil {
		return Run{}, s.wrapDB("CreateRun", err)
	}
	return r, nil
}

const runCols = `r.id, r.name, r.experiment_id, r.status, r.start_ms, r.end_ms, r.artifact_dir, r.pid, r.host, r.heartbeat_ms`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var (
		r              Run
		eid, start, hb int64
		pid            int64
		end            sql.NullInt64
		status         string
	)
	if err := sc.Scan(&r.ID, &r.Name, &eid, &status, &start, &end, &r.ArtifactDir, &pid, &r.Host, &hb); err != nil {
		return Run{}, err
	}
	r.ExperimentID, r.Status, r.StartTime, r.PID, r.Heartbeat = strconv.FormatInt(eid, 10), Status(status), fromMS(start), int(pid), fromMS(hb)
	if end.Valid {
		r.EndTime = fromMS(end.Int64)
	}
	r.Params, r.Tags, r.Metrics = map[string]string{}, map[string]string{}, map[string]Metric{}
	return r, nil
}

func (s *sqlStore) GetRun(ctx context.Context, id string) (Run, error) {
	if _, err := s.ReapDead(ctx); err != nil {
		return Run{}, err
	}
	r, err := scanRun(s.db.QueryRowContext(ctx, s.q(`SELECT `+runCols+` FROM runs r WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("track: run %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, s.wrapDB("GetRun", err)
	}
	runs := []Run{r}
	if err := s.fillRuns(ctx, runs, `= ?`, []any{id}); err != nil {
		return Run{}, s.wrapDB("GetRun", err)
	}
	return runs[0], nil
}

// fillRuns loads params, tags and latest metrics of runs whose run_id
// matches cond (a SQL fragment with args).
func (s *sqlStore) fillRuns(ctx context.Context, runs []Run, cond string, args []any) error {
	idx := make(map[string]*Run, len(runs))
	for i := range runs {
		idx[runs[i].ID] = &runs[i]
	}
	for _, t := range []string{"params", "tags"} {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT run_id, key, value FROM `+t+` WHERE run_id `+cond), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, k, v string
			if err := rows.Scan(&id, &k, &v); err != nil {
				rows.Close()
				return err
			}
			if r := idx[id]; r != nil {
				if t == "params" {
					r.Params[k] = v
				} else {
					r.Tags[k] = v
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT run_id, key, value, special, step, ts_ms FROM latest_metrics WHERE run_id `+cond), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      string
			m       Metric
			special int
			ts      int64
		)
		if err := rows.Scan(&id, &m.Key, &m.Value, &special, &m.Step, &ts); err != nil {
			return err
		}
		m.Value, m.Time = decode(m.Value, special), fromMS(ts)
		if r := idx[id]; r != nil {
			r.Metrics[m.Key] = m
		}
	}
	return rows.Err()
}

func (s *sqlStore) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	if _, err := s.ReapDead(ctx); err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	if f.ExperimentID != "" {
		n, err := strconv.ParseInt(f.ExperimentID, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("track: experiment ID %q is not a number: %w", f.ExperimentID, ErrInvalid)
		}
		where, args = append(where, `r.experiment_id = ?`), append(args, n)
	}
	if f.Experiment != "" {
		where, args = append(where, `r.experiment_id IN (SELECT id FROM experiments WHERE name = ?)`), append(args, f.Experiment)
	}
	if len(f.Statuses) > 0 {
		ph := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			if !st.Valid() {
				return nil, fmt.Errorf("track: status %q, want RUNNING, FINISHED, FAILED or KILLED: %w", st, ErrInvalid)
			}
			ph[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, `r.status IN (`+strings.Join(ph, ", ")+`)`)
	}
	if f.NameContains != "" {
		where, args = append(where, `strpos(r.name, ?) > 0`), append(args, f.NameContains)
		if !s.postgres {
			where[len(where)-1] = `instr(r.name, ?) > 0`
		}
	}
	query := `SELECT ` + runCols + ` FROM runs r`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY r.start_ms DESC, r.id`
	if f.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrapDB("ListRuns", err)
	}
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrapDB("ListRuns", err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrapDB("ListRuns", err)
	}
	// Load the details in chunks of IDs (bounded placeholder counts).
	for lo := 0; lo < len(runs); lo += 200 {
		hi := min(lo+200, len(runs))
		ph := make([]string, hi-lo)
		ids := make([]any, hi-lo)
		for i := lo; i < hi; i++ {
			ph[i-lo], ids[i-lo] = "?", runs[i].ID
		}
		if err := s.fillRuns(ctx, runs[lo:hi], `IN (`+strings.Join(ph, ", ")+`)`, ids); err != nil {
			return nil, s.wrapDB("ListRuns", err)
		}
	}
	return runs, nil
}

func (s *sqlStore) EndRun(ctx context.Context, id string, status Status, end time.Time) error {
	if !status.Valid() || status == StatusRunning {
		return fmt.Errorf("track: EndRun status %q, want FINISHED, FAILED or KILLED: %w", status, ErrInvalid)
	}
	if end.IsZero() {
		end = time.Now()
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE runs SET status = ?, end_ms = ?, heartbeat_ms = ? WHERE id = ?`), string(status), ms(end), ms(end), id)
	return s.wrapDB("EndRun", mustAffect(res, err, "run", id))
}

func mustAffect(res sql.Result, err error, what, id string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("track: %s %q: %w", what, id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) Heartbeat(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE runs SET heartbeat_ms = ? WHERE id = ?`), ms(time.Now()), id)
	return s.wrapDB("Heartbeat", mustAffect(res, err, "run", id))
}

func (s *sqlStore) DeleteRun(ctx context.Context, id string) error {
	var dir string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q(`SELECT artifact_dir FROM runs WHERE id = ?`), id).Scan(&dir); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("track: run %q: %w", id, ErrNotFound)
			}
			return err
		}
		var name string
		var version int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT name, version FROM model_versions WHERE run_id = ? ORDER BY name, version LIMIT 1`), id).Scan(&name, &version)
		if err == nil {
			return fmt.Errorf("track: run %q is the source of registered model %s version %d, so it is kept: %w", id, name, version, ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM runs WHERE id = ?`), id)
		return err
	})
	if err != nil {
		return s.wrapDB("DeleteRun", err)
	}
	// The artifacts directory is <root>/<exp>/<run>/artifacts: remove <run>.
	if dir != "" && filepath.Base(filepath.Dir(dir)) == id {
		if err := os.RemoveAll(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("track.DeleteRun: run %s deleted, but not its artifacts: %w", id, err)
		}
	}
	return nil
}

func (s *sqlStore) ReapDead(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, pid, host, heartbeat_ms FROM runs WHERE status = ?`), string(StatusRunning))
	if err != nil {
		return nil, s.wrapDB("ReapDead", err)
	}
	type cand struct {
		id string
		hb int64
	}
	var dead []cand
	now := time.Now()
	for rows.Next() {
		var (
			id, host string
			pid, hb  int64
		)
		if err := rows.Scan(&id, &pid, &host, &hb); err != nil {
			rows.Close()
			return nil, s.wrapDB("ReapDead", err)
		}
		if host == s.host && int(pid) == s.pid {
			continue // this process: alive by definition
		}
		stale := now.Sub(fromMS(hb)) > StaleAfter
		gone := host == s.host && pid > 0 && !processAlive(int(pid))
		if stale || gone {
			dead = append(dead, cand{id, hb})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrapDB("ReapDead", err)
	}
	var ids []string
	for _, c := range dead {
		// The end time is the last moment the writer was known alive.
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE runs SET status = ?, end_ms = ? WHERE id = ? AND status = ?`),
			string(StatusKilled), c.hb, c.id, string(StatusRunning))
		if err != nil {
			return nil, s.wrapDB("ReapDead", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			ids = append(ids, c.id)
		}
	}
	return ids, nil
}

// ---- params, tags, metrics ----

func checkTag(k, v string) error {
	if err := checkName("tag key", k); err != nil {
		return err
	}
	return checkValue("tag", k, v, MaxTagValueLen)
}

func checkParam(k, v string) error {
	if err := checkName("param key", k); err != nil {
		return err
	}
	return checkValue("param", k, v, MaxParamValueLen)
}

func checkMetric(m Metric) error {
	return checkName("metric key", m.Key)
}

func (s *sqlStore) LogParam(ctx context.Context, runID, key, value string) error {
	return s.LogBatch(ctx, runID, Batch{Params: map[string]string{key: value}})
}

func (s *sqlStore) SetTag(ctx context.Context, runID, key, value string) error {
	return s.LogBatch(ctx, runID, Batch{Tags: map[string]string{key: value}})
}

func (s *sqlStore) LogMetric(ctx context.Context, runID string, m Metric) error {
	return s.LogBatch(ctx, runID, Batch{Metrics: []Metric{m}})
}

func (s *sqlStore) LogBatch(ctx context.Context, runID string, b Batch) error {
	for k, v := range b.Params {
		if err := checkParam(k, v); err != nil {
			return err
		}
	}
	for k, v := range b.Tags {
		if err := checkTag(k, v); err != nil {
			return err
		}
	}
	now := time.Now()
	latest := map[string]int{} // key -> index in ms of its latest point
	for i := range b.Metrics {
		m := &b.Metrics[i]
		if err := checkMetric(*m); err != nil {
			return err
		}
		if j, ok := latest[m.Key]; !ok || laterOrEqual(*m, b.Metrics[j], now) {
			latest[m.Key] = i
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM runs WHERE id = ?`), runID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("track: run %q: %w", runID, ErrNotFound)
		}
		if err := s.writeParams(ctx, tx, runID, b.Params); err != nil {
			return err
		}
		for _, k := range sortedKeys(b.Tags) {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value`), runID, k, b.Tags[k]); err != nil {
				return err
			}
		}
		if err := s.writeMetrics(ctx, tx, runID, b.Metrics, now); err != nil {
			return err
		}
		for _, k := range sortedKeys(latest) {
			m := b.Metrics[latest[k]]
			v, sp := encode(m.Value)
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO latest_metrics (run_id, key, value, special, step, ts_ms) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, special = excluded.special, step = excluded.step, ts_ms = excluded.ts_ms
				WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step AND excluded.ts_ms >= latest_metrics.ts_ms)`),
				runID, k, v, sp, m.Step, ms(timeOr(m.Time, now))); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE runs SET heartbeat_ms = ? WHERE id = ?`), ms(now), runID)
		return err
	})
	return s.wrapDB("LogBatch", err)
}

func timeOr(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// laterOrEqual reports whether a is at least as late as b (step, then time;
// a later-logged point wins a tie).
func laterOrEqual(a, b Metric, now time.Time) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	return ms(timeOr(a.Time, now)) >= ms(timeOr(b.Time, now))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (s *sqlStore) writeParams(ctx context.Context, tx *sql.Tx, runID string, params map[string]string) error {
	for _, k := range sortedKeys(params) {
		v := params[k]
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO NOTHING`), runID, k, v)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			if err != nil {
				return err
			}
			continue
		}
		var old string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT value FROM params WHERE run_id = ? AND key = ?`), runID, k).Scan(&old); err != nil {
			return err
		}
		if old != v {
			return fmt.Errorf("track: run %s: param %q is already %q and cannot be changed to %q (params are write-once): %w", runID, k, old, v, ErrConflict)
		}
	}
	return nil
}

// metricChunk is the number of rows per multi-row INSERT (7 parameters each).
const metricChunk = 200

func (s *sqlStore) writeMetrics(ctx context.Context, tx *sql.Tx, runID string, ms_ []Metric, now time.Time) error {
	for lo := 0; lo < len(ms_); lo += metricChunk {
		hi := min(lo+metricChunk, len(ms_))
		var b strings.Builder
		b.WriteString(`INSERT INTO metrics (run_id, key, value, special, step, ts_ms) VALUES `)
		args := make([]any, 0, 6*(hi-lo))
		for i := lo; i < hi; i++ {
			if i > lo {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			m := ms_[i]
			v, sp := encode(m.Value)
			args = append(args, runID, m.Key, v, sp, m.Step, ms(timeOr(m.Time, now)))
		}
		if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) MetricHistory(ctx context.Context, runID string, keys ...string) (map[string][]Metric, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM runs WHERE id = ?`), runID).Scan(&n); err != nil {
		return nil, s.wrapDB("MetricHistory", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("track: run %q: %w", runID, ErrNotFound)
	}
	query := `SELECT key, value, special, step, ts_ms FROM metrics WHERE run_id = ?`
	args := []any{runID}
	if len(keys) > 0 {
		ph := make([]string, len(keys))
		for i, k := range keys {
			ph[i] = "?"
			args = append(args, k)
		}
		query += ` AND key IN (` + strings.Join(ph, ", ") + `)`
	}
	query += ` ORDER BY key, step, ts_ms, id`
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrapDB("MetricHistory", err)
	}
	defer rows.Close()
	out := map[string][]Metric{}
	for rows.Next() {
		var (
			m       Metric
			special int
			ts      int64
		)
		if err := rows.Scan(&m.Key, &m.Value, &special, &m.Step, &ts); err != nil {
			return nil, s.wrapDB("MetricHistory", err)
		}
		m.Value, m.Time = decode(m.Value, special), fromMS(ts)
		out[m.Key] = append(out[m.Key], m)
	}
	return out, s.wrapDB("MetricHistory", rows.Err())
}
