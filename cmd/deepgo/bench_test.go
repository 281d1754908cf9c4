package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchCommand(t *testing.T) {
	r := mustRun(t, "bench", "--list")
	for _, w := range []string{"sgemm_n512_t1", "cnn_train_b32", "mlp_train_b64", "cnn_infer_b1"} {
		if !strings.Contains(r.stdout, w+"\n") {
			t.Errorf("bench --list lacks %s:\n%s", w, r.stdout)
		}
	}
	r = mustRun(t, "bench", "--filter", "mlp_train", "--steps", "3", "--warmup", "1", "--data", "random", "--json", "-q")
	var got struct {
		Results []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
			Unit  string  `json:"unit"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("bench --json printed %q: %v", r.stdout, err)
	}
	found := false
	for _, res := range got.Results {
		if res.Name == "mlp_train_b64" {
			found = true
			if !(res.Value > 0) || res.Unit != "images/s" {
				t.Errorf("mlp_train_b64 = %v %s", res.Value, res.Unit)
			}
		}
	}
	if !found {
		t.Errorf("no mlp_train_b64 in %s", r.stdout)
	}
	if r := deepgo(t, context.Background(), nil, "bench", "--filter", "[", "--steps", "1"); r.code == 0 || !strings.Contains(r.stderr, "filter") {
		t.Errorf("a bad filter: exit %d, stderr %q", r.code, r.stderr)
	}
}
