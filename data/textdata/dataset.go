package textdata

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Classes returns the sorted set of distinct labels of the given data. If
// every label is an integer the order is numeric ("2" before "10"),
// otherwise lexicographic. The result does not depend on the order of the
// examples.
func Classes(ds ...*Data) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range ds {
		for _, e := range d.Examples {
			if !seen[e.Label] {
				seen[e.Label] = true
				out = append(out, e.Label)
			}
		}
	}
	SortLabels(out)
	return out
}

// SortLabels sorts labels in place as Classes does.
func SortLabels(labels []string) {
	nums := make(map[string]int64, len(labels))
	for _, l := range labels {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			slices.Sort(labels)
			return
		}
		nums[l] = v
	}
	slices.SortFunc(labels, func(a, b string) int {
		if nums[a] != nums[b] {
			if nums[a] < nums[b] {
				return -1
			}
			return 1
		}
		if a < b { // "1" and "01"
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
}

// DatasetOptions configures NewDataset.
type DatasetOptions struct {
	// MaxLen is the longest sequence, special tokens included; longer
	// texts are truncated. 0 means no limit.
	MaxLen int
	// AddSpecial frames each sequence as [CLS] ... [SEP].
	AddSpecial bool
	// FixedLen pads every example to MaxLen (which must be > 0), so that
	// data.Loader can stack them; the attention mask is ids != text.PadID.
	FixedLen bool
}

// Dataset is a tokenized text-classification dataset: example i is the
// int64 id sequence of text i (shape [T], T its length, or MaxLen with
// FixedLen) and its int64 class index (a scalar). It implements
// data.Dataset and is safe for concurrent use.
type Dataset struct {
	ids     [][]int64
	targets []int64
	classes []string
	opt     DatasetOptions
}

// NewDataset tokenizes the examples of d with tok. Labels are mapped to
// their index in classes (usually Classes(train)); a label not in classes
// is an error naming its line, as is a text too long for MaxLen (never:
// truncation is always on). Invalid options (negative MaxLen, FixedLen
// without MaxLen, MaxLen 1 with AddSpecial) are errors too.
func NewDataset(d *Data, tok text.Tokenizer, classes []string, opt DatasetOptions) (*Dataset, error) {
	if opt.MaxLen < 0 || (opt.FixedLen && opt.MaxLen == 0) || (opt.AddSpecial && opt.MaxLen == 1) {
		return nil, fmt.Errorf("textdata.NewDataset: bad options %+v (MaxLen must be >= 0, > 0 with FixedLen, and >= 2 with AddSpecial)", opt)
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	enc := text.EncodeOptions{MaxLen: opt.MaxLen, Truncation: true, AddSpecial: opt.AddSpecial}
	ds := &Dataset{ids: make([][]int64, len(d.Examples)), targets: make([]int64, len(d.Examples)), classes: slices.Clone(classes), opt: opt}
	for i, e := range d.Examples {
		c, ok := index[e.Label]
		if !ok {
			return nil, fmt.Errorf("textdata.NewDataset: line %d: label %q is not one of the %d classes", e.Line, e.Label, len(classes))
		}
		ids, err := text.EncodeSequence(tok, e.Text, enc)
		if err != nil {
			return nil, fmt.Errorf("textdata.NewDataset: line %d: %w", e.Line, err)
		}
		n := len(ids)
		if opt.FixedLen {
			n = opt.MaxLen
		}
		row := make([]int64, n)
		for j, v := range ids {
			row[j] = int64(v)
		}
		ds.ids[i], ds.targets[i] = row, int64(c)
	}
	return ds, nil
}

// Len returns the number of examples.
func (ds *Dataset) Len() int { return len(ds.ids) }

// Get returns example i: Input int64 [T], Target an int64 scalar.
func (ds *Dataset) Get(i int) (data.Example, error) {
	if i < 0 || i >= len(ds.ids) {
		return data.Example{}, fmt.Errorf("textdata.Dataset: index %d out of range [0, %d)", i, len(ds.ids))
	}
	row := ds.ids[i]
	return data.Example{Input: tensor.FromInt64(row[:len(row):len(row)], len(row)), Target: tensor.FromInt64([]int64{ds.targets[i]})}, nil
}

// Classes returns the class names; target c is Classes()[c].
func (ds *Dataset) Classes() []string { return slices.Clone(ds.classes) }

// Targets returns the class index of every example.
func (ds *Dataset) Targets() []int64 { return slices.Clone(ds.targets) }

// IDs returns the token ids of example i (shared; do not modify).
func (ds *Dataset) IDs(i int) []int64 { return ds.ids[i] }

// ClassCounts returns the number of examples of each class.
func (ds *Dataset) ClassCounts() []int {
	out := make([]int, len(ds.classes))
	for _, t := range ds.targets {
		out[t]++
	}
	return out
}

// Batch is a padded batch of examples.
type Batch struct {
	// IDs is int64 [B, T], padded with text.PadID to the longest example.
	IDs *tensor.Tensor
	// Mask is float32 [B, T]: 1 for a token, 0 for padding.
	Mask *tensor.Tensor
	// Lengths are the unpadded lengths.
	Lengths []int
	// Target is int64 [B].
	Target *tensor.Tensor
	// Indices are the dataset indices, in batch order.
	Indices []int
}

// Size returns the number of examples in the batch.
func (b *Batch) Size() int { return len(b.Indices) }

// Collate pads the given examples into a Batch. With FixedLen, the lengths
// count the non-padding ids.
func (ds *Dataset) Collate(indices []int) *Batch {
	width := 0
	lens := make([]int, len(indices))
	for k, i := range indices {
		row := ds.ids[i]
		l := len(row)
		if ds.opt.FixedLen {
			for l > 0 && row[l-1] == text.PadID {
				l--
			}
		}
		lens[k] = l
		width = max(width, l)
	}
	ids := make([]int64, len(indices)*width)
	mask := make([]float32, len(indices)*width)
	tg := make([]int64, len(indices))
	for k, i := range indices {
		copy(ids[k*width:k*width+lens[k]], ds.ids[i][:lens[k]])
		for j := range lens[k] {
			mask[k*width+j] = 1
		}
		tg[k] = ds.targets[i]
	}
	return &Batch{
		IDs:     tensor.FromInt64(ids, len(indices), width),
		Mask:    tensor.FromSlice(mask, len(indices), width),
		Lengths: lens,
		Target:  tensor.FromInt64(tg, len(indices)),
		Indices: slices.Clone(indices),
	}
}

// BatchConfig configures Dataset.Batches.
type BatchConfig struct {
	// BatchSize is the number of examples per batch (default 32).
	BatchSize int
	// Shuffle visits examples in the order rand.New(rand.NewPCG(Seed,
	// epoch)).Perm(n), the same order data.Loader uses.
	Shuffle bool
	// Seed fixes the shuffle order.
	Seed uint64
	// DropLast drops a last batch smaller than BatchSize.
	DropLast bool
}

// Batches returns the batches of one epoch, each padded to its longest
// example. It panics on a negative BatchSize.
func (ds *Dataset) Batches(cfg BatchConfig, epoch int) iter.Seq[*Batch] {
	if cfg.BatchSize < 0 {
		panic(fmt.Sprintf("textdata.Dataset.Batches: negative BatchSize %d", cfg.BatchSize))
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 32
	}
	n := len(ds.ids)
	var order []int
	if cfg.Shuffle {
		order = rand.New(rand.NewPCG(cfg.Seed, uint64(epoch))).Perm(n)
	} else {
		order = make([]int, n)
		for i := range order {
			order[i] = i
		}
	}
	return func(yield func(*Batch) bool) {
		for lo := 0; lo < n; lo += cfg.BatchSize {
			hi := min(lo+cfg.BatchSize, n)
			if cfg.DropLast && hi-lo < cfg.BatchSize {
				return
			}
			if !yield(ds.Collate(order[lo:hi])) {
				return
			}
		}
	}
}
