package ui_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/track"
	"github.com/deepgo/deepgo/track/ui"
)

// do sends a request to h and returns the status, headers and body.
func do(t *testing.T, h http.Handler, method, target string) (int, http.Header, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), body
}

// getJSON GETs target, checks the status and decodes the body into v.
func getJSON(t *testing.T, h http.Handler, target string, want int, v any) {
	t.Helper()
	code, hdr, body := do(t, h, http.MethodGet, target)
	if code != want {
		t.Fatalf("GET %s: status %d, want %d; body %s", target, code, want, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q, want application/json", target, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", target, err, body)
	}
}

type runOut struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Status     string                  `json:"status"`
	Experiment string                  `json:"experiment"`
	Params     map[string]string       `json:"params"`
	Tags       map[string]string       `json:"tags"`
	Metrics    map[string]track.Metric `json:"metrics"`
	DurationS  float64                 `json:"duration_s"`
}

type runsOut struct {
	Runs       []runOut `json:"runs"`
	MetricKeys []string `json:"metric_keys"`
	ParamKeys  []string `json:"param_keys"`
	Sort       string   `json:"sort"`
	Order      string   `json:"order"`
}

// closeAll fails unless got and want agree within 1e-12.
func closeAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func names(rs []runOut) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ",")
}

func TestExperiments(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	var out struct {
		Experiments []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			RunCount int    `json:"run_count"`
		} `json:"experiments"`
	}
	getJSON(t, h, "/api/experiments", 200, &out)
	got := map[string]int{}
	for _, e := range out.Experiments {
		got[e.Name] = e.RunCount
	}
	if got["mnist"] != 2 || got["tabular"] != 1 || got[track.DefaultExperiment] != 0 {
		t.Fatalf("experiments %+v, want mnist:2 tabular:1 Default:0", out.Experiments)
	}
}

func TestRunsFilterAndSort(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	cases := []struct {
		query, want string
	}{
		{"", "tab-baseline,mlp-lr0.1,cnn-lr0.01"}, // newest first
		{"?experiment=mnist", "mlp-lr0.1,cnn-lr0.01"},
		{"?status=failed", "tab-baseline"},
		{"?status=FINISHED,KILLED&sort=name", "cnn-lr0.01,mlp-lr0.1"},
		{"?q=CNN", "cnn-lr0.01"},
		{"?q=lr%3D0.1", "mlp-lr0.1"},
		{"?sort=metrics.loss&order=asc", "cnn-lr0.01,mlp-lr0.1,tab-baseline"},     // 2.3·e^(-2.45)≈0.198 < 0.397 < 0.5
		{"?sort=metrics.val_acc&order=desc", "cnn-lr0.01,mlp-lr0.1,tab-baseline"}, // C has no val_acc: last either way
		{"?sort=metrics.val_acc&order=asc", "mlp-lr0.1,cnn-lr0.01,tab-baseline"},
		{"?sort=params.lr&order=desc", "mlp-lr0.1,cnn-lr0.01,tab-baseline"}, // numeric, not lexical
		{"?sort=name&order=desc&limit=2", "tab-baseline,mlp-lr0.1"},
	}
	for _, c := range cases {
		var out runsOut
		getJSON(t, h, "/api/runs"+c.query, 200, &out)
		if got := names(out.Runs); got != c.want {
			t.Errorf("/api/runs%s: runs %s, want %s", c.query, got, c.want)
		}
	}
	var out runsOut
	getJSON(t, h, "/api/runs?experiment=mnist", 200, &out)
	if strings.Join(out.ParamKeys, ",") != "arch,epochs,lr" || !strings.Contains(strings.Join(out.MetricKeys, ","), "loss,test_class_0_f1") {
		t.Fatalf("keys: params %v metrics %v", out.ParamKeys, out.MetricKeys)
	}
	if out.Sort != "start_time" || out.Order != "desc" {
		t.Fatalf("default ordering %s %s, want start_time desc", out.Sort, out.Order)
	}
	r := out.Runs[1] // cnn-lr0.01
	if r.ID != f.runA || r.Experiment != "mnist" || r.Params["lr"] != "0.01" || r.Status != "FINISHED" || r.DurationS != 5400 {
		t.Fatalf("run A summary %+v", r)
	}
	closeAll(t, "run A loss", []float64{r.Metrics["loss"].Value}, []float64{lossAt(7)})
}

func TestRunDetail(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	type classOut struct {
		Label     string           `json:"label"`
		Precision *track.JSONFloat `json:"precision"`
		Recall    *track.JSONFloat `json:"recall"`
		F1        *track.JSONFloat `json:"f1"`
		Support   *track.JSONFloat `json:"support"`
	}
	type detail struct {
		runOut
		Artifacts []track.Artifact `json:"artifacts"`
		CM        *struct {
			Path   string    `json:"path"`
			Labels []string  `json:"labels"`
			Counts [][]int64 `json:"counts"`
		} `json:"confusion_matrix"`
		CMError  string `json:"confusion_matrix_error"`
		PerClass *struct {
			Source  string     `json:"source"`
			Prefix  string     `json:"prefix"`
			Classes []classOut `json:"classes"`
		} `json:"per_class"`
		Models []track.ModelVersion `json:"models"`
	}

	var a detail
	getJSON(t, h, "/api/runs/"+f.runA, 200, &a)
	if a.ID != f.runA || a.Params["arch"] != "cnn" || a.Tags["arch"] != "cnn" || len(a.Artifacts) != 2 {
		t.Fatalf("run A: %+v", a)
	}
	if a.CM == nil || a.CM.Path != "confusion_matrix.json" || a.CM.Counts[1][2] != 3 || strings.Join(a.CM.Labels, "") != "012" {
		t.Fatalf("run A confusion matrix %+v (error %q)", a.CM, a.CMError)
	}
	if a.PerClass == nil || a.PerClass.Source != "metrics" || a.PerClass.Prefix != "test_" || len(a.PerClass.Classes) != 3 {
		t.Fatalf("run A per-class %+v", a.PerClass)
	}
	if c := a.PerClass.Classes[2]; c.Label != "2" || c.F1 == nil || float64(*c.F1) != 0.90 || c.Recall != nil {
		t.Fatalf("run A class 2: %+v", c)
	}
	if len(a.Models) != 1 || a.Models[0].Version != 2 || strings.Join(a.Models[0].Aliases, ",") != "production" {
		t.Fatalf("run A models %+v", a.Models)
	}

	// run B: the matrix in metrics.ConfusionMatrix's own JSON spelling, under
	// eval/, and per-class scores computed from it
	var b detail
	getJSON(t, h, "/api/runs/"+f.runB, 200, &b)
	if b.CM == nil || b.CM.Path != "eval/confusion_matrix.json" || strings.Join(b.CM.Labels, ",") != "0,1" {
		t.Fatalf("run B confusion matrix %+v (error %q)", b.CM, b.CMError)
	}
	if b.PerClass == nil || b.PerClass.Source != "confusion_matrix" || len(b.PerClass.Classes) != 2 {
		t.Fatalf("run B per-class %+v", b.PerClass)
	}
	// class 0: tp 5, predicted 5, actual 10 → precision 1, recall 0.5
	c0 := b.PerClass.Classes[0]
	closeAll(t, "run B class 0", []float64{float64(*c0.Precision), float64(*c0.Recall), float64(*c0.F1), float64(*c0.Support)}, []float64{1, 0.5, 2.0 / 3, 10})
	if m := b.Metrics["val_acc"]; m.Step != 7 || math.Abs(m.Value-0.87) > 1e-12 {
		t.Fatalf("run B latest val_acc %+v, want 0.87 at step 7", m)
	}

	// run C: a malformed matrix is reported, not served, and does not fail
	// the request
	var c detail
	getJSON(t, h, "/api/runs/"+f.runC, 200, &c)
	if c.CM != nil || !strings.Contains(c.CMError, "row 1 has 1 counts, want 2") || c.PerClass != nil {
		t.Fatalf("run C: matrix %+v, error %q, per-class %+v", c.CM, c.CMError, c.PerClass)
	}
}

func TestMetricHistory(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	var out struct {
		RunID   string `json:"run_id"`
		Metrics map[string][]struct {
			Step  int64           `json:"step"`
			Value track.JSONFloat `json:"value"`
		} `json:"metrics"`
	}
	getJSON(t, h, "/api/runs/"+f.runB+"/metrics?keys=loss,val_acc", 200, &out)
	if out.RunID != f.runB || len(out.Metrics) != 2 || len(out.Metrics["loss"]) != 8 || len(out.Metrics["val_acc"]) != 8 {
		t.Fatalf("history %+v", out)
	}
	for i, p := range out.Metrics["loss"] {
		if p.Step != int64(i) || math.Abs(float64(p.Value)-2*lossAt(i)) > 1e-12 {
			t.Fatalf("loss[%d] = %+v, want step %d value %v", i, p, i, 2*lossAt(i))
		}
	}
	if !math.IsNaN(float64(out.Metrics["val_acc"][3].Value)) {
		t.Fatalf("val_acc[3] = %v, want NaN", out.Metrics["val_acc"][3].Value)
	}
	// NaN travels as the string "NaN" (JSON has no NaN number)
	_, _, raw := do(t, h, http.MethodGet, "/api/runs/"+f.runB+"/metrics?keys=val_acc")
	if !strings.Contains(string(raw), `"value": "NaN"`) {
		t.Fatalf("NaN not encoded as \"NaN\": %s", raw)
	}
	// no keys: every key
	getJSON(t, h, "/api/runs/"+f.runA+"/metrics", 200, &out)
	if len(out.Metrics) != 8 { // loss, val_acc, 3×f1, 3×precision
		t.Fatalf("all keys: %d keys, want 8", len(out.Metrics))
	}
}

func TestCompare(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	type row struct {
		Key     string `json:"key"`
		Values  []any  `json:"values"`
		Differs bool   `json:"differs"`
	}
	var out struct {
		Runs    []runOut `json:"runs"`
		Params  []row    `json:"params"`
		Metrics []row    `json:"metrics"`
	}
	getJSON(t, h, "/api/compare?runs="+f.runA+","+f.runB, 200, &out)
	if len(out.Runs) != 2 || out.Runs[0].ID != f.runA || out.Runs[1].ID != f.runB {
		t.Fatalf("compare runs %s", names(out.Runs))
	}
	params := map[string]row{}
	for _, r := range out.Params {
		params[r.Key] = r
	}
	if p := params["lr"]; !p.Differs || p.Values[0] != "0.01" || p.Values[1] != "0.1" {
		t.Fatalf("lr row %+v", p)
	}
	if p := params["epochs"]; p.Differs || p.Values[0] != "8" {
		t.Fatalf("epochs row %+v", p)
	}
	for _, m := range out.Metrics {
		if m.Key == "test_class_0_f1" && (m.Values[1] != nil || !m.Differs) {
			t.Fatalf("metric only run A has: %+v", m)
		}
		if m.Key == "loss" && (m.Values[0] == nil || m.Values[1] == nil || !m.Differs) {
			t.Fatalf("loss row %+v", m)
		}
	}
}

func TestModels(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	type version struct {
		Version   int      `json:"version"`
		RunID     string   `json:"run_id"`
		RunName   string   `json:"run_name"`
		RunStatus string   `json:"run_status"`
		Source    string   `json:"source"`
		Aliases   []string `json:"aliases"`
	}
	type model struct {
		Name     string         `json:"name"`
		Versions []version      `json:"versions"`
		Aliases  map[string]int `json:"aliases"`
		Latest   int            `json:"latest"`
	}
	var list struct {
		Models []model `json:"models"`
	}
	getJSON(t, h, "/api/models", 200, &list)
	if len(list.Models) != 1 || list.Models[0].Name != "mnist-cnn" {
		t.Fatalf("models %+v", list.Models)
	}
	var m model
	getJSON(t, h, "/api/models/mnist-cnn", 200, &m)
	if m.Latest != 2 || len(m.Versions) != 2 || m.Aliases["production"] != 2 || m.Aliases["staging"] != 1 {
		t.Fatalf("model %+v", m)
	}
	v1, v2 := m.Versions[0], m.Versions[1]
	if v1.RunID != f.runB || v1.RunName != "mlp-lr0.1" || v1.RunStatus != "FINISHED" || strings.Join(v1.Aliases, ",") != "staging" {
		t.Fatalf("v1 %+v", v1)
	}
	if v2.RunID != f.runA || v2.Source != f.modelSource+"-v2" || strings.Join(v2.Aliases, ",") != "production" {
		t.Fatalf("v2 %+v", v2)
	}
}

func TestArtifactDownload(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	code, hdr, body := do(t, h, http.MethodGet, "/api/runs/"+f.runA+"/artifacts/notes.html")
	if code != 200 || string(body) != "<script>alert(1)</script>" {
		t.Fatalf("artifact: %d %q", code, body)
	}
	if hdr.Get("Content-Security-Policy") != "sandbox" {
		t.Fatalf("artifact served without sandbox CSP: %v", hdr)
	}
	code, _, body = do(t, h, http.MethodGet, "/api/runs/"+f.runB+"/artifacts/eval/confusion_matrix.json")
	if code != 200 || !strings.Contains(string(body), "Counts") {
		t.Fatalf("nested artifact: %d %q", code, body)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	h := ui.Handler(f.store)
	cases := []struct {
		method, target string
		code           int
		msg            string
	}{
		{"GET", "/api/runs/0123456789abcdef0123456789abcdef", 404, "not found"},
		{"GET", "/api/runs/" + f.runA + "x/metrics", 404, "not found"},
		{"GET", "/api/runs?status=DONE", 400, `status "DONE"`},
		{"GET", "/api/runs?sort=colour", 400, `sort "colour"`},
		{"GET", "/api/runs?order=up", 400, `order "up"`},
		{"GET", "/api/runs?limit=-1", 400, `limit "-1"`},
		{"GET", "/api/runs?experiment=nope", 404, "not found"},
		{"GET", "/api/compare", 400, "runs=ID"},
		{"GET", "/api/compare?runs=" + f.runA + ",ffffffffffffffffffffffffffffffff", 404, "not found"},
		{"GET", "/api/models/nope", 404, "not found"},
		{"GET", "/api/runs/" + f.runA + "/artifacts/missing.txt", 404, "no artifact"},
		{"GET", "/api/runs/" + f.runA + "/artifacts/" + url.PathEscape("../../store.db"), 404, "no artifact"},
		{"GET", "/api/nothing", 404, "no API endpoint"},
		{"POST", "/api/runs", 405, "not allowed"},
		{"DELETE", "/api/models/mnist-cnn", 405, "not allowed"},
	}
	for _, c := range cases {
		code, hdr, body := do(t, h, c.method, c.target)
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s %s: body %q is not JSON: %v", c.method, c.target, body, err)
			continue
		}
		if code != c.code || !strings.Contains(e.Error, c.msg) || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.target, code, e.Error, c.code, c.msg)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	h := ui.Handler(newFixture(t).store)
	for path, want := range map[string]string{
		"/":            `<script src="app.js">`,
		"/app.js":      "lineChart",
		"/app.css":     ".chart",
		"/favicon.svg": "<svg",
	} {
		code, hdr, body := do(t, h, http.MethodGet, path)
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, code, want)
		}
		if hdr.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: missing security headers: %v", path, hdr)
		}
	}
	// nothing is fetched from outside: no absolute URLs in the assets
	for _, path := range []string{"/", "/app.js", "/app.css"} {
		_, _, body := do(t, h, http.MethodGet, path)
		if strings.Contains(string(body), "https://") || strings.Contains(string(body), "http://") && !strings.Contains(string(body), "http://www.w3.org/2000/svg") {
			t.Errorf("%s references an external URL", path)
		}
	}
	if code, _, _ := do(t, h, http.MethodGet, "/nope.js"); code != 404 {
		t.Errorf("GET /nope.js: %d, want 404", code)
	}
}

func TestHandlerNilStorePanics(t *testing.T) {
	testutil.MustPanic(t, "ui.Handler(nil)", func() { ui.Handler(nil) }, "ui.Handler", "nil store")
}
