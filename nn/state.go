package nn

import (
	"fmt"
	"sort"
	"strings"

	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// StateDict returns m's parameters and buffers by dotted name. The tensors
// are m's own (not copies): save them, or copy from them, but do not resize
// them. A tensor shared by two fields appears under both names, as in PyTorch.
func StateDict(m Module) map[string]*tensor.Tensor {
	sd := map[string]*tensor.Tensor{}
	walk(m, "", &visitor{tensor: func(name string, t *tensor.Tensor, _ bool) {
		sd[name] = t
	}}, map[uintptr]bool{})
	return sd
}

// ShapeMismatch is a state dict entry whose shape differs from the model's.
type ShapeMismatch struct {
	Key        string
	ModelShape []int
	StateShape []int // nil when the state dict holds a nil tensor
}

// LoadError lists every problem LoadStateDict found.
type LoadError struct {
	Missing    []string // in the model, not in the state dict (strict mode only)
	Unexpected []string // in the state dict, not in the model (strict mode only)
	Mismatched []ShapeMismatch
}

// Error lists the problems in one message: missing and unexpected keys, and
// for each mis-shaped key the state dict's and the model's shapes.
func (e *LoadError) Error() string {
	var b strings.Builder
	n := len(e.Missing) + len(e.Unexpected) + len(e.Mismatched)
	fmt.Fprintf(&b, "nn.LoadStateDict: %d problem(s)", n)
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "; missing keys: %s", strings.Join(e.Missing, ", "))
	}
	if len(e.Unexpected) > 0 {
		fmt.Fprintf(&b, "; unexpected keys: %s", strings.Join(e.Unexpected, ", "))
	}
	for _, mm := range e.Mismatched {
		if mm.StateShape == nil {
			fmt.Fprintf(&b, "; nil tensor for %s: model has shape %v", mm.Key, mm.ModelShape)
			continue
		}
		fmt.Fprintf(&b, "; size mismatch for %s: state dict has shape %v, model has shape %v", mm.Key, mm.StateShape, mm.ModelShape)
	}
	return b.String()
}

// LoadStateDict copies the tensors of sd into m's parameters and buffers (in
// place, so optimizers holding them keep working). It checks everything
// before copying anything: a key whose shape differs from the model's is
// always an error; in strict mode keys of m missing from sd and keys of sd
// unknown to m are errors too, otherwise they are ignored. The returned
// *LoadError lists every problem at once. Float values loaded into an int64
// buffer are truncated; int64 values loaded into a float tensor are converted.
func LoadStateDict(m Module, sd map[string]*tensor.Tensor, strict bool) error {
	own := StateDict(m)
	e := &LoadError{}
	for _, k := range sortedKeys(own) {
		src, ok := sd[k]
		if !ok {
			if strict {
				e.Missing = append(e.Missing, k)
			}
			continue
		}
		dst := own[k]
		if src == nil {
			e.Mismatched = append(e.Mismatched, ShapeMismatch{Key: k, ModelShape: dst.Shape(), StateShape: nil})
			continue
		}
		if !tensor.SameShape(src.Shape(), dst.Shape()) {
			e.Mismatched = append(e.Mismatched, ShapeMismatch{Key: k, ModelShape: dst.Shape(), StateShape: src.Shape()})
		}
	}
	if strict {
		for _, k := range sortedKeys(sd) {
			if _, ok := own[k]; !ok {
				e.Unexpected = append(e.Unexpected, k)
			}
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Mismatched) > 0 {
		return e
	}
	for k, dst := range own {
		src, ok := sd[k]
		if !ok {
			continue
		}
		if src.DType() != dst.DType() {
			if dst.DType() == tensor.Int64 {
				src = src.Long()
			} else {
				src = src.Float()
			}
		}
		dst.CopyFrom(src)
	}
	return nil
}

func sortedKeys(m map[string]*tensor.Tensor) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// SaveStateDict writes sd to a safetensors file, atomically (a crash never
// leaves a half-written file at path). Float32 tensors are stored as F32 and
// int64 tensors (BatchNorm's num_batches_tracked) as I64, so PyTorch's
// safetensors.torch.load_file reads the file back.
func SaveStateDict(path string, sd map[string]*tensor.Tensor) error {
	ts := make(map[string]safetensors.Tensor, len(sd))
	for k, t := range sd {
		if t == nil {
			return fmt.Errorf("nn.SaveStateDict: %s: nil tensor", k)
		}
		if t.DType() == tensor.Int64 {
			ts[k] = safetensors.I64(t.Int64s(), t.Shape()...)
		} else {
			ts[k] = safetensors.F32(t.Data(), t.Shape()...)
		}
	}
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("nn.SaveStateDict: %w", err)
	}
	return nil
}

// LoadStateDictFile reads a state dict from a safetensors file, such as one
// written by SaveStateDict or by PyTorch's safetensors.torch.save_file.
// Floating-point tensors (F32, F64, F16, BF16) become float32 tensors and
// integer tensors (I64, I32, U64, U8, BOOL) become int64 tensors.
func LoadStateDictFile(path string) (map[string]*tensor.Tensor, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nn.LoadStateDictFile: %w", err)
	}
	sd := make(map[string]*tensor.Tensor, len(f.Tensors))
	for k, st := range f.Tensors {
		switch st.DType {
		case "F32", "F64", "F16", "BF16":
			v, err := st.Float32s()
			if err != nil {
				return nil, fmt.Errorf("nn.LoadStateDictFile: %s: %w", k, err)
			}
			sd[k] = tensor.FromSlice(v, st.Shape...)
		case "I64", "I32", "U64", "U8", "BOOL":
			v, err := st.Int64s()
			if err != nil {
				return nil, fmt.Errorf("nn.LoadStateDictFile: %s: %w", k, err)
			}
			sd[k] = tensor.FromInt64(v, st.Shape...)
		default:
			return nil, fmt.Errorf("nn.LoadStateDictFile: %s: unsupported dtype %s", k, st.DType)
		}
	}
	return sd, nil
}

// Save writes m's state dict to a safetensors file (see SaveStateDict).
func Save(path string, m Module) error { return SaveStateDict(path, StateDict(m)) }

// Load reads a safetensors file into m (see LoadStateDictFile and LoadStateDict).
func Load(path string, m Module, strict bool) error {
	sd, err := LoadStateDictFile(path)
	if err != nil {
		return err
	}
	return LoadStateDict(m, sd, strict)
}
