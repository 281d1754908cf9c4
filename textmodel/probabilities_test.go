package textmodel_test

import (
	"math"
	"slices"
	"testing"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/textmodel"
)

// TestProbabilities checks Probabilities against the softmax of each
// example's logits (tensor.Softmax, itself checked against PyTorch), for a
// bow, an lstm and their ensemble (whose probabilities are the members'
// mean): rows sum to 1, the argmax is Predictions' class, and the batch
// size does not change the values.
func TestProbabilities(t *testing.T) {
	d := toyData(37, 4)
	d.Examples[5].Text = "" // an empty text: an all-padding row
	tok := toyTokenizer(t, d)
	classes := textdata.Classes(d)
	ds, err := textdata.NewDataset(d, tok, classes, textdata.DatasetOptions{MaxLen: 12, FixedLen: true})
	if err != nil {
		t.Fatal(err)
	}
	vocab := tok.Vocab().Len()
	bow := textmodel.NewBOW(tensor.NewRNG(1), smallConfig(textmodel.ArchBOW, vocab, 3))
	lstm := textmodel.NewLSTM(tensor.NewRNG(2), maxMeanLSTM(vocab, 3))
	ens, err := textmodel.NewEnsemble(bow, lstm)
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(ens)
	// Make the logits large enough to give confident rows too.
	for _, s := range []struct {
		w     *tensor.Tensor
		scale float32
	}{{bow.FC.Weight, 400}, {lstm.FC.Weight, 40}} {
		w := s.w.Data()
		for i := range w {
			w[i] *= s.scale
		}
	}
	// want is the softmax of each example's logits, run one at a time.
	want := func(m textmodel.Classifier) [][]float32 {
		var out [][]float32
		for i := range ds.Len() {
			var row []float32
			tensor.NoGrad(func() {
				ids := ds.Collate([]int{i}).IDs
				if ids.Size(1) == 0 {
					ids = tensor.ZerosInt64(1, 1)
				}
				row = tensor.Softmax(m.Forward(ids), 1).Data()
			})
			out = append(out, row)
		}
		return out
	}
	mean := func(a, b [][]float32) [][]float32 {
		out := make([][]float32, len(a))
		for i := range a {
			out[i] = make([]float32, len(a[i]))
			for j := range a[i] {
				out[i][j] = (a[i][j] + b[i][j]) / 2
			}
		}
		return out
	}
	wb, wl := want(bow), want(lstm)
	for _, c := range []struct {
		name string
		m    textmodel.Classifier
		want [][]float32
	}{{"bow", bow, wb}, {"lstm", lstm, wl}, {"ensemble", ens, mean(wb, wl)}} {
		pred := textmodel.Predictions(c.m, ds, 8)
		confident := 0
		for _, batch := range []int{1, 8, 256} {
			got := textmodel.Probabilities(c.m, ds, batch)
			if len(got) != ds.Len() {
				t.Fatalf("%s: %d rows for %d examples", c.name, len(got), ds.Len())
			}
			for i, row := range got {
				if len(row) != 3 {
					t.Fatalf("%s: row %d has %d values, want 3", c.name, i, len(row))
				}
				sum := 0.0
				for j, p := range row {
					sum += float64(p)
					if p < 0 || math.Abs(float64(p-c.want[i][j])) > 2e-5 {
						t.Fatalf("%s (batch %d): example %d class %d: probability %v, want %v", c.name, batch, i, j, p, c.want[i][j])
					}
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Errorf("%s: row %d sums to %v", c.name, i, sum)
				}
				if k := slices.Index(row, slices.Max(row)); int64(k) != pred[i] {
					t.Errorf("%s: example %d: argmax of the probabilities %d, Predictions %d (%v)", c.name, i, k, pred[i], row)
				}
				if slices.Max(row) > 0.9 {
					confident++
				}
			}
		}
		if confident == 0 || confident == 3*ds.Len() {
			t.Errorf("%s: %d of %d rows above 0.9: want a mix of confident and unsure rows", c.name, confident, 3*ds.Len())
		}
	}
}
