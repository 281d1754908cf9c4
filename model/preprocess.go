package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Preprocessing op names.
const (
	// OpScale multiplies every input value by Factor (e.g. 1/255).
	OpScale = "scale"
	// OpNormalize subtracts Mean[c] and divides by Std[c] per channel c (the
	// channel axis is 1 of a batched [N, C, ...] input), as torchvision's Normalize.
	OpNormalize = "normalize"
	// OpImage decodes an image and fits it to Height×Width×Channels (see
	// docs/model-format.md); it is applied by the CLI and the server.
	OpImage = "image"
	// OpStandardize turns the named numeric Columns of a record into
	// (value-Mean[i])/Std[i], one feature per column.
	OpStandardize = "standardize"
	// OpOneHot turns the string Column of a record into len(Categories)
	// features: 1 at the matching category, 0 elsewhere (all 0 for a value
	// not in Categories).
	OpOneHot = "one_hot"
	// OpTokenize turns a raw text into int64 token ids with the embedded
	// Tokenizer (a deepgo-tokenizer JSON file, see package text), at most
	// MaxLen ids (longer texts are truncated), framed as [CLS] ... [SEP]
	// when AddSpecial; a batch is padded with text.PadID. It is applied by
	// the CLI (package textmodel).
	OpTokenize = "tokenize"
)

// PreprocessOp is one step of a package's declarative preprocessing: the
// op name and the fields that op uses (the others stay zero). The list in a
// package is applied in order by whoever feeds the model: the tabular ops
// (standardize, one_hot) by Tabular here, the image ops by the CLI and server.
type PreprocessOp struct {
	Op string `json:"op"`
	// Factor is scale's multiplier.
	Factor float64 `json:"factor,omitempty"`
	// Mean and Std are per channel (normalize) or per column (standardize).
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
	// Height, Width and Channels (1 gray, 3 RGB) are image's output size.
	Height   int `json:"height,omitempty"`
	Width    int `json:"width,omitempty"`
	Channels int `json:"channels,omitempty"`
	// InvertIfLightBackground makes image invert light-background pictures
	// so that strokes are bright on dark, as in MNIST.
	InvertIfLightBackground bool `json:"invert_if_light_background,omitempty"`
	// Center is image's placement: "" or "none" (resize the whole picture),
	// "box" (centre the bounding box) or "mass" (centre the centre of mass,
	// as MNIST).
	Center string `json:"center,omitempty"`
	// Columns are standardize's record fields, in feature order.
	Columns []string `json:"columns,omitempty"`
	// Column and Categories are one_hot's record field and its values.
	Column     string   `json:"column,omitempty"`
	Categories []string `json:"categories,omitempty"`
	// Tokenizer is tokenize's tokenizer file, embedded verbatim.
	Tokenizer json.RawMessage `json:"tokenizer,omitempty"`
	// MaxLen is tokenize's longest id sequence, special tokens included.
	MaxLen int `json:"max_len,omitempty"`
	// AddSpecial makes tokenize frame the ids as [CLS] ... [SEP].
	AddSpecial bool `json:"add_special,omitempty"`
}

// fields lists the JSON names of op's non-zero option fields.
func (op PreprocessOp) fields() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(op.Factor != 0, "factor")
	add(op.Mean != nil, "mean")
	add(op.Std != nil, "std")
	add(op.Height != 0, "height")
	add(op.Width != 0, "width")
	add(op.Channels != 0, "channels")
	add(op.InvertIfLightBackground, "invert_if_light_background")
	add(op.Center != "", "center")
	add(op.Columns != nil, "columns")
	add(op.Column != "", "column")
	add(op.Categories != nil, "categories")
	add(op.Tokenizer != nil, "tokenizer")
	add(op.MaxLen != 0, "max_len")
	add(op.AddSpecial, "add_special")
	return out
}

var opFields = map[string][]string{
	OpScale:       {"factor"},
	OpNormalize:   {"mean", "std"},
	OpImage:       {"height", "width", "channels", "invert_if_light_background", "center"},
	OpStandardize: {"columns", "mean", "std"},
	OpOneHot:      {"column", "categories"},
	OpTokenize:    {"tokenizer", "max_len", "add_special"},
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func checkMeanStd(mean, std []float64, n int, what string) error {
	if len(mean) != n || len(std) != n {
		return fmt.Errorf("mean (%d values) and std (%d values) must have one value per %s (%d)", len(mean), len(std), what, n)
	}
	for i := range mean {
		if !finite(mean[i]) || !finite(std[i]) || std[i] <= 0 {
			return fmt.Errorf("%s %d: mean %v and std %v must be finite with std > 0", what, i, mean[i], std[i])
		}
	}
	return nil
}

func unique(xs []string, what string) error {
	seen := make(map[string]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return fmt.Errorf("%s %q listed twice", what, x)
		}
		seen[x] = true
	}
	return nil
}

// Validate checks that op is known and its fields make sense.
func (op PreprocessOp) Validate() error {
	allowed, ok := opFields[op.Op]
	if !ok {
		return fmt.Errorf("unknown preprocessing op %q", op.Op)
	}
	for _, f := range op.fields() {
		found := false
		for _, a := range allowed {
			found = found || a == f
		}
		if !found {
			return fmt.Errorf("op %s does not take %q", op.Op, f)
		}
	}
	switch op.Op {
	case OpScale:
		if !finite(op.Factor) || op.Factor == 0 {
			return fmt.Errorf("op scale needs a finite non-zero factor, got %v", op.Factor)
		}
	case OpNormalize:
		if len(op.Mean) == 0 {
			return fmt.Errorf("op normalize needs mean and std")
		}
		if err := checkMeanStd(op.Mean, op.Std, len(op.Mean), "channel"); err != nil {
			return fmt.Errorf("op normalize: %v", err)
		}
	case OpImage:
		if op.Height <= 0 || op.Width <= 0 || op.Height > maxGeom || op.Width > maxGeom {
			return fmt.Errorf("op image: height %d and width %d must be in [1, %d]", op.Height, op.Width, maxGeom)
		}
		if op.Channels != 1 && op.Channels != 3 {
			return fmt.Errorf("op image: channels must be 1 or 3, got %d", op.Channels)
		}
		switch op.Center {
		case "", "none", "box", "mass":
		default:
			return fmt.Errorf("op image: center must be \"none\", \"box\" or \"mass\", got %q", op.Center)
		}
	case OpStandardize:
		if len(op.Columns) == 0 {
			return fmt.Errorf("op standardize needs columns")
		}
		if err := unique(op.Columns, "column"); err != nil {
			return fmt.Errorf("op standardize: %v", err)
		}
		if err := checkMeanStd(op.Mean, op.Std, len(op.Columns), "column"); err != nil {
			return fmt.Errorf("op standardize: %v", err)
		}
	case OpOneHot:
		if op.Column == "" || len(op.Categories) == 0 {
			return fmt.Errorf("op one_hot needs a column and categories")
		}
		if err := unique(op.Categories, "category"); err != nil {
			return fmt.Errorf("op one_hot column %q: %v", op.Column, err)
		}
	case OpTokenize:
		if op.MaxLen <= 0 || (op.AddSpecial && op.MaxLen < 2) {
			return fmt.Errorf("op tokenize needs max_len > 0 (at least 2 with add_special), got %d", op.MaxLen)
		}
		if len(op.Tokenizer) == 0 {
			return fmt.Errorf("op tokenize needs a tokenizer")
		}
		if _, err := text.Parse(op.Tokenizer); err != nil {
			return fmt.Errorf("op tokenize: %v", err)
		}
	}
	return nil
}

// IsTabular reports whether op turns record fields into features
// (standardize, one_hot).
func (op PreprocessOp) IsTabular() bool { return op.Op == OpStandardize || op.Op == OpOneHot }

// NumFeatures returns the number of features a tabular op produces (0 for others).
func (op PreprocessOp) NumFeatures() int {
	switch op.Op {
	case OpStandardize:
		return len(op.Columns)
	case OpOneHot:
		return len(op.Categories)
	}
	return 0
}

// TabularWidth returns the number of features Tabular produces for ops, or an
// error if an op is invalid or not tabular.
func TabularWidth(ops []PreprocessOp) (int, error) {
	n := 0
	for i, op := range ops {
		if err := op.Validate(); err != nil {
			return 0, fmt.Errorf("preprocessing[%d]: %v", i, err)
		}
		if !op.IsTabular() {
			return 0, fmt.Errorf("preprocessing[%d]: op %s is not a tabular op", i, op.Op)
		}
		n += op.NumFeatures()
	}
	return n, nil
}

// AppendFeatures appends the features of one record (field name → string
// value) for the tabular op to dst. A missing field, or a standardize field
// that is not a finite number, is an error naming the field; a one_hot value
// outside the categories gives all zeros.
func (op PreprocessOp) AppendFeatures(dst []float32, record map[string]string) ([]float32, error) {
	switch op.Op {
	case OpStandardize:
		if len(op.Mean) != len(op.Columns) || len(op.Std) != len(op.Columns) {
			return dst, fmt.Errorf("op standardize: %d columns but %d means and %d stds", len(op.Columns), len(op.Mean), len(op.Std))
		}
		for i, c := range op.Columns {
			s, ok := record[c]
			if !ok {
				return dst, fmt.Errorf("standardize: record has no field %q", c)
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || !finite(v) {
				return dst, fmt.Errorf("standardize: field %q: %q is not a finite number", c, s)
			}
			dst = append(dst, float32((v-op.Mean[i])/op.Std[i]))
		}
		return dst, nil
	case OpOneHot:
		s, ok := record[op.Column]
		if !ok {
			return dst, fmt.Errorf("one_hot: record has no field %q", op.Column)
		}
		s = strings.TrimSpace(s)
		for _, c := range op.Categories {
			v := float32(0)
			if c == s {
				v = 1
			}
			dst = append(dst, v)
		}
		return dst, nil
	}
	return dst, fmt.Errorf("op %s is not a tabular op", op.Op)
}

// Tabular turns one record into a feature vector by applying ops in order,
// concatenating their features. Every op must be tabular.
func Tabular(ops []PreprocessOp, record map[string]string) ([]float32, error) {
	n, err := TabularWidth(ops)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 0, n)
	for i, op := range ops {
		if out, err = op.AppendFeatures(out, record); err != nil {
			return nil, fmt.Errorf("preprocessing[%d]: %v", i, err)
		}
	}
	return out, nil
}

// TabularBatch turns records into a [len(records), features] float32 tensor
// with Tabular. Errors name the record's index.
func TabularBatch(ops []PreprocessOp, records []map[string]string) (*tensor.Tensor, error) {
	n, err := TabularWidth(ops)
	if err != nil {
		return nil, err
	}
	data := make([]float32, 0, n*len(records))
	for r, rec := range records {
		for i, op := range ops {
			if data, err = op.AppendFeatures(data, rec); err != nil {
				return nil, fmt.Errorf("record %d: preprocessing[%d]: %v", r, i, err)
			}
		}
	}
	return tensor.FromSlice(data, len(records), n), nil
}
