package ui_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track"
)

// fixture is a populated store: two finished runs with metric histories in
// experiment "mnist", a run in experiment "tabular", and a registered model
// "mnist-cnn" with two versions (v1 from run B, v2 from run A) and aliases
// production (v2) and staging (v1).
type fixture struct {
	store       track.Store
	runA, runB  string
	runC        string
	modelSource string
}

// lossAt is run A's loss at epoch e (run B's is twice it).
func lossAt(e int) float64 { return 2.3 * math.Exp(-0.35*float64(e)) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := track.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatalf("track.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	f := &fixture{store: st}
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

	mk := func(exp, name string, start time.Time, params map[string]string) string {
		r, err := st.CreateRun(ctx, track.NewRun{Experiment: exp, Name: name, StartTime: start, Tags: map[string]string{"arch": params["arch"]}})
		if err != nil {
			t.Fatalf("CreateRun %s: %v", name, err)
		}
		for k, v := range params {
			if err := st.LogParam(ctx, r.ID, k, v); err != nil {
				t.Fatalf("LogParam: %v", err)
			}
		}
		return r.ID
	}
	f.runA = mk("mnist", "cnn-lr0.01", t0, map[string]string{"arch": "cnn", "lr": "0.01", "epochs": "8"})
	f.runB = mk("mnist", "mlp-lr0.1", t0.Add(time.Hour), map[string]string{"arch": "mlp", "lr": "0.1", "epochs": "8"})
	f.runC = mk("tabular", "tab-baseline", t0.Add(2*time.Hour), map[string]string{"arch": "mlp", "lr": "0.001"})

	var ba, bb track.Batch
	for e := 0; e < 8; e++ {
		ts := t0.Add(time.Duration(e) * time.Minute)
		ba.Metrics = append(ba.Metrics,
			track.Metric{Key: "loss", Value: lossAt(e), Step: int64(e), Time: ts},
			track.Metric{Key: "val_acc", Value: 0.90 + 0.01*float64(e), Step: int64(e), Time: ts})
		bv := 0.80 + 0.01*float64(e)
		if e == 3 {
			bv = math.NaN() // a NaN point: stored, served and drawn as such
		}
		bb.Metrics = append(bb.Metrics,
			track.Metric{Key: "loss", Value: 2 * lossAt(e), Step: int64(e), Time: ts},
			track.Metric{Key: "val_acc", Value: bv, Step: int64(e), Time: ts})
	}
	// per-class scores of run A as test_class_<label>_<score> metrics
	for c, f1 := range []float64{0.99, 0.95, 0.90} {
		l := string(rune('0' + c))
		ba.Metrics = append(ba.Metrics,
			track.Metric{Key: "test_class_" + l + "_f1", Value: f1, Step: 8, Time: t0},
			track.Metric{Key: "test_class_" + l + "_precision", Value: f1, Step: 8, Time: t0})
	}
	if err := st.LogBatch(ctx, f.runA, ba); err != nil {
		t.Fatalf("LogBatch A: %v", err)
	}
	if err := st.LogBatch(ctx, f.runB, bb); err != nil {
		t.Fatalf("LogBatch B: %v", err)
	}
	if err := st.LogMetric(ctx, f.runC, track.Metric{Key: "loss", Value: 0.5, Step: 0, Time: t0}); err != nil {
		t.Fatalf("LogMetric C: %v", err)
	}

	// run A's confusion matrix (3 classes) and run B's, in metrics' own
	// json.Marshal spelling (Counts, no labels)
	cmA, err := json.Marshal(map[string]any{"labels": []string{"0", "1", "2"}, "counts": [][]int64{{50, 1, 0}, {2, 45, 3}, {0, 4, 44}}})
	if err != nil {
		t.Fatal(err)
	}
	logFile := func(run, name string, body []byte, dest string) {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := st.LogArtifact(ctx, run, p, dest); err != nil {
			t.Fatalf("LogArtifact %s: %v", dest, err)
		}
	}
	logFile(f.runA, "cm.json", cmA, "confusion_matrix.json")
	logFile(f.runA, "notes.html", []byte("<script>alert(1)</script>"), "notes.html")
	logFile(f.runB, "cm.json", []byte(`{"Counts": [[5, 5], [0, 10]], "Labels": null}`), "eval/confusion_matrix.json")
	logFile(f.runC, "cm.json", []byte(`{"counts": [[1, 2], [3]]}`), "confusion_matrix.json")

	for _, id := range []string{f.runA, f.runB} {
		if err := st.EndRun(ctx, id, track.StatusFinished, t0.Add(90*time.Minute)); err != nil {
			t.Fatalf("EndRun: %v", err)
		}
	}
	if err := st.EndRun(ctx, f.runC, track.StatusFailed, t0.Add(150*time.Minute)); err != nil {
		t.Fatalf("EndRun: %v", err)
	}

	f.modelSource = filepath.Join(dir, "models", "mnist-cnn")
	if _, err := st.RegisterModel(ctx, "mnist-cnn", f.runB, f.modelSource+"-v1"); err != nil {
		t.Fatalf("RegisterModel v1: %v", err)
	}
	if _, err := st.RegisterModel(ctx, "mnist-cnn", f.runA, f.modelSource+"-v2"); err != nil {
		t.Fatalf("RegisterModel v2: %v", err)
	}
	if err := st.SetAlias(ctx, "mnist-cnn", "production", 2); err != nil {
		t.Fatalf("SetAlias: %v", err)
	}
	if err := st.SetAlias(ctx, "mnist-cnn", "staging", 1); err != nil {
		t.Fatalf("SetAlias: %v", err)
	}
	return f
}
