package textmodel_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// sentimentTask labels the synthetic sentences 1 when the stock goes up.
func sentimentTask(n int) ([]string, []int) {
	texts := syntheticCorpus(n)
	labels := make([]int, n)
	for i, s := range texts {
		if strings.Contains(s, "rises") || strings.Contains(s, "jumps") {
			labels[i] = 1
		}
	}
	return texts, labels
}

func pretrainedForFineTune(t *testing.T) *textmodel.Pretrained {
	t.Helper()
	cfg := tinyPretrainConfig(11)
	cfg.Encoder.Dim, cfg.Encoder.Hidden, cfg.Encoder.Layers, cfg.Encoder.Heads = 64, 128, 2, 4
	cfg.Epochs = 2
	p, err := textmodel.Pretrain(context.Background(), syntheticCorpus(200), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFineTuneFull(t *testing.T) {
	p := pretrainedForFineTune(t)
	before := nn.StateDict(p.Encoder)["embedding.weight"].Clone()
	m, err := textmodel.NewFromPretrained(p, 2, textmodel.FineTuneOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The classifier starts from the pretrained weights.
	testutil.AssertClose(t, "embedding", m.Embedding.Weight, before, 0, 0)
	if nn.NumTrainableParams(m) != nn.NumParams(m) {
		t.Fatalf("full fine-tuning trains %d of %d params", nn.NumTrainableParams(m), nn.NumParams(m))
	}
	tr, trl := sentimentTask(300)
	va, val := sentimentTask(100)
	cfg := textmodel.DefaultFineTuneConfig()
	cfg.Epochs, cfg.LR = 3, 3e-3
	res, err := textmodel.FineTune(context.Background(), m, p.Tokenizer, tr, trl, va[:60], val[:60], cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[2].ValAccuracy < 0.9 {
		t.Fatalf("fine-tuning results %+v, want 3 epochs ending ≥ 0.9 accuracy", res)
	}
	// The pretrained package itself is untouched.
	testutil.AssertClose(t, "pretrained embedding", p.Encoder.Embedding.Weight, before, 0, 0)

	if _, err := textmodel.FineTune(context.Background(), m, p.Tokenizer, tr, trl[:3], nil, nil, cfg); err == nil {
		t.Fatal("label count mismatch: no error")
	}
	if _, err := textmodel.FineTune(context.Background(), m, p.Tokenizer, tr[:1], []int{5}, nil, nil, cfg); err == nil {
		t.Fatal("label out of range: no error")
	}
}

func TestFineTuneLoRA(t *testing.T) {
	p := pretrainedForFineTune(t)
	m, err := textmodel.NewFromPretrained(p, 2, textmodel.FineTuneOptions{LoRARank: 2, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	total, trainable := nn.NumParams(m), nn.NumTrainableParams(m)
	if frac := float64(trainable) / float64(total); frac > 0.05 || trainable == 0 {
		t.Fatalf("LoRA trains %d of %d params (%.2f%%), want ≤ 5%%", trainable, total, 100*frac)
	}
	for _, np := range nn.NamedTrainableParameters(m) {
		if !strings.Contains(np.Name, "lora") && !strings.HasPrefix(np.Name, "fc.") {
			t.Fatalf("trainable parameter %s is neither an adapter nor the head", np.Name)
		}
	}
	base := map[string]*tensor.Tensor{}
	for _, np := range nn.NamedParameters(m) {
		if !np.Tensor.RequiresGrad() {
			base[np.Name] = np.Tensor.Clone()
		}
	}
	tr, trl := sentimentTask(300)
	cfg := textmodel.DefaultFineTuneConfig()
	cfg.Epochs, cfg.LR = 2, 5e-3
	if _, err := textmodel.FineTune(context.Background(), m, p.Tokenizer, tr, trl, nil, nil, cfg); err != nil {
		t.Fatal(err)
	}
	sd := nn.StateDict(m)
	for k, v := range base {
		testutil.AssertClose(t, "frozen "+k, sd[k], v, 0, 0)
	}
	nonzero := false
	for k, v := range sd {
		if strings.HasSuffix(k, "lora_B") {
			for _, x := range v.Data() {
				nonzero = nonzero || x != 0
			}
		}
	}
	if !nonzero {
		t.Fatal("LoRA training left every B at zero")
	}

	va, _ := sentimentTask(40)
	b, err := p.Tokenizer.EncodeBatch(va, text.EncodeOptions{MaxLen: 16, Truncation: true, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(m)
	var unmerged, merged *tensor.Tensor
	tensor.NoGrad(func() { unmerged = m.Forward(b.IDs) })
	textmodel.MergeLoRA(m)
	for k := range nn.StateDict(m) {
		if strings.Contains(k, "lora") {
			t.Fatalf("merged model still has %s", k)
		}
	}
	tensor.NoGrad(func() { merged = m.Forward(b.IDs) })
	testutil.AssertClose(t, "merged vs unmerged", merged, unmerged, 1e-5, 1e-5)

	// The merged model saves as a plain text classifier package and loads back.
	dir := filepath.Join(t.TempDir(), "clf")
	if err := textmodel.SaveClassifier(dir, m, p.Tokenizer, []string{"down", "up"}, map[string]any{"lora_rank": 2}); err != nil {
		t.Fatal(err)
	}
	pkg, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := textmodel.PredictTexts(pkg, va)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "package logits", logits, merged, 1e-5, 1e-6)
}
