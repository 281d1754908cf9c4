package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track"
)

// TestUICommand serves a store with `deepgo ui --addr 127.0.0.1:0`, reads
// the API, and stops it by cancelling the context (what SIGINT and SIGTERM
// do in main): the server shuts down and the command exits 0.
func TestUICommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := track.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run, err := st.CreateRun(ctx, track.NewRun{Experiment: "ui-cli", Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.LogMetric(ctx, run.ID, track.Metric{Key: "loss", Value: 0.25, Step: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.EndRun(ctx, run.ID, track.StatusFinished, time.Time{}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		a := &app{stdout: pw, stderr: &stderr}
		code := a.run(rctx, []string{"ui", "--store", path, "--addr", "127.0.0.1:0"})
		pw.Close()
		done <- code
	}()
	lines := bufio.NewScanner(pr)
	base := ""
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "deepgo ui: serving "); ok {
			base = strings.TrimSuffix(strings.Fields(u)[0], "/")
			break
		}
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		cancel()
		t.Fatalf("no serving line (got %q); stderr: %s; exit %d", base, stderr.String(), <-done)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(pr); rest <- string(b) }()

	resp, err := http.Get(base + "/api/runs?experiment=ui-cli")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Runs []struct {
			Name    string                  `json:"name"`
			Metrics map[string]track.Metric `json:"metrics"`
		} `json:"runs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(out.Runs) != 1 || out.Runs[0].Name != "r1" || out.Runs[0].Metrics["loss"].Value != 0.25 {
		t.Fatalf("GET /api/runs: %d %+v (%v)", resp.StatusCode, out, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("deepgo ui exited %d after cancel; stderr: %s", code, stderr.String())
	}
	if s := <-rest; !strings.Contains(s, "deepgo ui: stopped") {
		t.Fatalf("stdout after shutdown %q, want a stopped line", s)
	}
	if _, err := http.Get(base + "/api/runs"); err == nil {
		t.Fatalf("server still answering after shutdown")
	}
}

func TestUIBadAddr(t *testing.T) {
	r := deepgo(t, context.Background(), nil, "ui", "--store", filepath.Join(t.TempDir(), "s.db"), "--addr", "nocolon")
	if r.code != exitUsage || !strings.Contains(r.stderr, `--addr "nocolon"`) {
		t.Fatalf("exit %d, stderr %q; want usage error naming --addr", r.code, r.stderr)
	}
}
