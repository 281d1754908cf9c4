// Package bench runs deepgo's standard performance workloads and reports the
// results as a table or JSON, in the same shape as the PyTorch reference
// script bench/torch_ref.py, so that bench/compare.sh can put the two side by
// side.
//
// The workloads are:
//
//   - sgemm_n{256,512,1024,2048}_t{1,2}: C = A·B for n×n float32 matrices
//     through internal/kernels.Sgemm on 1 and 2 threads, in GFLOPS (2n³
//     flops per call).
//   - sgemm_n{256,512,1024,2048}_scaling: the 2-thread GFLOPS over the
//     1-thread GFLOPS of the same product, measured in alternating short
//     spells of each (the median ratio of adjacent pairs), so that both
//     sides of the ratio see the same state of the machine; on a shared
//     virtual machine the speed of the cores drifts over seconds, which the
//     ratio of the separate _t1 and _t2 workloads (run seconds apart)
//     picks up.
//   - cnn_train_b{32,128}: training steps (zero grads, forward, cross-entropy,
//     backward, Adam step with lr 1e-3) of the seed CNN
//     Conv2D(1,32,3)→ReLU→MaxPool(2)→Flatten→Linear(5408,64)→ReLU→Linear(64,10)
//     on 28×28 images, in images per second, plus the heap allocations per
//     step after warm-up (cnn_train_b*_allocs).
//   - mlp_train_b64: the same for the MLP 784-128-10.
//   - lstm_train_b32, transformer_train_b32: training steps (zero grads,
//     forward, mean of the output, backward, Adam lr 1e-3) of a one-layer
//     bidirectional LSTM (64 → 128 per direction) over 32 sequences of up
//     to 64 steps of different lengths, and of a two-layer Transformer
//     encoder (d 128, 4 heads, feed-forward 512, GELU, dropout 0.1) over 32
//     sequences of 64 tokens with a key padding mask, in sequences/s.
//   - cnn_infer_b1: median latency in µs of one forward pass of the seed CNN
//     on one image, in eval mode without gradient recording.
//   - cnn_infer_b256: forward passes on batches of 256, in images per second.
//   - peak_rss_models: the peak resident set size (VmHWM) reached while the
//     model workloads ran, in MiB; it is reset before them through
//     /proc/self/clear_refs when the kernel allows it, and otherwise covers
//     the whole process up to that point (Result.Note says which).
//
// Model workloads use real MNIST images (found by data/mnist, in the module
// cache or downloaded) when available and random images of the same shape
// otherwise; Results.Data says which. The batches are built once before
// timing, so the loader is not measured.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Units of Result.Unit.
const (
	UnitGFLOPS    = "GFLOPS"
	UnitImagesSec = "images/s"
	UnitLatencyUS = "us"
	UnitAllocs    = "allocs/step"
	UnitMiB       = "MiB"
	UnitRatio     = "x"
	UnitSeqSec    = "seqs/s"
)

// Data sources reported in Results.Data and accepted by Options.Data.
const (
	DataAuto   = "auto"   // MNIST if it can be found, random otherwise
	DataMNIST  = "mnist"  // MNIST or an error
	DataRandom = "random" // random images of MNIST's shape
)

// Options chooses the workloads and how long each runs. The zero value runs
// everything with the defaults given on each field.
type Options struct {
	// Filter selects workloads by name: a comma-separated list of patterns,
	// each a path.Match glob ("sgemm_*") or, without glob characters, a
	// substring ("cnn"). A pattern starting with '!' excludes. Empty runs
	// all workloads.
	Filter string
	// Duration is how long the timed part of each workload runs when Steps
	// is 0; default 2s. Each workload runs at least MinSteps timed steps.
	Duration time.Duration
	// Steps, if positive, fixes the number of timed steps (training steps,
	// forward passes or SGEMM calls) of every workload instead of Duration.
	Steps int
	// MinSteps is the least number of timed steps when Steps is 0; default 3.
	MinSteps int
	// Warmup is the number of untimed steps before timing; default 3.
	Warmup int
	// Threads is the number of Sgemm threads for the model workloads;
	// default 2 (the reference runs PyTorch with torch.set_num_threads(2)).
	// The SGEMM workloads always run at the thread count in their names.
	Threads int
	// Sizes overrides the SGEMM matrix sizes; default 256, 512, 1024, 2048.
	Sizes []int
	// SGEMMThreads overrides the SGEMM thread counts; default 1 and 2.
	SGEMMThreads []int
	// Data is DataAuto (default), DataMNIST or DataRandom.
	Data string
	// MNISTDir, if not empty, is a directory holding the four MNIST files;
	// otherwise data/mnist searches for them.
	MNISTDir string
	// Seed seeds model initialisation and random data; default 1.
	Seed uint64
	// Progress, if not nil, receives one line per workload as it finishes.
	Progress func(r Result)
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.MinSteps <= 0 {
		o.MinSteps = 3
	}
	if o.Warmup <= 0 {
		o.Warmup = 3
	}
	if o.Threads <= 0 {
		o.Threads = 2
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{256, 512, 1024, 2048}
	}
	if len(o.SGEMMThreads) == 0 {
		o.SGEMMThreads = []int{1, 2}
	}
	if o.Data == "" {
		o.Data = DataAuto
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// Result is one measurement.
type Result struct {
	// Name identifies the workload, e.g. "sgemm_n512_t1" or "cnn_train_b32".
	Name string `json:"name"`
	// Value is the measurement in Unit.
	Value float64 `json:"value"`
	// Unit is one of the Unit constants.
	Unit string `json:"unit"`
	// HigherIsBetter tells how to compare values (false for latency,
	// allocations and memory).
	HigherIsBetter bool `json:"higher_is_better"`
	// Steps is the number of timed steps behind Value (0 for memory).
	Steps int `json:"steps,omitempty"`
	// Seconds is the timed wall-clock duration behind Value.
	Seconds float64 `json:"seconds,omitempty"`
	// Threads is the thread count the workload ran with.
	Threads int `json:"threads,omitempty"`
	// Note says anything needed to read Value correctly.
	Note string `json:"note,omitempty"`
}

// Results is the outcome of Run.
type Results struct {
	// Impl is "deepgo" (the reference script writes "pytorch").
	Impl string `json:"impl"`
	// Version describes the implementation: the Go version for deepgo.
	Version string `json:"version"`
	// Date is when the run started, RFC 3339.
	Date string `json:"date"`
	// CPU is the processor model from /proc/cpuinfo, if readable.
	CPU string `json:"cpu,omitempty"`
	// NumCPU is runtime.NumCPU().
	NumCPU int `json:"num_cpu"`
	// Data is DataMNIST or DataRandom: what the model workloads trained
	// and ran on (empty when no model workload ran).
	Data string `json:"data,omitempty"`
	// Results holds the measurements in the order they ran.
	Results []Result `json:"results"`
}

// Get returns the result with the given name.
func (rs Results) Get(name string) (Result, bool) {
	for _, r := range rs.Results {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// JSON returns the results as indented JSON.
func (rs Results) JSON() ([]byte, error) {
	return json.MarshalIndent(rs, "", "  ")
}

// Table returns the results as an aligned plain-text table with a header
// line describing the run.
func (rs Results) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s, %s, %d CPUs", rs.Impl, rs.Version, rs.CPU, rs.NumCPU)
	if rs.Data != "" {
		fmt.Fprintf(&b, ", data: %s", rs.Data)
	}
	fmt.Fprintf(&b, ", %s\n", rs.Date)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tvalue\tunit\tsteps\tthreads\t")
	for _, r := range rs.Results {
		steps, threads := "", ""
		if r.Steps > 0 {
			steps = fmt.Sprint(r.Steps)
		}
		if r.Threads > 0 {
			threads = fmt.Sprint(r.Threads)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Name, formatValue(r.Value), r.Unit, steps, threads)
	}
	tw.Flush()
	// Notes shared by several results are printed once.
	var notes []string
	byNote := map[string][]string{}
	for _, r := range rs.Results {
		if r.Note == "" {
			continue
		}
		if _, ok := byNote[r.Note]; !ok {
			notes = append(notes, r.Note)
		}
		byNote[r.Note] = append(byNote[r.Note], r.Name)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s: %s\n", strings.Join(byNote[n], ", "), n)
	}
	return b.String()
}

func formatValue(v float64) string {
	switch {
	case v == 0 || math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// workload is one named benchmark; run appends its results.
type workload struct {
	name  string
	model bool // needs the model data; counted in peak_rss_models
	run   func(ctx context.Context, e *env) ([]Result, error)
}

// Workloads returns the names of all workloads Run can run with the given
// options, in order, before filtering.
func Workloads(opt Options) []string {
	var names []string
	for _, w := range workloads(opt.withDefaults()) {
		names = append(names, w.name)
	}
	return names
}

func workloads(opt Options) []workload {
	var ws []workload
	for _, t := range opt.SGEMMThreads {
		for _, n := range opt.Sizes {
			ws = append(ws, workload{name: fmt.Sprintf("sgemm_n%d_t%d", n, t), run: func(ctx context.Context, e *env) ([]Result, error) {
				return runSgemm(ctx, e, n, t)
			}})
		}
	}
	if tmax := slices.Max(opt.SGEMMThreads); tmax > 1 && slices.Contains(opt.SGEMMThreads, 1) {
		for _, n := range opt.Sizes {
			ws = append(ws, workload{name: fmt.Sprintf("sgemm_n%d_scaling", n), run: func(ctx context.Context, e *env) ([]Result, error) {
				return runSgemmScaling(ctx, e, n, tmax)
			}})
		}
	}
	for _, b := range []int{32, 128} {
		ws = append(ws, workload{name: fmt.Sprintf("cnn_train_b%d", b), model: true, run: func(ctx context.Context, e *env) ([]Result, error) {
			return runTrain(ctx, e, fmt.Sprintf("cnn_train_b%d", b), newCNN, b, false)
		}})
	}
	ws = append(ws, workload{name: "mlp_train_b64", model: true, run: func(ctx context.Context, e *env) ([]Result, error) {
		return runTrain(ctx, e, "mlp_train_b64", newMLP, 64, true)
	}})
	ws = append(ws, workload{name: "lstm_train_b32", run: runLSTMTrain})
	ws = append(ws, workload{name: "transformer_train_b32", run: runTransformerTrain})
	ws = append(ws, workload{name: "cnn_infer_b1", model: true, run: func(ctx context.Context, e *env) ([]Result, error) {
		return runInferLatency(ctx, e)
	}})
	ws = append(ws, workload{name: "cnn_infer_b256", model: true, run: func(ctx context.Context, e *env) ([]Result, error) {
		return runInferThroughput(ctx, e, 256)
	}})
	return ws
}

// matchFilter reports whether name passes the filter of Options.Filter.
func matchFilter(filter, name string) (bool, error) {
	var incl, excl []string
	for p := range strings.SplitSeq(filter, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			excl = append(excl, rest)
		} else {
			incl = append(incl, p)
		}
	}
	match := func(p string) (bool, error) {
		if strings.ContainsAny(p, "*?[") {
			ok, err := path.Match(p, name)
			if err != nil {
				return false, fmt.Errorf("bench: bad filter pattern %q: %v", p, err)
			}
			return ok, nil
		}
		return strings.Contains(name, p), nil
	}
	ok := len(incl) == 0
	for _, p := range incl {
		m, err := match(p)
		if err != nil {
			return false, err
		}
		ok = ok || m
	}
	for _, p := range excl {
		m, err := match(p)
		if err != nil {
			return false, err
		}
		if m {
			ok = false
		}
	}
	return ok, nil
}

// Run runs the workloads selected by opt and returns their results. It
// returns an error if the filter is malformed or selects nothing, if MNIST
// was required and cannot be loaded, or if ctx ends (with the results so
// far).
func Run(ctx context.Context, opt Options) (Results, error) {
	opt = opt.withDefaults()
	rs := Results{
		Impl:    "deepgo",
		Version: runtime.Version(),
		Date:    time.Now().UTC().Format(time.RFC3339),
		CPU:     cpuModel(),
		NumCPU:  runtime.NumCPU(),
	}
	switch opt.Data {
	case DataAuto, DataMNIST, DataRandom:
	default:
		return rs, fmt.Errorf("bench: unknown data source %q (want %q, %q or %q)", opt.Data, DataAuto, DataMNIST, DataRandom)
	}
	var selected []workload
	for _, w := range workloads(opt) {
		ok, err := matchFilter(opt.Filter, w.name)
		if err != nil {
			return rs, err
		}
		if ok {
			selected = append(selected, w)
		}
	}
	if len(selected) == 0 {
		return rs, fmt.Errorf("bench: filter %q selects no workload (have %s)", opt.Filter, strings.Join(Workloads(opt), ", "))
	}
	// SGEMM first, then the model workloads, so that the memory peak of the
	// large matrices can be left out of peak_rss_models.
	slices.SortStableFunc(selected, func(a, b workload) int {
		switch {
		case a.model == b.model:
			return 0
		case b.model:
			return -1
		}
		return 1
	})
	e := &env{opt: opt}
	modelsStarted := false
	var rssNote string
	for _, w := range selected {
		if err := ctx.Err(); err != nil {
			return rs, err
		}
		if w.model && !modelsStarted {
			modelsStarted = true
			if err := e.loadImages(ctx); err != nil {
				return rs, err
			}
			rs.Data = e.data
			rssNote = resetPeakRSS()
		}
		res, err := w.run(ctx, e)
		rs.Results = append(rs.Results, res...)
		if opt.Progress != nil {
			for _, r := range res {
				opt.Progress(r)
			}
		}
		if err != nil {
			return rs, err
		}
	}
	if modelsStarted {
		if hwm, ok := peakRSS(); ok {
			r := Result{Name: "peak_rss_models", Value: float64(hwm) / (1 << 20), Unit: UnitMiB, Note: rssNote}
			rs.Results = append(rs.Results, r)
			if opt.Progress != nil {
				opt.Progress(r)
			}
		}
	}
	return rs, nil
}

// timeSteps runs step Warmup times untimed, then either Steps times or
// until Duration has passed (at least MinSteps times), and returns the
// number of timed steps, their total duration and the heap allocations
// they made.
func timeSteps(ctx context.Context, opt Options, step func()) (n int, d time.Duration, mallocs uint64, err error) {
	for range opt.Warmup {
		step()
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for {
		step()
		n++
		if opt.Steps > 0 {
			if n >= opt.Steps {
				break
			}
		} else if n >= opt.MinSteps && time.Since(start) >= opt.Duration {
			break
		}
		if n%8 == 0 && ctx.Err() != nil {
			break
		}
	}
	d = time.Since(start)
	runtime.ReadMemStats(&m1)
	return n, d, m1.Mallocs - m0.Mallocs, ctx.Err()
}

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
