package serve_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/serve"
)

// TestPromtoolCheckMetrics is the metrics peer test: Debian's
// `promtool check metrics` must parse /metrics after some traffic. Lint
// findings (exit status 3) are accepted for the Triton-named family nv_*
// only, whose names break Prometheus conventions on purpose; a parse error
// (exit status 1) or a finding on any other metric fails.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("metrics peer test needs promtool: apt-get install prometheus")
	}
	dir, _ := mlpPackage(t)
	s := serve.New(serve.Options{})
	t.Cleanup(s.Close)
	if err := s.Repository().Load("mlp", dir); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	post := func(path, body string, want int) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
	}
	row := "0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8"
	post("/v2/models/mlp/infer", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[`+row+`]}]}`, http.StatusOK)
	post("/v2/models/mlp/infer", `{"inputs":[{"name":"features","datatype":"FP32","shape":[2,8],"data":[`+row+`,`+row+`]}]}`, http.StatusOK)
	post("/v2/models/mlp/infer", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2]}]}`, http.StatusBadRequest)
	post("/v2/models/nope/infer", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[`+row+`]}]}`, http.StatusNotFound)

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, want := range []string{
		`nv_inference_request_success{model="mlp",version="1"} 2`,
		`nv_inference_count{model="mlp",version="1"} 3`,
		`deepgo_request_duration_seconds_count{model="mlp",version="1"} 2`,
		"# TYPE deepgo_request_duration_seconds histogram",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		// Lint findings: each line is "<metric> <problem>".
		t.Logf("promtool lint findings (expected for the Triton names):\n%s", out)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(line, "nv_") {
				t.Errorf("promtool lint finding outside the Triton family: %s", line)
			}
		}
	default:
		t.Fatalf("promtool check metrics failed (%v), /metrics does not parse:\n%s", err, out)
	}
}
