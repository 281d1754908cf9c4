package track

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ---- artifacts ----

// cleanDest validates an artifact destination: relative, slash-separated,
// no "..".
func cleanDest(dest string) (string, error) {
	d := path.Clean(filepath.ToSlash(dest))
	if dest == "" || d == "." || path.IsAbs(d) || d == ".." || strings.HasPrefix(d, "../") {
		return "", fmt.Errorf("track: artifact path %q must be relative and stay inside the run's artifact directory: %w", dest, ErrInvalid)
	}
	for _, part := range strings.Split(d, "/") {
		if err := checkName("artifact path element", part); err != nil {
			return "", err
		}
	}
	return d, nil
}

func (s *sqlStore) LogArtifact(ctx context.Context, runID, src, dest string) ([]Artifact, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, s.q(`SELECT `+runCols+` FROM runs r WHERE r.id = ?`), runID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("track: run %q: %w", runID, ErrNotFound)
	}
	if err != nil {
		return nil, s.wrapDB("LogArtifact", err)
	}
	if dest == "" {
		dest = filepath.Base(filepath.Clean(src))
	}
	d, err := cleanDest(dest)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("track.LogArtifact: %w", err)
	}
	var arts []Artifact
	copyOne := func(from, rel string) error {
		n, err := copyFile(from, filepath.Join(r.ArtifactDir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("track.LogArtifact: %w", err)
		}
		arts = append(arts, Artifact{Path: rel, Size: n})
		return nil
	}
	if info.IsDir() {
		err = filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			if !e.Type().IsRegular() {
				return nil // links, devices: not artifacts
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			return copyOne(p, d+"/"+filepath.ToSlash(rel))
		})
	} else {
		err = copyOne(src, d)
	}
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, a := range arts {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO artifacts (run_id, path, size) VALUES (?, ?, ?)
				ON CONFLICT (run_id, path) DO UPDATE SET size = excluded.size`), runID, a.Path, a.Size); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.wrapDB("LogArtifact", err)
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].Path < arts[j].Path })
	return arts, nil
}

// copyFile copies src to dst (through a temporary file renamed into place)
// and returns the number of bytes copied.
func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

func (s *sqlStore) ListArtifacts(ctx context.Context, runID string) ([]Artifact, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM runs WHERE id = ?`), runID).Scan(&n); err != nil {
		return nil, s.wrapDB("ListArtifacts", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("track: run %q: %w", runID, ErrNotFound)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT path, size FROM artifacts WHERE run_id = ? ORDER BY path`), runID)
	if err != nil {
		return nil, s.wrapDB("ListArtifacts", err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		if err := rows.Scan(&a.Path, &a.Size); err != nil {
			return nil, s.wrapDB("ListArtifacts", err)
		}
		out = append(out, a)
	}
	return out, s.wrapDB("ListArtifacts", rows.Err())
}

// ---- model registry ----

func (s *sqlStore) RegisterModel(ctx context.Context, name, runID, source string) (ModelVersion, error) {
	if err := checkName("model name", name); err != nil {
		return ModelVersion{}, err
	}
	if source == "" {
		return ModelVersion{}, fmt.Errorf("track: model %q: source path is empty: %w", name, ErrInvalid)
	}
	if err := checkValue("model", name, source, MaxTagValueLen); err != nil {
		return ModelVersion{}, err
	}
	now := time.Now()
	mv := ModelVersion{Name: name, RunID: runID, Source: source, CreatedAt: fromMS(ms(now)), Aliases: []string{}}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if s.postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727371)`); err != nil {
					return err
				}
			}
			var run any
			if runID != "" {
				var n int
				if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM runs WHERE id = ?`), runID).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("track: registering model %q: run %q: %w", name, runID, ErrNotFound)
				}
				run = runID
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO registered_models (name, created_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, ms(now)); err != nil {
				return err
			}
			var v sql.NullInt64
			if err := tx.QueryRowContext(ctx, s.q(`SELECT MAX(version) FROM model_versions WHERE name = ?`), name).Scan(&v); err != nil {
				return err
			}
			mv.Version = int(v.Int64) + 1
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO model_versions (name, version, run_id, source, created_ms) VALUES (?, ?, ?, ?, ?)`),
				name, mv.Version, run, source, ms(now))
			return err
		})
		if err == nil || errors.Is(err, ErrNotFound) || !s.postgres {
			break
		}
	}
	if err != nil {
		return ModelVersion{}, s.wrapDB("RegisterModel", err)
	}
	return mv, nil
}

func (s *sqlStore) loadModels(ctx context.Context, name string) ([]RegisteredModel, error) {
	cond, args := "", []any{}
	if name != "" {
		cond, args = " WHERE name = ?", []any{name}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT name, description, created_ms FROM registered_models`+cond+` ORDER BY name`), args...)
	if err != nil {
		return nil, err
	}
	var models []RegisteredModel
	idx := map[string]int{}
	for rows.Next() {
		var (
			m   RegisteredModel
			cms int64
		)
		if err := rows.Scan(&m.Name, &m.Description, &cms); err != nil {
			rows.Close()
			return nil, err
		}
		m.CreatedAt, m.Versions, m.Aliases = fromMS(cms), []ModelVersion{}, map[string]int{}
		idx[m.Name] = len(models)
		models = append(models, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	vrows, err := s.db.QueryContext(ctx, s.q(`SELECT name, version, run_id, source, description, created_ms FROM model_versions`+cond+` ORDER BY name, version`), args...)
	if err != nil {
		return nil, err
	}
	for vrows.Next() {
		var (
			v   ModelVersion
			run sql.NullString
			cms int64
		)
		if err := vrows.Scan(&v.Name, &v.Version, &run, &v.Source, &v.Description, &cms); err != nil {
			vrows.Close()
			return nil, err
		}
		v.RunID, v.CreatedAt, v.Aliases = run.String, fromMS(cms), []string{}
		if i, ok := idx[v.Name]; ok {
			models[i].Versions = append(models[i].Versions, v)
		}
	}
	vrows.Close()
	if err := vrows.Err(); err != nil {
		return nil, err
	}
	arows, err := s.db.QueryContext(ctx, s.q(`SELECT name, alias, version FROM model_aliases`+cond+` ORDER BY name, alias`), args...)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var (
			n, a string
			v    int
		)
		if err := arows.Scan(&n, &a, &v); err != nil {
			return nil, err
		}
		i, ok := idx[n]
		if !ok {
			continue
		}
		models[i].Aliases[a] = v
		for j := range models[i].Versions {
			if models[i].Versions[j].Version == v {
				models[i].Versions[j].Aliases = append(models[i].Versions[j].Aliases, a)
			}
		}
	}
	return models, arows.Err()
}

func (s *sqlStore) GetModel(ctx context.Context, name string) (RegisteredModel, error) {
	if name == "" {
		return RegisteredModel{}, fmt.Errorf("track: model name is empty: %w", ErrInvalid)
	}
	ms, err := s.loadModels(ctx, name)
	if err != nil {
		return RegisteredModel{}, s.wrapDB("GetModel", err)
	}
	if len(ms) == 0 {
		return RegisteredModel{}, fmt.Errorf("track: registered model %q: %w", name, ErrNotFound)
	}
	return ms[0], nil
}

func (s *sqlStore) ListModels(ctx context.Context) ([]RegisteredModel, error) {
	ms, err := s.loadModels(ctx, "")
	return ms, s.wrapDB("ListModels", err)
}

func (s *sqlStore) GetModelVersion(ctx context.Context, name string, version int) (ModelVersion, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return ModelVersion{}, err
	}
	for _, v := range m.Versions {
		if v.Version == version {
			return v, nil
		}
	}
	return ModelVersion{}, fmt.Errorf("track: model %q has no version %d: %w", name, version, ErrNotFound)
}

func (s *sqlStore) SetAlias(ctx context.Context, name, alias string, version int) error {
	if err := checkAlias(alias); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM model_versions WHERE name = ? AND version = ?`), name, version).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("track: model %q has no version %d: %w", name, version, ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO model_aliases (name, alias, version) VALUES (?, ?, ?)
			ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version`), name, alias, version)
		return err
	})
	return s.wrapDB("SetAlias", err)
}

func (s *sqlStore) DeleteAlias(ctx context.Context, name, alias string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM model_aliases WHERE name = ? AND alias = ?`), name, alias)
	return s.wrapDB("DeleteAlias", mustAffect(res, err, "alias", name+"@"+alias))
}

func (s *sqlStore) ResolveAlias(ctx context.Context, name, alias string) (ModelVersion, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return ModelVersion{}, err
	}
	v, ok := m.Aliases[alias]
	if !ok {
		return ModelVersion{}, fmt.Errorf("track: model %q has no alias %q: %w", name, alias, ErrNotFound)
	}
	return s.GetModelVersion(ctx, name, v)
}
