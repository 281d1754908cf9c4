package textmodel

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// MaxTextBytes is the most bytes of one text that Encoder reads: longer
// texts are cut (at a UTF-8 boundary) before tokenizing. A text gives at
// most MaxLen ids anyway; the cap bounds the normalisation work.
const MaxTextBytes = 1 << 16

// TokenizerJSON returns the deepgo-tokenizer JSON of tok (as text.Load
// reads it).
func TokenizerJSON(tok text.Tokenizer) ([]byte, error) {
	dir, err := os.MkdirTemp("", "deepgo-tokenizer")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "tokenizer.json")
	if err := tok.Save(p); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// TokenizeOp returns the model.OpTokenize preprocessing op that embeds tok,
// cutting texts to maxLen ids (including [CLS] and [SEP] with addSpecial).
func TokenizeOp(tok text.Tokenizer, maxLen int, addSpecial bool) (model.PreprocessOp, error) {
	js, err := TokenizerJSON(tok)
	if err != nil {
		return model.PreprocessOp{}, err
	}
	op := model.PreprocessOp{Op: model.OpTokenize, Tokenizer: js, MaxLen: maxLen, AddSpecial: addSpecial}
	if err := op.Validate(); err != nil {
		return model.PreprocessOp{}, err
	}
	return op, nil
}

// IsTextModel reports whether a package's preprocessing is one tokenize op
// (its raw inputs are texts).
func IsTextModel(ops []model.PreprocessOp) bool {
	return len(ops) == 1 && ops[0].Op == model.OpTokenize
}

// TextEncoder turns raw texts into the id batches a text model package takes.
// It is safe for concurrent use.
type TextEncoder struct {
	// Tokenizer is the package's tokenizer.
	Tokenizer text.Tokenizer
	// Options are the encoding options (truncation on, padding to the
	// longest text of a batch).
	Options text.EncodeOptions
}

// NewTextEncoder reads the tokenize op of a package's preprocessing.
func NewTextEncoder(ops []model.PreprocessOp) (*TextEncoder, error) {
	if !IsTextModel(ops) {
		return nil, errors.New("textmodel: not a text model (its preprocessing is not one tokenize op)")
	}
	op := ops[0]
	if err := op.Validate(); err != nil {
		return nil, fmt.Errorf("textmodel: %v", err)
	}
	tok, err := text.Parse(op.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("textmodel: %v", err)
	}
	return &TextEncoder{Tokenizer: tok, Options: text.EncodeOptions{MaxLen: op.MaxLen, Truncation: true, AddSpecial: op.AddSpecial}}, nil
}

// clip cuts s to at most MaxTextBytes bytes at a rune boundary.
func clip(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	n := MaxTextBytes
	for n > 0 && n > MaxTextBytes-4 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Encode returns the ids int64 [len(texts), T] of texts, padded with
// text.PadID to the longest (T ≥ 1). Empty texts give all-padding rows,
// invalid UTF-8 is replaced by the tokenizer, and long texts are cut.
func (e *TextEncoder) Encode(texts []string) (*tensor.Tensor, error) {
	cl := make([]string, len(texts))
	for i, s := range texts {
		cl[i] = clip(s)
	}
	b, err := text.EncodeBatch(e.Tokenizer, cl, e.Options)
	if err != nil {
		return nil, err
	}
	if b.IDs.Size(1) == 0 {
		return tensor.ZerosInt64(len(texts), 1), nil
	}
	return b.IDs, nil
}

// PredictTexts runs a text model package on raw texts and returns its
// logits [len(texts), C].
func PredictTexts(pkg *model.Package, texts []string) (*tensor.Tensor, error) {
	if len(texts) == 0 {
		return nil, errors.New("textmodel.PredictTexts: no texts")
	}
	enc, err := NewTextEncoder(pkg.Preprocess)
	if err != nil {
		return nil, err
	}
	ids, err := enc.Encode(texts)
	if err != nil {
		return nil, err
	}
	return pkg.Predict(ids)
}

// StratifiedSplit splits d into a training and a validation part: from
// every label, round(frac·count) examples (at least one when frac > 0 and
// the label has two or more) go to validation, chosen by a permutation
// seeded with seed. Both parts keep the file order.
func StratifiedSplit(d *textdata.Data, frac float64, seed uint64) (tr, va *textdata.Data) {
	byLabel := map[string][]int{}
	var labels []string
	for i, e := range d.Examples {
		if _, ok := byLabel[e.Label]; !ok {
			labels = append(labels, e.Label)
		}
		byLabel[e.Label] = append(byLabel[e.Label], i)
	}
	textdata.SortLabels(labels)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	isVal := make([]bool, len(d.Examples))
	for _, l := range labels {
		idx := byLabel[l]
		nv := int(math.Round(frac * float64(len(idx))))
		if frac > 0 && nv == 0 && len(idx) > 1 {
			nv = 1
		}
		nv = min(nv, len(idx))
		perm := rng.Perm(len(idx))
		for _, p := range perm[:nv] {
			isVal[idx[p]] = true
		}
	}
	tr = &textdata.Data{Skipped: d.Skipped, SkippedLines: d.SkippedLines}
	va = &textdata.Data{}
	for i, e := range d.Examples {
		if isVal[i] {
			va.Examples = append(va.Examples, e)
		} else {
			tr.Examples = append(tr.Examples, e)
		}
	}
	return tr, va
}

// BalancedWeights returns class weights n / (C · count[c]) (scikit-learn's
// "balanced"); a class with no examples gets weight 0.
func BalancedWeights(counts []int) []float32 {
	n := 0
	for _, c := range counts {
		n += c
	}
	w := make([]float32, len(counts))
	for i, c := range counts {
		if c > 0 {
			w[i] = float32(float64(n) / (float64(len(counts)) * float64(c)))
		}
	}
	return w
}

// Predictions returns the predicted class (the index of the largest
// logit) of every example of ds, run in batches of batch examples under
// tensor.NoGrad (m should be in eval mode).
func Predictions(m Classifier, ds *textdata.Dataset, batch int) []int64 {
	out := make([]int64, 0, ds.Len())
	forEachLogits(m, ds, batch, func(row []float32) {
		out = append(out, int64(slices.Index(row, slices.Max(row))))
	})
	return out
}

// Probabilities returns the class probabilities (the softmax of the
// logits, computed in float64) of every example of ds, one row of
// NumClasses values per example, run like Predictions. An Ensemble's logits
// are the logarithms of its mean member probabilities, so its rows are
// those means.
func Probabilities(m Classifier, ds *textdata.Dataset, batch int) [][]float32 {
	out := make([][]float32, 0, ds.Len())
	var e []float64 // reused from row to row
	forEachLogits(m, ds, batch, func(row []float32) {
		hi := float64(slices.Max(row))
		e = slices.Grow(e[:0], len(row))[:len(row)]
		sum := 0.0
		for j, v := range row {
			e[j] = math.Exp(float64(v) - hi)
			sum += e[j]
		}
		p := make([]float32, len(row))
		for j := range e {
			p[j] = float32(e[j] / sum)
		}
		out = append(out, p)
	})
	return out
}

// forEachLogits runs m on the examples of ds in order, in batches of batch
// examples (at least 1) padded to their longest, under tensor.NoGrad, and
// calls f with the logits row of each example (valid during the call only).
func forEachLogits(m Classifier, ds *textdata.Dataset, batch int, f func(row []float32)) {
	batch = max(batch, 1)
	idx := make([]int, 0, batch)
	tensor.NoGrad(func() {
		for lo := 0; lo < ds.Len(); lo += batch {
			idx = idx[:0]
			for i := lo; i < min(lo+batch, ds.Len()); i++ {
				idx = append(idx, i)
			}
			b := ds.Collate(idx)
			ids := b.IDs
			if ids.Size(1) == 0 {
				ids = tensor.ZerosInt64(len(idx), 1)
			}
			logits := m.Forward(ids)
			c := logits.Size(1)
			d := logits.Data()
			for r := range len(idx) {
				f(d[r*c : (r+1)*c])
			}
		}
	})
}
