package bench_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/bench"
)

// tiny is a configuration that runs every workload in well under a second.
func tiny() bench.Options {
	return bench.Options{Steps: 2, Warmup: 1, Sizes: []int{16, 40}, SGEMMThreads: []int{1, 2}, Data: bench.DataRandom, Seed: 7}
}

func TestRunTinyComplete(t *testing.T) {
	var progress []string
	opt := tiny()
	opt.Progress = func(r bench.Result) { progress = append(progress, r.Name) }
	rs, err := bench.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sgemm_n16_t1": bench.UnitGFLOPS, "sgemm_n40_t1": bench.UnitGFLOPS,
		"sgemm_n16_t2": bench.UnitGFLOPS, "sgemm_n40_t2": bench.UnitGFLOPS,
		"sgemm_n16_scaling": bench.UnitRatio, "sgemm_n40_scaling": bench.UnitRatio,
		"lstm_train_b32": bench.UnitSeqSec, "transformer_train_b32": bench.UnitSeqSec,
		"cnn_train_b32": bench.UnitImagesSec, "cnn_train_b32_allocs": bench.UnitAllocs,
		"cnn_train_b128": bench.UnitImagesSec, "cnn_train_b128_allocs": bench.UnitAllocs,
		"mlp_train_b64": bench.UnitImagesSec, "mlp_train_b64_allocs": bench.UnitAllocs,
		"cnn_infer_b1": bench.UnitLatencyUS, "cnn_infer_b256": bench.UnitImagesSec,
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		want["peak_rss_models"] = bench.UnitMiB
	}
	if len(rs.Results) != len(want) {
		t.Errorf("got %d results, want %d: %+v", len(rs.Results), len(want), rs.Results)
	}
	for name, unit := range want {
		r, ok := rs.Get(name)
		if !ok {
			t.Errorf("missing result %s", name)
			continue
		}
		if r.Unit != unit {
			t.Errorf("%s: unit %q, want %q", name, r.Unit, unit)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value < 0 || (r.Value == 0 && unit != bench.UnitAllocs) {
			t.Errorf("%s: value %v is not a positive finite number", name, r.Value)
		}
		higher := unit == bench.UnitGFLOPS || unit == bench.UnitImagesSec || unit == bench.UnitRatio || unit == bench.UnitSeqSec
		if r.HigherIsBetter != higher {
			t.Errorf("%s: HigherIsBetter %v, want %v", name, r.HigherIsBetter, higher)
		}
		switch {
		case unit == bench.UnitRatio:
			// 8 pairs of spells of one step each (half the fixed 2).
			if r.Steps != 16 || r.Threads != 2 {
				t.Errorf("%s: %d steps on %d threads, want 16 on 2", name, r.Steps, r.Threads)
			}
		case unit != bench.UnitMiB && r.Steps != 2:
			t.Errorf("%s: %d steps, want the fixed 2", name, r.Steps)
		}
	}
	if r, _ := rs.Get("sgemm_n40_t2"); r.Threads != 2 {
		t.Errorf("sgemm_n40_t2 ran on %d threads", r.Threads)
	}
	if r, _ := rs.Get("cnn_train_b32"); r.Threads != 2 {
		t.Errorf("model workloads ran on %d threads, want the default 2", r.Threads)
	}
	if rs.Impl != "deepgo" || rs.Data != bench.DataRandom || rs.NumCPU < 1 || rs.Date == "" {
		t.Errorf("bad header: %+v", rs)
	}
	if len(progress) != len(rs.Results) {
		t.Errorf("progress saw %d results, Run returned %d", len(progress), len(rs.Results))
	}

	b, err := rs.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rs.Results) || back.Results[0] != rs.Results[0] {
		t.Errorf("JSON round trip changed the results")
	}
	for _, key := range []string{`"impl"`, `"results"`, `"name"`, `"value"`, `"unit"`, `"higher_is_better"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	table := rs.Table()
	for name := range want {
		if !strings.Contains(table, name) {
			t.Errorf("table lacks %s:\n%s", name, table)
		}
	}
}

func names(rs bench.Results) []string {
	var out []string
	for _, r := range rs.Results {
		out = append(out, r.Name)
	}
	return out
}

func TestRunFilter(t *testing.T) {
	cases := []struct {
		filter string
		want   []string
	}{
		{"sgemm_*_t1", []string{"sgemm_n16_t1", "sgemm_n40_t1"}},
		{"sgemm,!t2,!n40", []string{"sgemm_n16_t1", "sgemm_n16_scaling"}},
		{"sgemm_*_scaling", []string{"sgemm_n16_scaling", "sgemm_n40_scaling"}},
		{"n16_t2, mlp", []string{"sgemm_n16_t2", "mlp_train_b64", "mlp_train_b64_allocs", "peak_rss_models"}},
	}
	for _, c := range cases {
		opt := tiny()
		opt.Filter = c.filter
		rs, err := bench.Run(context.Background(), opt)
		if err != nil {
			t.Fatalf("filter %q: %v", c.filter, err)
		}
		got := names(rs)
		want := slices.DeleteFunc(slices.Clone(c.want), func(n string) bool {
			_, err := os.Stat("/proc/self/status")
			return n == "peak_rss_models" && err != nil
		})
		if !slices.Equal(got, want) {
			t.Errorf("filter %q ran %v, want %v", c.filter, got, want)
		}
		if strings.Contains(c.filter, "mlp") == (rs.Data == "") {
			t.Errorf("filter %q: Data %q", c.filter, rs.Data)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, opt := range []bench.Options{
		{Filter: "nothing-matches"},
		{Filter: "sgemm_[", Sizes: []int{8}},
		{Data: "imagenet", Filter: "mlp"},
	} {
		if _, err := bench.Run(context.Background(), opt); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("Run(%+v) = %v, want a bench: error", opt, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opt := tiny()
	if _, err := bench.Run(ctx, opt); err != context.Canceled {
		t.Errorf("Run with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWorkloads(t *testing.T) {
	got := bench.Workloads(bench.Options{})
	want := []string{
		"sgemm_n256_t1", "sgemm_n512_t1", "sgemm_n1024_t1", "sgemm_n2048_t1",
		"sgemm_n256_t2", "sgemm_n512_t2", "sgemm_n1024_t2", "sgemm_n2048_t2",
		"sgemm_n256_scaling", "sgemm_n512_scaling", "sgemm_n1024_scaling", "sgemm_n2048_scaling",
		"cnn_train_b32", "cnn_train_b128", "mlp_train_b64", "lstm_train_b32", "transformer_train_b32",
		"cnn_infer_b1", "cnn_infer_b256",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Workloads = %v, want %v", got, want)
	}
}
