package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/track"
)

// Limits on what the API reads and accepts.
const (
	// maxConfusionBytes caps the size of a confusion_matrix.json artifact.
	maxConfusionBytes = 16 << 20
	// maxClasses caps the side of a confusion matrix.
	maxClasses = 1000
	// maxCompare caps the runs of one /api/compare request.
	maxCompare = 100
)

// confusionFile is the artifact name a run's confusion matrix is read from.
const confusionFile = "confusion_matrix.json"

// api serves the JSON endpoints over one store.
type api struct {
	store track.Store
}

// experimentJSON is an experiment with its number of runs.
type experimentJSON struct {
	track.Experiment
	// RunCount is the number of runs in the experiment.
	RunCount int `json:"run_count"`
}

// runJSON is a run as the API returns it: the store's record plus the
// experiment's name and the run's duration.
type runJSON struct {
	track.Run
	// Experiment is the name of the run's experiment.
	Experiment string `json:"experiment"`
	// DurationS is the run's duration in seconds (up to now while RUNNING).
	DurationS float64 `json:"duration_s"`
}

func (a *api) experimentNames(ctx context.Context) (map[string]string, []track.Experiment, error) {
	exps, err := a.store.ListExperiments(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]string, len(exps))
	for _, e := range exps {
		names[e.ID] = e.Name
	}
	return names, exps, nil
}

func newRunJSON(r track.Run, expNames map[string]string, now time.Time) runJSON {
	end := r.EndTime
	if end.IsZero() {
		end = now
	}
	d := end.Sub(r.StartTime).Seconds()
	if d < 0 {
		d = 0
	}
	if r.Params == nil {
		r.Params = map[string]string{}
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	if r.Metrics == nil {
		r.Metrics = map[string]track.Metric{}
	}
	return runJSON{Run: r, Experiment: expNames[r.ExperimentID], DurationS: d}
}

// experiments serves GET /api/experiments.
func (a *api) experiments(w http.ResponseWriter, r *http.Request) {
	_, exps, err := a.experimentNames(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	runs, err := a.store.ListRuns(r.Context(), track.RunFilter{})
	if err != nil {
		storeError(w, err)
		return
	}
	count := map[string]int{}
	for _, run := range runs {
		count[run.ExperimentID]++
	}
	out := make([]experimentJSON, len(exps))
	for i, e := range exps {
		out[i] = experimentJSON{Experiment: e, RunCount: count[e.ID]}
	}
	writeJSON(w, http.StatusOK, map[string]any{"experiments": out})
}

// runsResponse is the answer of GET /api/runs.
type runsResponse struct {
	Runs []runJSON `json:"runs"`
	// MetricKeys and ParamKeys are the sorted unions of the runs' keys.
	MetricKeys []string `json:"metric_keys"`
	ParamKeys  []string `json:"param_keys"`
	// Sort and Order echo the ordering applied.
	Sort  string `json:"sort"`
	Order string `json:"order"`
}

// runs serves GET /api/runs?experiment=&status=&q=&sort=&order=&limit=.
func (a *api) runs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var f track.RunFilter
	if e := strings.TrimSpace(q.Get("experiment")); e != "" {
		exp, err := a.store.Experiment(ctx, e)
		if err != nil {
			storeError(w, err)
			return
		}
		f.ExperimentID = exp.ID
	}
	for _, s := range splitList(q.Get("status")) {
		st := track.Status(strings.ToUpper(s))
		if !st.Valid() {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want RUNNING, FINISHED, FAILED or KILLED (comma-separated)", s))
			return
		}
		f.Statuses = append(f.Statuses, st)
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a positive integer", l))
			return
		}
		limit = n
	}
	sortKey := q.Get("sort")
	if sortKey == "" {
		sortKey = "start_time"
	}
	key, err := sortKeyFunc(sortKey)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	order := strings.ToLower(q.Get("order"))
	switch order {
	case "":
		order = "asc"
		if sortKey == "start_time" || sortKey == "end_time" {
			order = "desc"
		}
	case "asc", "desc":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("order %q: want asc or desc", q.Get("order")))
		return
	}
	names, _, err := a.experimentNames(ctx)
	if err != nil {
		storeError(w, err)
		return
	}
	list, err := a.store.ListRuns(ctx, f)
	if err != nil {
		storeError(w, err)
		return
	}
	now := time.Now()
	search := strings.ToLower(strings.TrimSpace(q.Get("q")))
	out := runsResponse{Runs: []runJSON{}, MetricKeys: []string{}, ParamKeys: []string{}, Sort: sortKey, Order: order}
	mk, pk := map[string]bool{}, map[string]bool{}
	for _, run := range list {
		rj := newRunJSON(run, names, now)
		if search != "" && !matches(rj, search) {
			continue
		}
		out.Runs = append(out.Runs, rj)
	}
	slices.SortStableFunc(out.Runs, func(x, y runJSON) int {
		c := compareSortValues(key(x), key(y), order == "desc")
		if c == 0 {
			c = y.StartTime.Compare(x.StartTime)
		}
		if c == 0 {
			c = strings.Compare(x.ID, y.ID)
		}
		return c
	})
	if limit > 0 && len(out.Runs) > limit {
		out.Runs = out.Runs[:limit]
	}
	for _, rj := range out.Runs {
		for k := range rj.Metrics {
			mk[k] = true
		}
		for k := range rj.Params {
			pk[k] = true
		}
	}
	out.MetricKeys = sortedKeys(mk)
	out.ParamKeys = sortedKeys(pk)
	writeJSON(w, http.StatusOK, out)
}

// matches reports whether the lowercase search text occurs in the run's
// name, ID, experiment, status, or one of its params or tags written as
// key=value.
func matches(r runJSON, search string) bool {
	for _, s := range []string{r.Name, r.ID, r.Experiment, string(r.Status)} {
		if strings.Contains(strings.ToLower(s), search) {
			return true
		}
	}
	for _, m := range []map[string]string{r.Params, r.Tags} {
		for k, v := range m {
			if strings.Contains(strings.ToLower(k+"="+v), search) {
				return true
			}
		}
	}
	return false
}

// sortValue is one run's value for a sort key: missing, a number or a
// string.
type sortValue struct {
	ok    bool
	isNum bool
	num   float64
	str   string
}

func num(v float64) sortValue {
	if math.IsNaN(v) {
		return sortValue{}
	}
	return sortValue{ok: true, isNum: true, num: v}
}

func str(s string) sortValue { return sortValue{ok: true, str: s} }

// sortKeyFunc returns the function giving a run's value for the sort key:
// start_time, end_time, duration, name, status, experiment, id,
// metrics.KEY or params.KEY.
func sortKeyFunc(key string) (func(runJSON) sortValue, error) {
	switch key {
	case "start_time":
		return func(r runJSON) sortValue { return num(float64(r.StartTime.UnixMilli())) }, nil
	case "end_time":
		return func(r runJSON) sortValue {
			if r.EndTime.IsZero() {
				return sortValue{}
			}
			return num(float64(r.EndTime.UnixMilli()))
		}, nil
	case "duration":
		return func(r runJSON) sortValue { return num(r.DurationS) }, nil
	case "name":
		return func(r runJSON) sortValue { return str(strings.ToLower(r.Name)) }, nil
	case "status":
		return func(r runJSON) sortValue { return str(string(r.Status)) }, nil
	case "experiment":
		return func(r runJSON) sortValue { return str(strings.ToLower(r.Experiment)) }, nil
	case "id":
		return func(r runJSON) sortValue { return str(r.ID) }, nil
	}
	if k, ok := strings.CutPrefix(key, "metrics."); ok && k != "" {
		return func(r runJSON) sortValue {
			m, ok := r.Metrics[k]
			if !ok {
				return sortValue{}
			}
			return num(m.Value)
		}, nil
	}
	if k, ok := strings.CutPrefix(key, "params."); ok && k != "" {
		return func(r runJSON) sortValue {
			v, ok := r.Params[k]
			if !ok {
				return sortValue{}
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return num(f)
			}
			return str(v)
		}, nil
	}
	return nil, fmt.Errorf("sort %q: want start_time, end_time, duration, name, status, experiment, id, metrics.KEY or params.KEY", key)
}

// compareSortValues orders a before b: missing values always last, numbers
// before strings, then by value (reversed when desc).
func compareSortValues(a, b sortValue, desc bool) int {
	switch {
	case !a.ok && !b.ok:
		return 0
	case !a.ok:
		return 1
	case !b.ok:
		return -1
	}
	var c int
	switch {
	case a.isNum && b.isNum:
		c = cmp.Compare(a.num, b.num)
	case a.isNum:
		return -1
	case b.isNum:
		return 1
	default:
		c = strings.Compare(a.str, b.str)
	}
	if desc {
		c = -c
	}
	return c
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// runDetail is the answer of GET /api/runs/{id}.
type runDetail struct {
	runJSON
	// Artifacts are the run's recorded files.
	Artifacts []track.Artifact `json:"artifacts"`
	// ConfusionMatrix is read from the run's confusion_matrix.json artifact
	// (null when it has none).
	ConfusionMatrix *confusionJSON `json:"confusion_matrix"`
	// ConfusionMatrixError says why a confusion_matrix.json artifact could
	// not be used.
	ConfusionMatrixError string `json:"confusion_matrix_error,omitempty"`
	// PerClass holds per-class scores (null when the run has none).
	PerClass *perClassJSON `json:"per_class"`
	// Models are the registered model versions made by this run.
	Models []track.ModelVersion `json:"models"`
}

// confusionJSON is a confusion matrix: Counts[true][predicted].
type confusionJSON struct {
	// Path is the artifact it was read from.
	Path string `json:"path"`
	// Labels name the classes (class indices when the file has none).
	Labels []string `json:"labels"`
	// Counts[i][j] counts examples of true class i predicted as class j.
	Counts [][]int64 `json:"counts"`
}

// perClassJSON holds per-class scores.
type perClassJSON struct {
	// Source is "metrics" (class_* metric keys) or "confusion_matrix"
	// (computed from the matrix).
	Source string `json:"source"`
	// Prefix is the metric-key prefix used ("test_", "val_" or "").
	Prefix string `json:"prefix"`
	// Classes are the classes, in label order.
	Classes []classScores `json:"classes"`
}

// classScores are one class's scores; missing ones are null.
type classScores struct {
	Label     string           `json:"label"`
	Precision *track.JSONFloat `json:"precision"`
	Recall    *track.JSONFloat `json:"recall"`
	F1        *track.JSONFloat `json:"f1"`
	Support   *track.JSONFloat `json:"support"`
}

// run serves GET /api/runs/{id}.
func (a *api) run(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := a.store.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	names, _, err := a.experimentNames(ctx)
	if err != nil {
		storeError(w, err)
		return
	}
	arts, err := a.store.ListArtifacts(ctx, run.ID)
	if err != nil {
		storeError(w, err)
		return
	}
	models, err := a.store.ListModels(ctx)
	if err != nil {
		storeError(w, err)
		return
	}
	d := runDetail{runJSON: newRunJSON(run, names, time.Now()), Artifacts: arts, Models: []track.ModelVersion{}}
	if d.Artifacts == nil {
		d.Artifacts = []track.Artifact{}
	}
	for _, m := range models {
		for _, v := range m.Versions {
			if v.RunID == run.ID {
				d.Models = append(d.Models, v)
			}
		}
	}
	if p, ok := confusionArtifact(arts); ok {
		cm, err := readConfusion(run.ArtifactDir, p)
		if err != nil {
			d.ConfusionMatrixError = err.Error()
		} else {
			d.ConfusionMatrix = cm
		}
	}
	d.PerClass = perClass(run.Metrics, d.ConfusionMatrix)
	writeJSON(w, http.StatusOK, d)
}

// confusionArtifact returns the path of the run's confusion matrix: the
// top-level confusion_matrix.json, else the shortest path ending in
// /confusion_matrix.json.
func confusionArtifact(arts []track.Artifact) (string, bool) {
	best := ""
	for _, a := range arts {
		if a.Path != confusionFile && !strings.HasSuffix(a.Path, "/"+confusionFile) {
			continue
		}
		if best == "" || len(a.Path) < len(best) {
			best = a.Path
		}
	}
	return best, best != ""
}

// artifactFile returns the local file of the artifact rel (a recorded,
// slash-separated path) under dir, refusing paths that leave dir.
func artifactFile(dir, rel string) (string, error) {
	p := filepath.FromSlash(rel)
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("artifact path %q leaves the run's artifact directory", rel)
	}
	return filepath.Join(dir, p), nil
}

// readConfusion reads and checks a confusion-matrix artifact.
func readConfusion(dir, rel string) (*confusionJSON, error) {
	file, err := artifactFile(dir, rel)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %v", rel, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfusionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %v", rel, err)
	}
	if len(b) > maxConfusionBytes {
		return nil, fmt.Errorf("artifact %s: larger than %d bytes", rel, maxConfusionBytes)
	}
	cm := &confusionJSON{Path: rel}
	if err := json.Unmarshal(b, cm); err != nil {
		return nil, fmt.Errorf("artifact %s: not a confusion matrix {\"labels\": [...], \"counts\": [[...]]}: %v", rel, err)
	}
	cm.Path = rel
	n := len(cm.Counts)
	if n == 0 || n > maxClasses {
		return nil, fmt.Errorf("artifact %s: %d classes, want 1 to %d", rel, n, maxClasses)
	}
	for i, row := range cm.Counts {
		if len(row) != n {
			return nil, fmt.Errorf("artifact %s: row %d has %d counts, want %d (a square matrix)", rel, i, len(row), n)
		}
		for j, c := range row {
			if c < 0 {
				return nil, fmt.Errorf("artifact %s: count [%d][%d] is negative (%d)", rel, i, j, c)
			}
		}
	}
	switch len(cm.Labels) {
	case 0:
		cm.Labels = make([]string, n)
		for i := range cm.Labels {
			cm.Labels[i] = strconv.Itoa(i)
		}
	case n:
	default:
		return nil, fmt.Errorf("artifact %s: %d labels for %d classes", rel, len(cm.Labels), n)
	}
	return cm, nil
}

// classKey matches per-class metric keys.
var classKey = regexp.MustCompile(`^(test_|val_)?class_(.+)_(precision|recall|f1|support)$`)

// perClass returns the per-class scores from class_* metric keys or, when
// there are none, computed from cm; nil when neither exists.
func perClass(latest map[string]track.Metric, cm *confusionJSON) *perClassJSON {
	byPrefix := map[string]map[string]*classScores{}
	for k, m := range latest {
		sub := classKey.FindStringSubmatch(k)
		if sub == nil {
			continue
		}
		prefix, label, score := sub[1], sub[2], sub[3]
		classes := byPrefix[prefix]
		if classes == nil {
			classes = map[string]*classScores{}
			byPrefix[prefix] = classes
		}
		c := classes[label]
		if c == nil {
			c = &classScores{Label: label}
			classes[label] = c
		}
		v := track.JSONFloat(m.Value)
		switch score {
		case "precision":
			c.Precision = &v
		case "recall":
			c.Recall = &v
		case "f1":
			c.F1 = &v
		case "support":
			c.Support = &v
		}
	}
	for _, prefix := range []string{"test_", "val_", ""} {
		classes := byPrefix[prefix]
		if classes == nil {
			continue
		}
		out := &perClassJSON{Source: "metrics", Prefix: prefix}
		for _, c := range classes {
			out.Classes = append(out.Classes, *c)
		}
		order := map[string]int{}
		if cm != nil {
			for i, l := range cm.Labels {
				order[l] = i + 1
			}
		}
		slices.SortFunc(out.Classes, func(x, y classScores) int {
			return compareLabels(x.Label, y.Label, order)
		})
		return out
	}
	if cm == nil {
		return nil
	}
	m := &metrics.ConfusionMatrix{Counts: cm.Counts, Labels: cm.Labels}
	rep := m.Report()
	out := &perClassJSON{Source: "confusion_matrix", Classes: make([]classScores, len(rep.PerClass))}
	for i, s := range rep.PerClass {
		p, rc, f1, sup := track.JSONFloat(s.Precision), track.JSONFloat(s.Recall), track.JSONFloat(s.F1), track.JSONFloat(s.Support)
		out.Classes[i] = classScores{Label: cm.Labels[i], Precision: &p, Recall: &rc, F1: &f1, Support: &sup}
	}
	return out
}

// compareLabels orders class labels: by their position in order (labels of
// the confusion matrix) when both have one, else numerically when both are
// integers, else as strings.
func compareLabels(a, b string, order map[string]int) int {
	if oa, ob := order[a], order[b]; oa > 0 && ob > 0 {
		return cmp.Compare(oa, ob)
	}
	ia, ea := strconv.Atoi(a)
	ib, eb := strconv.Atoi(b)
	if ea == nil && eb == nil {
		return cmp.Compare(ia, ib)
	}
	return strings.Compare(a, b)
}

// point is one point of a metric history.
type point struct {
	Step  int64           `json:"step"`
	Value track.JSONFloat `json:"value"`
	Time  time.Time       `json:"time"`
}

// metrics serves GET /api/runs/{id}/metrics?keys=a,b.
func (a *api) metrics(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	keys := splitList(r.URL.Query().Get("keys"))
	hist, err := a.store.MetricHistory(r.Context(), id, keys...)
	if err != nil {
		storeError(w, err)
		return
	}
	out := make(map[string][]point, len(hist))
	for k, ms := range hist {
		ps := make([]point, len(ms))
		for i, m := range ms {
			ps[i] = point{Step: m.Step, Value: track.JSONFloat(m.Value), Time: m.Time}
		}
		out[k] = ps
	}
	writeJSON(w, http.StatusOK, map[string]any{"run_id": id, "metrics": out})
}

// artifact serves GET /api/runs/{id}/artifacts/{path...}: the file of a
// recorded artifact, sandboxed so that an HTML artifact cannot act as the
// dashboard.
func (a *api) artifact(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := a.store.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	rel := r.PathValue("path")
	arts, err := a.store.ListArtifacts(ctx, run.ID)
	if err != nil {
		storeError(w, err)
		return
	}
	if !slices.ContainsFunc(arts, func(a track.Artifact) bool { return a.Path == rel }) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no artifact %q", run.ID, rel))
		return
	}
	file, err := artifactFile(run.ArtifactDir, rel)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := os.Open(file)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, os.ErrNotExist) {
			status = http.StatusNotFound
		}
		writeError(w, status, fmt.Sprintf("artifact %q of run %s: %v", rel, run.ID, err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("artifact %q of run %s is not a readable file", rel, run.ID))
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", path.Base(rel)))
	http.ServeContent(w, r, path.Base(rel), st.ModTime(), f)
}

// compareRow is one param or metric across the compared runs.
type compareRow struct {
	// Key is the param or metric key.
	Key string `json:"key"`
	// Values has one entry per run, null where the run lacks the key.
	Values []any `json:"values"`
	// Differs is true when the runs do not all have the same value.
	Differs bool `json:"differs"`
}

// compare serves GET /api/compare?runs=a,b.
func (a *api) compare(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ids := splitList(r.URL.Query().Get("runs"))
	if len(ids) == 0 {
		writeError(w, http.StatusBadRequest, "compare needs runs=ID,ID,... (at least one run ID)")
		return
	}
	if len(ids) > maxCompare {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("compare takes at most %d runs, got %d", maxCompare, len(ids)))
		return
	}
	names, _, err := a.experimentNames(ctx)
	if err != nil {
		storeError(w, err)
		return
	}
	now := time.Now()
	runs := make([]runJSON, len(ids))
	pk, mk := map[string]bool{}, map[string]bool{}
	for i, id := range ids {
		run, err := a.store.GetRun(ctx, id)
		if err != nil {
			storeError(w, err)
			return
		}
		runs[i] = newRunJSON(run, names, now)
		for k := range run.Params {
			pk[k] = true
		}
		for k := range run.Metrics {
			mk[k] = true
		}
	}
	params := []compareRow{}
	for _, k := range sortedKeys(pk) {
		row := compareRow{Key: k, Values: make([]any, len(runs))}
		seen := map[string]bool{}
		for i, run := range runs {
			v, ok := run.Params[k]
			if ok {
				row.Values[i] = v
				seen["v"+v] = true
			} else {
				seen["missing"] = true
			}
		}
		row.Differs = len(seen) > 1
		params = append(params, row)
	}
	mets := []compareRow{}
	for _, k := range sortedKeys(mk) {
		row := compareRow{Key: k, Values: make([]any, len(runs))}
		seen := map[string]bool{}
		for i, run := range runs {
			m, ok := run.Metrics[k]
			if ok {
				row.Values[i] = track.JSONFloat(m.Value)
				seen["v"+strconv.FormatFloat(m.Value, 'g', -1, 64)] = true
			} else {
				seen["missing"] = true
			}
		}
		row.Differs = len(seen) > 1
		mets = append(mets, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs, "params": params, "metrics": mets})
}

// versionJSON is a model version with the name and status of its run.
type versionJSON struct {
	track.ModelVersion
	// RunName and RunStatus describe the run that made the version ("" when
	// it has none or the run is gone).
	RunName   string `json:"run_name,omitempty"`
	RunStatus string `json:"run_status,omitempty"`
}

// modelJSON is a registered model as the API returns it.
type modelJSON struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	Versions    []versionJSON  `json:"versions"`
	Aliases     map[string]int `json:"aliases"`
	// Latest is the highest version number.
	Latest int `json:"latest"`
}

func (a *api) modelJSON(ctx context.Context, m track.RegisteredModel, runs map[string]track.Run) modelJSON {
	out := modelJSON{Name: m.Name, Description: m.Description, CreatedAt: m.CreatedAt, Versions: make([]versionJSON, len(m.Versions)), Aliases: m.Aliases}
	if out.Aliases == nil {
		out.Aliases = map[string]int{}
	}
	for i, v := range m.Versions {
		if v.Aliases == nil {
			v.Aliases = []string{}
		}
		vj := versionJSON{ModelVersion: v}
		if v.RunID != "" {
			run, ok := runs[v.RunID]
			if !ok {
				if r, err := a.store.GetRun(ctx, v.RunID); err == nil {
					run, ok = r, true
					runs[v.RunID] = r
				}
			}
			if ok {
				vj.RunName, vj.RunStatus = run.Name, string(run.Status)
			}
		}
		out.Versions[i] = vj
		out.Latest = max(out.Latest, v.Version)
	}
	return out
}

// models serves GET /api/models.
func (a *api) models(w http.ResponseWriter, r *http.Request) {
	list, err := a.store.ListModels(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	runs := map[string]track.Run{}
	out := make([]modelJSON, len(list))
	for i, m := range list {
		out[i] = a.modelJSON(r.Context(), m, runs)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

// model serves GET /api/models/{name}.
func (a *api) model(w http.ResponseWriter, r *http.Request) {
	m, err := a.store.GetModel(r.Context(), r.PathValue("name"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.modelJSON(r.Context(), m, map[string]track.Run{}))
}
