package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// FormatVersion is the model.json format version this package writes and
// the newest it reads.
const FormatVersion = 1

// File names inside a package directory.
const (
	ManifestFile = "model.json"
	WeightsFile  = "weights.safetensors"
)

// Data types of signature tensors.
const (
	DTypeFloat32 = "float32"
	DTypeInt64   = "int64"
)

// TensorSpec names a model input or output, its dtype ("float32" or
// "int64") and its shape, with -1 for a dimension of any size (the batch).
type TensorSpec struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

// Signature lists a model's inputs and outputs. Predict takes the first
// input and returns the first output.
type Signature struct {
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
}

// Manifest is the content of model.json.
type Manifest struct {
	// FormatVersion is FormatVersion when written by this package.
	FormatVersion int `json:"format_version"`
	// Name is a short human-readable model name.
	Name string `json:"name"`
	// Architecture rebuilds the module with the layer registry.
	Architecture LayerSpec `json:"architecture"`
	// Signature describes the inputs and outputs.
	Signature Signature `json:"signature"`
	// Preprocessing is applied in order to raw inputs before Predict.
	Preprocessing []PreprocessOp `json:"preprocessing,omitempty"`
	// Labels names the output classes, index by index.
	Labels []string `json:"labels,omitempty"`
	// Metadata is free-form: epochs, metrics, seed, created time, deepgo version…
	Metadata map[string]any `json:"metadata,omitempty"`
	// Monitor holds an optional drift reference profile, kept verbatim.
	Monitor json.RawMessage `json:"monitor,omitempty"`
}

// lineCol converts a byte offset in data to a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// ParseManifest decodes and validates model.json content. Unknown fields
// are errors (they are usually typos); JSON errors carry the line and column.
// It never panics.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			l, c := lineCol(data, se.Offset-1) // Offset is just past the bad byte
			return nil, fmt.Errorf("line %d, column %d: %v", l, c, se)
		case errors.As(err, &te):
			l, c := lineCol(data, te.Offset)
			return nil, fmt.Errorf("line %d, column %d: %s must be %v, not a JSON %s", l, c, fieldName(te), te.Type, te.Value)
		case err == io.EOF:
			return nil, errors.New("empty file")
		case errors.Is(err, io.ErrUnexpectedEOF):
			l, c := lineCol(data, int64(len(data)))
			return nil, fmt.Errorf("line %d, column %d: unexpected end of JSON", l, c)
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		l, c := lineCol(data, dec.InputOffset())
		return nil, fmt.Errorf("line %d, column %d: unexpected data after the JSON object", l, c)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func fieldName(te *json.UnmarshalTypeError) string {
	if te.Field == "" {
		return "value"
	}
	return fmt.Sprintf("field %q", te.Field)
}

// Validate checks the manifest's version, signature, preprocessing and
// labels (the architecture is checked by Build).
func (m *Manifest) Validate() error {
	switch {
	case m.FormatVersion == 0:
		return errors.New("missing \"format_version\"")
	case m.FormatVersion < 0 || m.FormatVersion > FormatVersion:
		return fmt.Errorf("format_version %d is not supported (this deepgo reads up to %d)", m.FormatVersion, FormatVersion)
	}
	if m.Architecture.Type == "" {
		return errors.New("missing \"architecture\" (or its \"type\")")
	}
	if err := m.Signature.Validate(); err != nil {
		return err
	}
	for i, op := range m.Preprocessing {
		if err := op.Validate(); err != nil {
			return fmt.Errorf("preprocessing[%d]: %v", i, err)
		}
	}
	if len(m.Labels) > 0 {
		out := m.Signature.Outputs[0].Shape
		if n := len(out); n > 0 && out[n-1] != -1 && out[n-1] != len(m.Labels) {
			return fmt.Errorf("%d labels but output %q has %d classes (shape %v)", len(m.Labels), m.Signature.Outputs[0].Name, out[n-1], out)
		}
	}
	return nil
}

// Validate checks that there is at least one input and one output, with
// unique non-empty names, known dtypes and dimensions that are positive or -1.
func (s Signature) Validate() error {
	if len(s.Inputs) == 0 || len(s.Outputs) == 0 {
		return fmt.Errorf("signature needs at least one input and one output (has %d and %d)", len(s.Inputs), len(s.Outputs))
	}
	seen := map[string]bool{}
	for kind, list := range map[string][]TensorSpec{"inputs": s.Inputs, "outputs": s.Outputs} {
		for i, t := range list {
			where := fmt.Sprintf("signature.%s[%d]", kind, i)
			if t.Name == "" {
				return fmt.Errorf("%s: missing name", where)
			}
			if seen[kind+"/"+t.Name] {
				return fmt.Errorf("%s: name %q used twice", where, t.Name)
			}
			seen[kind+"/"+t.Name] = true
			if t.DType != DTypeFloat32 && t.DType != DTypeInt64 {
				return fmt.Errorf("%s (%s): dtype must be %q or %q, got %q", where, t.Name, DTypeFloat32, DTypeInt64, t.DType)
			}
			if len(t.Shape) == 0 {
				return fmt.Errorf("%s (%s): missing shape", where, t.Name)
			}
			for _, d := range t.Shape {
				if d == 0 || d < -1 {
					return fmt.Errorf("%s (%s): shape %v: dimensions must be positive or -1", where, t.Name, t.Shape)
				}
			}
		}
	}
	return nil
}

// Matches reports whether shape fits the spec: same rank, equal dimensions
// except where the spec has -1.
func (t TensorSpec) Matches(shape []int) bool {
	if len(shape) != len(t.Shape) {
		return false
	}
	for i, d := range t.Shape {
		if d != -1 && d != shape[i] {
			return false
		}
	}
	return true
}
