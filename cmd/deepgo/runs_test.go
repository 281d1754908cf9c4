package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/track"
)

// Training commands track runs by default: keep this package's tests out
// of the user's real store ($DEEPGO_STORE wins over the default location).
func init() {
	if os.Getenv(track.EnvStore) == "" {
		if dir, err := os.MkdirTemp("", "deepgo-cmd-test-store-"); err == nil {
			os.Setenv(track.EnvStore, filepath.Join(dir, "store.db"))
		}
	}
}

func TestRunsAndModelsCommands(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store.db")
	csv := filepath.Join(dir, "train.csv")
	writeTabularCSV(t, csv, 200, 1, true)
	train := func(name, lr, out string, extra ...string) result {
		args := append([]string{"train", "tabular", "--data", csv, "--label-col", "class", "--epochs", "3",
			"--hidden", "8", "--lr", lr, "--out", filepath.Join(dir, out), "--store", store, "--run-name", name}, extra...)
		return mustRun(t, args...)
	}
	r := train("slow", "0.001", "m1")
	if !strings.Contains(r.stderr, "Tracking: run ") {
		t.Fatalf("no tracking notice on stderr: %s", r.stderr)
	}
	train("fast", "0.01", "m2")
	train("untracked", "0.01", "m3", "--no-track")

	var runs []track.Run
	if err := json.Unmarshal([]byte(mustRun(t, "runs", "ls", "--store", store, "--json").stdout), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Name != "fast" || runs[1].Name != "slow" {
		t.Fatalf("runs %+v, want fast and slow (not the --no-track one)", runs)
	}
	slow := runs[1]
	if slow.Status != track.StatusFinished || slow.Params["lr"] != "0.001" || slow.Params["epochs"] != "3" ||
		slow.Tags["model_path"] != filepath.Join(dir, "m1") || slow.Metrics["val_accuracy"].Step != 2 {
		t.Fatalf("slow run %+v", slow)
	}
	ls := mustRun(t, "runs", "ls", "--store", store, "--status", "finished").stdout
	if !strings.Contains(ls, "slow") || !strings.Contains(ls, "tabular") || !strings.Contains(ls, "FINISHED") {
		t.Fatalf("runs ls:\n%s", ls)
	}
	show := mustRun(t, "runs", "show", slow.ID[:10], "--store", store).stdout
	for _, want := range []string{slow.ID, "batch_size", "sys.go_version", "model/model.json", "val_loss"} {
		if !strings.Contains(show, want) {
			t.Fatalf("runs show lacks %q:\n%s", want, show)
		}
	}
	cmp := mustRun(t, "runs", "compare", "slow", "fast", "--store", store).stdout
	lrRow := ""
	for _, l := range strings.Split(cmp, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "lr ") {
			lrRow = l
		}
	}
	if f := strings.Fields(lrRow); len(f) != 3 || f[1] != "0.001" || f[2] != "0.01" {
		t.Fatalf("compare lr row %q in:\n%s", lrRow, cmp)
	}

	mustRun(t, "models", "register", "digits", "--run", "slow", "--store", store)
	mustRun(t, "models", "register", "digits", "--path", filepath.Join(dir, "m2"), "--store", store)
	mustRun(t, "models", "alias", "digits", "1", "production", "--store", store)
	mustRun(t, "models", "alias", "digits", "2", "production", "--store", store)
	var m track.RegisteredModel
	if err := json.Unmarshal([]byte(mustRun(t, "models", "show", "digits", "--store", store, "--json").stdout), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Versions) != 2 || m.Aliases["production"] != 2 || m.Versions[0].RunID != slow.ID || m.Versions[1].RunID != "" || m.Versions[1].Source != filepath.Join(dir, "m2") {
		t.Fatalf("model %+v", m)
	}
	if ls := mustRun(t, "models", "ls", "--store", store).stdout; !strings.Contains(ls, "production=2") {
		t.Fatalf("models ls:\n%s", ls)
	}

	// Errors: one line, exit 1 (2 for usage).
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"runs", "show", "nope"}, 1, `no run "nope"`},
		{[]string{"runs", "rm", "slow"}, 1, "registered model digits version 1"},
		{[]string{"models", "alias", "digits", "9", "staging"}, 1, "no version 9"},
		{[]string{"models", "alias", "digits", "x", "staging"}, 2, "VERSION"},
		{[]string{"models", "register", "digits", "--path", dir}, 1, "not a model package"},
		{[]string{"runs", "ls", "--status", "done"}, 2, "--status"},
	} {
		r := deepgo(t, t.Context(), nil, append(c.args, "--store", store)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("deepgo %v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	mustRun(t, "runs", "rm", "fast", "--store", store)
	mustRun(t, "runs", "show", "slow", "--store", store)
	if ls := mustRun(t, "runs", "ls", "--store", store).stdout; strings.Contains(ls, "fast") {
		t.Fatalf("fast still listed:\n%s", ls)
	}
}

func TestTrainWithUnreachableStore(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	csv := filepath.Join(dir, "train.csv")
	writeTabularCSV(t, csv, 50, 1, true)
	r := deepgo(t, t.Context(), nil, "train", "tabular", "--data", csv, "--label-col", "class", "--epochs", "1",
		"--out", filepath.Join(dir, "m"), "--store", "postgres://u:pw@"+addr+"/db")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot connect to PostgreSQL") || !strings.Contains(r.stderr, "--no-track") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestTrainMNISTLogsClassReport checks that train mnist records the test
// confusion matrix and per-class scores the dashboard shows.
func TestTrainMNISTLogsClassReport(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store.db")
	mustRun(t, "train", "mnist", "--model", "mlp", "--epochs", "1", "--limit", "600", "--test-limit", "300",
		"--out", filepath.Join(dir, "m"), "--store", store, "--no-profile")
	s, err := track.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	runs, err := s.ListRuns(ctx, track.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	arts, err := s.ListArtifacts(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var cmPath string
	for _, a := range arts {
		if a.Path == "confusion_matrix.json" {
			cmPath = filepath.Join(runs[0].ArtifactDir, a.Path)
		}
	}
	if cmPath == "" {
		t.Fatalf("no confusion_matrix.json among %+v", arts)
	}
	b, err := os.ReadFile(cmPath)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Labels []string  `json:"labels"`
		Counts [][]int64 `json:"counts"`
	}
	if err := json.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, row := range cm.Counts {
		for _, c := range row {
			total += c
		}
	}
	if len(cm.Labels) != 10 || len(cm.Counts) != 10 || total != 300 {
		t.Fatalf("confusion matrix %d labels, %d rows, %d examples; want 10, 10, 300", len(cm.Labels), len(cm.Counts), total)
	}
	hist, err := s.MetricHistory(ctx, runs[0].ID, "test_class_7_support", "test_class_7_f1")
	if err != nil {
		t.Fatal(err)
	}
	var rowSum int64
	for _, c := range cm.Counts[7] {
		rowSum += c
	}
	if h := hist["test_class_7_support"]; len(h) != 1 || h[0].Value != float64(rowSum) {
		t.Errorf("test_class_7_support %+v, want %d", h, rowSum)
	}
	if h := hist["test_class_7_f1"]; len(h) != 1 || !(h[0].Value >= 0 && h[0].Value <= 1) {
		t.Errorf("test_class_7_f1 %+v", h)
	}
}
