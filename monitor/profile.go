// Package monitor watches a served model for drift: it compares live
// traffic with a reference profile of the training data and raises alerts.
//
// # Reference profile
//
// A Profile summarises the model's training inputs and its predictions on
// them: for each feature group a histogram with fixed bin edges (quantile
// cut points of the training values, so each bin holds about the same
// share), the distribution of predicted classes, and a histogram of the
// confidence (the largest class probability) on fixed edges. Feature
// groups depend on the input (see InputSpec): for images, mean intensity,
// spread, ink fraction, centre of mass and the means of a block grid; for
// tabular rows, one per column. BuildProfile and ProfileFromDataset compute
// it; Attach stores it as JSON in a model package's "monitor" field and
// FromPackage reads it back.
//
// # Live drift
//
// A Monitor receives every executed batch (inputs and outputs, see
// Monitor.Observe), bins each row with the profile's edges and keeps a
// sliding window per model: the last Options.Window rows (and, with
// Options.MaxAge, only those younger than it). Every Options.Step rows (and
// every Options.Interval) it evaluates the window: the population stability
// index (PSI, with epsilon smoothing) of each feature group, of the
// predicted-class distribution and of the confidence histogram, exported as
// Prometheus gauges (deepgo_drift_psi{model,feature},
// deepgo_drift_prediction_psi{model}, ...). After each window the alert
// Rules are checked; a rule fires after its condition held for For
// consecutive windows (and ForDuration), logs an slog warning and, when a
// webhook URL is set, POSTs a JSON Alert to it from a background goroutine
// with a bounded queue, a timeout and retries, so inference never waits on
// it. A firing rule whose condition clears resolves (logged and posted
// too).
package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// ProfileFormat is the version of the profile JSON this package writes and
// reads.
const ProfileFormat = 1

// Output interpretations recorded in a profile.
const (
	// OutputLogits: rows are unnormalised scores; softmax gives the class
	// probabilities.
	OutputLogits = "logits"
	// OutputProbabilities: rows already are class probabilities.
	OutputProbabilities = "probabilities"
	// OutputNone: the output is not a class score vector; no prediction
	// statistics are kept.
	OutputNone = "none"
)

// ConfidenceCuts are the fixed cut points of the confidence histogram.
var ConfidenceCuts = []float64{0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}

// Feature is the reference histogram of one feature group.
type Feature struct {
	// Name of the feature group (e.g. "mean", "com_x", "block_1_2", a
	// column name).
	Name string `json:"name"`
	// Cuts are the ascending bin edges (see Bin): len(Cuts)+1 bins.
	Cuts []float64 `json:"cuts"`
	// Freq is the share of reference rows in each bin.
	Freq []float64 `json:"freq"`
	// Mean of the feature over the reference rows.
	Mean float64 `json:"mean"`
}

// Classes is the reference distribution of predicted classes.
type Classes struct {
	// Labels names the classes (may be empty).
	Labels []string `json:"labels,omitempty"`
	// Freq is the share of reference rows predicted as each class.
	Freq []float64 `json:"freq"`
}

// Confidence is the reference histogram of the confidence (largest class
// probability).
type Confidence struct {
	// Cuts are the bin edges (ConfidenceCuts when built by this package).
	Cuts []float64 `json:"cuts"`
	// Freq is the share of reference rows in each bin.
	Freq []float64 `json:"freq"`
	// Mean confidence over the reference rows.
	Mean float64 `json:"mean"`
}

// Profile is the reference a Monitor compares live traffic with. It is
// stored as JSON in a model package (see Attach).
type Profile struct {
	// Format is ProfileFormat.
	Format int `json:"format"`
	// Samples is the number of reference rows.
	Samples int `json:"samples"`
	// Created is when the profile was built (RFC 3339, UTC).
	Created string `json:"created,omitempty"`
	// Input says how rows are summarised into Features.
	Input InputSpec `json:"input"`
	// Output is OutputLogits, OutputProbabilities or OutputNone.
	Output string `json:"output"`
	// Features are the reference histograms, in Input.Names order.
	Features []Feature `json:"features"`
	// Classes is the predicted-class distribution (nil for OutputNone).
	Classes *Classes `json:"classes,omitempty"`
	// Confidence is the confidence histogram (nil for OutputNone).
	Confidence *Confidence `json:"confidence,omitempty"`
}

// ProfileOptions configures BuildProfile and ProfileFromDataset. Zero
// values take the defaults.
type ProfileOptions struct {
	// Bins is the number of quantile bins per feature group (default 10).
	Bins int
	// Grid is the side of the block grid of image features (default 4).
	Grid int
	// MaxSamples bounds the rows ProfileFromDataset uses: a larger dataset
	// is sampled at evenly spaced indices (default 10000).
	MaxSamples int
	// BatchSize is the batch ProfileFromDataset predicts with (default 256).
	BatchSize int
	// FeatureNames name the columns of tabular inputs (default col_0, …).
	FeatureNames []string
	// Labels name the classes.
	Labels []string
	// Output forces how outputs are read (OutputLogits,
	// OutputProbabilities, OutputNone); "" detects it: float rows of at
	// least 2 values that are all in [0, 1] and sum to 1 are
	// probabilities, other float rows of at least 2 values are logits.
	Output string
}

func (o ProfileOptions) withDefaults() ProfileOptions {
	if o.Bins <= 1 {
		o.Bins = 10
	}
	if o.Grid <= 0 {
		o.Grid = 4
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 10000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	return o
}

// PackageOptions returns the profile options that fit pkg: its class
// labels, and for tabular packages the feature names derived from the
// preprocessing (standardize columns, one_hot "column=category").
func PackageOptions(pkg *model.Package) ProfileOptions {
	var o ProfileOptions
	if pkg == nil {
		return o
	}
	o.Labels = append([]string(nil), pkg.Labels...)
	var names []string
	for _, op := range pkg.Preprocess {
		switch op.Op {
		case model.OpStandardize:
			names = append(names, op.Columns...)
		case model.OpOneHot:
			for _, c := range op.Categories {
				names = append(names, op.Column+"="+c)
			}
		}
	}
	if len(pkg.Signature.Inputs) > 0 {
		if s := pkg.Signature.Inputs[0].Shape; len(s) == 2 && s[1] == len(names) {
			o.FeatureNames = names
		}
	}
	return o
}

// BuildProfile computes a reference profile from a batch of training inputs
// (shape [N, ...], float32 or int64) and the model's outputs on them
// (shape [N, K]: logits or probabilities; any other output gives a profile
// without prediction statistics).
func BuildProfile(inputs, outputs *tensor.Tensor, opt ProfileOptions) (*Profile, error) {
	b := newProfileBuilder(opt)
	if err := b.add(inputs, outputs); err != nil {
		return nil, err
	}
	return b.build()
}

// ProfileFromDataset computes a reference profile from the inputs of ds
// (at most opt.MaxSamples of them, evenly spaced) and predict's outputs on
// them, in batches of opt.BatchSize. predict is usually a package's
// Predict method:
//
//	prof, err := monitor.ProfileFromDataset(trainSet, pkg.Predict, monitor.PackageOptions(pkg))
//	if err == nil { err = prof.Attach(pkg) }
func ProfileFromDataset(ds data.Dataset, predict func(*tensor.Tensor) (*tensor.Tensor, error), opt ProfileOptions) (*Profile, error) {
	if ds == nil || predict == nil {
		return nil, errors.New("monitor.ProfileFromDataset: nil dataset or predict function")
	}
	opt = opt.withDefaults()
	n := ds.Len()
	if n == 0 {
		return nil, errors.New("monitor.ProfileFromDataset: the dataset is empty")
	}
	take := min(n, opt.MaxSamples)
	b := newProfileBuilder(opt)
	for start := 0; start < take; start += opt.BatchSize {
		end := min(start+opt.BatchSize, take)
		x, err := stack(ds, start, end, n, take)
		if err != nil {
			return nil, fmt.Errorf("monitor.ProfileFromDataset: %w", err)
		}
		y, err := predict(x)
		if err != nil {
			return nil, fmt.Errorf("monitor.ProfileFromDataset: predicting rows %d..%d: %w", start, end-1, err)
		}
		if err := b.add(x, y); err != nil {
			return nil, fmt.Errorf("monitor.ProfileFromDataset: %w", err)
		}
	}
	return b.build()
}

// stack gathers sampled examples start..end-1 (of take evenly spaced among
// n) into one batch tensor.
func stack(ds data.Dataset, start, end, n, take int) (*tensor.Tensor, error) {
	var shape []int
	var fs []float32
	var is []int64
	isInt := false
	for k := start; k < end; k++ {
		i := int(int64(k) * int64(n) / int64(take))
		ex, err := ds.Get(i)
		if err != nil {
			return nil, fmt.Errorf("example %d: %w", i, err)
		}
		if ex.Input == nil {
			return nil, fmt.Errorf("example %d has no input", i)
		}
		if shape == nil {
			shape = ex.Input.Shape()
			isInt = ex.Input.DType() == tensor.Int64
		} else if !tensor.SameShape(shape, ex.Input.Shape()) {
			return nil, fmt.Errorf("example %d has input shape %v, earlier ones %v", i, ex.Input.Shape(), shape)
		}
		if isInt {
			is = append(is, ex.Input.Int64s()...)
		} else {
			fs = append(fs, ex.Input.Data()...)
		}
	}
	full := append([]int{end - start}, shape...)
	if isInt {
		return tensor.FromInt64(is, full...), nil
	}
	return tensor.FromSlice(fs, full...), nil
}

// profileBuilder accumulates reference rows.
type profileBuilder struct {
	opt     ProfileOptions
	spec    *InputSpec
	output  string
	values  [][]float64 // per feature
	classes []float64
	conf    []float64
	confSum float64
	rows    int
	feat    []float64
	row     []float32
}

func newProfileBuilder(opt ProfileOptions) *profileBuilder {
	return &profileBuilder{opt: opt.withDefaults()}
}

func (b *profileBuilder) add(inputs, outputs *tensor.Tensor) error {
	if inputs == nil || outputs == nil {
		return errors.New("monitor.BuildProfile: nil inputs or outputs")
	}
	is, os := inputs.Shape(), outputs.Shape()
	if len(is) < 2 || is[0] == 0 {
		return fmt.Errorf("monitor.BuildProfile: inputs of shape %v: want a non-empty batch [N, ...] with at least one dimension per row", is)
	}
	if len(os) == 0 || os[0] != is[0] {
		return fmt.Errorf("monitor.BuildProfile: outputs of shape %v for inputs of shape %v: want one output row per input row", os, is)
	}
	if b.spec == nil {
		spec, err := newInputSpec(is[1:], b.opt.Grid, b.opt.FeatureNames)
		if err != nil {
			return err
		}
		b.spec = spec
		b.values = make([][]float64, len(spec.Names))
		b.feat = make([]float64, len(spec.Names))
		b.output = b.opt.Output
		if b.output == "" {
			b.output = detectOutput(outputs)
		}
		switch b.output {
		case OutputLogits, OutputProbabilities:
			if len(os) != 2 || os[1] < 2 || outputs.DType() != tensor.Float32 {
				return fmt.Errorf("monitor.BuildProfile: output %q needs float32 outputs [N, K] with K >= 2, got %v %v", b.output, outputs.DType(), os)
			}
			b.classes = make([]float64, os[1])
			if len(b.opt.Labels) != 0 && len(b.opt.Labels) != os[1] {
				return fmt.Errorf("monitor.BuildProfile: %d labels for %d classes", len(b.opt.Labels), os[1])
			}
		case OutputNone:
		default:
			return fmt.Errorf("monitor.BuildProfile: output %q: want %q, %q or %q", b.output, OutputLogits, OutputProbabilities, OutputNone)
		}
	} else if !tensor.SameShape(is[1:], b.spec.Shape) {
		return fmt.Errorf("monitor.BuildProfile: inputs of shape %v, earlier rows had shape %v", is, b.spec.Shape)
	} else if b.classes != nil && (len(os) != 2 || os[1] != len(b.classes)) {
		return fmt.Errorf("monitor.BuildProfile: outputs of shape %v, earlier ones had %d classes", os, len(b.classes))
	}
	n := is[0]
	rl := b.spec.rowLen()
	flat := floats(inputs, &b.row)
	for r := 0; r < n; r++ {
		b.spec.extract(flat[r*rl:(r+1)*rl], b.feat)
		for i, v := range b.feat {
			b.values[i] = append(b.values[i], v)
		}
	}
	if b.classes != nil {
		out := outputs.Data()
		k := len(b.classes)
		probs := make([]float64, k)
		for r := 0; r < n; r++ {
			cls, c := classify(out[r*k:(r+1)*k], b.output == OutputLogits, probs)
			b.classes[cls]++
			b.conf = append(b.conf, c)
			b.confSum += c
		}
	}
	b.rows += n
	return nil
}

func (b *profileBuilder) build() (*Profile, error) {
	if b.rows == 0 || b.spec == nil {
		return nil, errors.New("monitor.BuildProfile: no rows")
	}
	p := &Profile{
		Format: ProfileFormat, Samples: b.rows, Created: time.Now().UTC().Format(time.RFC3339),
		Input: *b.spec, Output: b.output,
	}
	for i, name := range b.spec.Names {
		vs := b.values[i]
		var s float64
		for j, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("monitor.BuildProfile: feature %q of row %d is %v; inputs must be finite", name, j, v)
			}
			s += v
		}
		cuts := QuantileCuts(append([]float64(nil), vs...), b.opt.Bins)
		p.Features = append(p.Features, Feature{Name: name, Cuts: cuts, Freq: Proportions(cuts, vs), Mean: s / float64(len(vs))})
	}
	if b.classes != nil {
		p.Classes = &Classes{Labels: append([]string(nil), b.opt.Labels...), Freq: normalise(append([]float64(nil), b.classes...))}
		cuts := append([]float64(nil), ConfidenceCuts...)
		p.Confidence = &Confidence{Cuts: cuts, Freq: Proportions(cuts, b.conf), Mean: b.confSum / float64(b.rows)}
	}
	return p, nil
}

// floats returns t's values as float32 (converting int64 tensors into
// *buf).
func floats(t *tensor.Tensor, buf *[]float32) []float32 {
	if t.DType() == tensor.Float32 {
		return t.Data()
	}
	is := t.Int64s()
	if cap(*buf) < len(is) {
		*buf = make([]float32, len(is))
	}
	out := (*buf)[:len(is)]
	for i, v := range is {
		out[i] = float32(v)
	}
	return out
}

// detectOutput guesses how to read outputs (see ProfileOptions.Output).
func detectOutput(t *tensor.Tensor) string {
	s := t.Shape()
	if t.DType() != tensor.Float32 || len(s) != 2 || s[1] < 2 {
		return OutputNone
	}
	d := t.Data()
	k := s[1]
	for r := 0; r < s[0]; r++ {
		var sum float64
		for _, v := range d[r*k : (r+1)*k] {
			if v < 0 || v > 1 {
				return OutputLogits
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-3 {
			return OutputLogits
		}
	}
	return OutputProbabilities
}

// classify returns the predicted class of one output row and its
// probability (softmax first for logits). probs is scratch of len(row).
func classify(row []float32, logits bool, probs []float64) (int, float64) {
	best := 0
	for i, v := range row {
		if v > row[best] || math.IsNaN(float64(row[best])) {
			best = i
		}
	}
	if !logits {
		return best, float64(row[best])
	}
	m := float64(row[best])
	var z float64
	for i, v := range row {
		probs[i] = math.Exp(float64(v) - m)
		z += probs[i]
	}
	if z == 0 || math.IsNaN(z) || math.IsInf(z, 0) {
		return best, 0
	}
	return best, 1 / z
}

// Validate checks a profile's structure: the format, the input spec, and
// that every histogram has ascending finite cuts and len(cuts)+1
// non-negative shares.
func (p *Profile) Validate() error {
	if p.Format != ProfileFormat {
		return fmt.Errorf("profile format %d is not supported (want %d)", p.Format, ProfileFormat)
	}
	if err := p.Input.validate(); err != nil {
		return err
	}
	if len(p.Features) != len(p.Input.Names) {
		return fmt.Errorf("%d features for %d feature names", len(p.Features), len(p.Input.Names))
	}
	for i, f := range p.Features {
		if err := checkHist(f.Cuts, f.Freq); err != nil {
			return fmt.Errorf("feature %q: %v", f.Name, err)
		}
		if f.Name != p.Input.Names[i] {
			return fmt.Errorf("feature %d is %q but input.names[%d] is %q", i, f.Name, i, p.Input.Names[i])
		}
	}
	switch p.Output {
	case OutputNone:
	case OutputLogits, OutputProbabilities:
		if p.Classes == nil || p.Confidence == nil {
			return fmt.Errorf("output %q needs \"classes\" and \"confidence\"", p.Output)
		}
		if len(p.Classes.Freq) < 2 {
			return fmt.Errorf("classes.freq has %d classes, want at least 2", len(p.Classes.Freq))
		}
		if len(p.Classes.Labels) != 0 && len(p.Classes.Labels) != len(p.Classes.Freq) {
			return fmt.Errorf("classes has %d labels for %d classes", len(p.Classes.Labels), len(p.Classes.Freq))
		}
		if err := checkShares(p.Classes.Freq); err != nil {
			return fmt.Errorf("classes: %v", err)
		}
		if err := checkHist(p.Confidence.Cuts, p.Confidence.Freq); err != nil {
			return fmt.Errorf("confidence: %v", err)
		}
	default:
		return fmt.Errorf("output %q: want %q, %q or %q", p.Output, OutputLogits, OutputProbabilities, OutputNone)
	}
	return nil
}

func checkHist(cuts, freq []float64) error {
	if len(freq) != len(cuts)+1 {
		return fmt.Errorf("%d shares for %d cuts (want %d)", len(freq), len(cuts), len(cuts)+1)
	}
	for i, c := range cuts {
		if math.IsNaN(c) || math.IsInf(c, 0) || (i > 0 && c <= cuts[i-1]) {
			return fmt.Errorf("cuts %v must be finite and strictly ascending", cuts)
		}
	}
	return checkShares(freq)
}

func checkShares(freq []float64) error {
	for _, f := range freq {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("shares %v must be finite and non-negative", freq)
		}
	}
	return nil
}

// Marshal returns the profile as JSON.
func (p *Profile) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("monitor: invalid profile: %v", err)
	}
	return json.Marshal(p)
}

// ParseProfile decodes and validates profile JSON (unknown fields are
// errors). It never panics.
func ParseProfile(b []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("monitor: profile: %v", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("monitor: profile: %v", err)
	}
	return &p, nil
}

// Attach stores the profile in pkg's Monitor field (saved in model.json by
// model.Save). It checks that the profile fits the package's first input.
func (p *Profile) Attach(pkg *model.Package) error {
	if pkg == nil {
		return errors.New("monitor: Attach: nil package")
	}
	if len(pkg.Signature.Inputs) > 0 {
		in := pkg.Signature.Inputs[0].Shape
		if len(in) != len(p.Input.Shape)+1 || !(model.TensorSpec{Shape: in[1:]}).Matches(p.Input.Shape) {
			return fmt.Errorf("monitor: Attach: the profile's rows have shape %v, the package input %q has shape %v", p.Input.Shape, pkg.Signature.Inputs[0].Name, in)
		}
	}
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	pkg.Monitor = b
	return nil
}

// ErrNoProfile is returned by FromPackage for a package without a profile.
var ErrNoProfile = errors.New("the model package has no monitor profile (train it with a profile, e.g. `deepgo train mnist --profile`)")

// FromPackage reads the profile stored in pkg (ErrNoProfile when there is
// none).
func FromPackage(pkg *model.Package) (*Profile, error) {
	if pkg == nil || len(bytes.TrimSpace(pkg.Monitor)) == 0 || strings.TrimSpace(string(pkg.Monitor)) == "null" {
		return nil, ErrNoProfile
	}
	return ParseProfile(pkg.Monitor)
}
