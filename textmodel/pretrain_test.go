package textmodel_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// syntheticCorpus is a tiny corpus with learnable structure: a few sentence
// templates filled with words from small classes.
func syntheticCorpus(n int) []string {
	subj := []string{"apple", "tesla", "google", "amazon", "nvidia", "intel"}
	verb := []string{"rises", "falls", "jumps", "drops"}
	obj := []string{"after earnings", "on weak guidance", "as sales grow", "amid layoffs"}
	r := tensor.NewRNG(7)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s stock %s %s today", subj[r.IntN(len(subj))], verb[r.IntN(len(verb))], obj[r.IntN(len(obj))])
	}
	return out
}

func tinyPretrainConfig(seed uint64) textmodel.PretrainConfig {
	cfg := textmodel.DefaultPretrainConfig()
	cfg.VocabSize = 200
	cfg.Encoder = textmodel.Config{Arch: textmodel.ArchTransformer, NumClasses: 2, Dim: 16, Hidden: 32, Layers: 1,
		Heads: 2, MaxLen: 16, Pool: textmodel.PoolMean, Dropout: 0}
	cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.WarmupSteps, cfg.LogEvery = 6, 16, 5e-3, 5, 5
	cfg.Seed = seed
	return cfg
}

func TestPretrainReducesLossAndIsDeterministic(t *testing.T) {
	corpus := syntheticCorpus(200)
	a, err := textmodel.Pretrain(context.Background(), corpus, tinyPretrainConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Losses) < 4 {
		t.Fatalf("only %d loss points", len(a.Losses))
	}
	first, last := a.Losses[0], a.Losses[len(a.Losses)-1]
	if !(last < 0.7*first) {
		t.Fatalf("MLM loss did not drop enough: first %.3f, last %.3f (%v)", first, last, a.Losses)
	}
	b, err := textmodel.Pretrain(context.Background(), corpus, tinyPretrainConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Losses) != fmt.Sprint(b.Losses) {
		t.Fatalf("same seed, different losses:\n%v\n%v", a.Losses, b.Losses)
	}
	sa, sb := nn.StateDict(a.Encoder), nn.StateDict(b.Encoder)
	for k, v := range sa {
		testutil.AssertClose(t, k, sb[k], v, 0, 0)
	}
	c, err := textmodel.Pretrain(context.Background(), corpus, tinyPretrainConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Losses) == fmt.Sprint(c.Losses) {
		t.Fatal("different seeds gave identical losses")
	}
}

func TestPretrainStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, err := textmodel.Pretrain(ctx, syntheticCorpus(50), tinyPretrainConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	if p.Stopped != "canceled" || p.Steps != 0 {
		t.Fatalf("stopped %q after %d steps", p.Stopped, p.Steps)
	}
	cfg := tinyPretrainConfig(1)
	cfg.MaxSteps = 3
	p, err = textmodel.Pretrain(context.Background(), syntheticCorpus(50), cfg)
	if err != nil || p.Steps != 3 || p.Stopped != "max-steps" {
		t.Fatalf("max steps: %v, %d steps, stopped %q", err, p.Steps, p.Stopped)
	}
	if _, err := textmodel.Pretrain(context.Background(), []string{"", "   "}, tinyPretrainConfig(1)); err == nil {
		t.Fatal("empty corpus: no error")
	}
	bad := tinyPretrainConfig(1)
	bad.Epochs = 0
	if _, err := textmodel.Pretrain(context.Background(), syntheticCorpus(10), bad); err == nil {
		t.Fatal("zero epochs: no error")
	}
}

func TestMaskTokensStatistics(t *testing.T) {
	const N, T, V = 400, 64, 1000
	ids := make([]int64, N*T)
	for n := range N {
		ids[n*T] = text.ClsID
		L := 20 + n%40
		for t := 1; t < L; t++ {
			ids[n*T+t] = int64(5 + (n*31+t*17)%(V-5))
		}
		ids[n*T+L] = text.SepID
	}
	src := tensor.FromInt64(ids, N, T)
	in, pos, tgt := textmodel.MaskTokens(src, V, textmodel.DefaultMasking, tensor.NewRNG(1))
	maskable := 0
	for _, id := range ids {
		if id > text.MaskID {
			maskable++
		}
	}
	share := float64(len(pos)) / float64(maskable)
	if math.Abs(share-0.15) > 0.01 {
		t.Fatalf("chose %.4f of the maskable tokens, want ≈ 0.15", share)
	}
	out := in.Int64s()
	var masked, kept, random int
	for i, p := range pos {
		if tgt[i] != ids[p] {
			t.Fatalf("target %d at %d, original %d", tgt[i], p, ids[p])
		}
		switch {
		case out[p] == text.MaskID:
			masked++
		case out[p] == ids[p]:
			kept++
		default:
			random++
			if out[p] <= text.MaskID || out[p] >= V {
				t.Fatalf("random replacement %d is special or out of range", out[p])
			}
		}
	}
	n := float64(len(pos))
	// A random replacement equals the original with probability 1/995.
	if math.Abs(float64(masked)/n-0.8) > 0.02 || math.Abs(float64(random)/n-0.1) > 0.015 || math.Abs(float64(kept)/n-0.1) > 0.015 {
		t.Fatalf("mask/random/keep = %d/%d/%d of %d, want ≈ 80/10/10%%", masked, random, kept, len(pos))
	}
	chosen := map[int64]bool{}
	for _, p := range pos {
		chosen[p] = true
	}
	for i, id := range ids {
		if id <= text.MaskID && chosen[int64(i)] {
			t.Fatalf("special token %d at %d was chosen", id, i)
		}
		if !chosen[int64(i)] && out[i] != id {
			t.Fatalf("unchosen position %d changed from %d to %d", i, id, out[i])
		}
	}
	testutil.MustPanic(t, "1-d ids", func() {
		textmodel.MaskTokens(tensor.FromInt64([]int64{5, 6}, 2), V, textmodel.DefaultMasking, tensor.NewRNG(1))
	}, "textmodel.MaskTokens")
}

func TestPretrainedSaveLoadRoundTrip(t *testing.T) {
	cfg := tinyPretrainConfig(5)
	cfg.Epochs = 1
	p, err := textmodel.Pretrain(context.Background(), syntheticCorpus(60), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "enc")
	if err := p.Save(dir); err != nil {
		t.Fatal(err)
	}
	q, err := textmodel.LoadPretrained(dir)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"apple stock rises today", "intel falls on weak guidance", ""}
	b1, err := p.Tokenizer.EncodeBatch(texts, text.EncodeOptions{MaxLen: 16, Truncation: true, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := q.Tokenizer.EncodeBatch(texts, text.EncodeOptions{MaxLen: 16, Truncation: true, AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "ids", b2.IDs.Float(), b1.IDs.Float(), 0, 0)
	nn.Eval(p.Encoder)
	var h1, h2 *tensor.Tensor
	tensor.NoGrad(func() { h1, h2 = p.Encoder.Forward(b1.IDs), q.Encoder.Forward(b2.IDs) })
	testutil.AssertClose(t, "hidden", h2, h1, 0, 0)
	if q.Encoder.Cfg != p.Encoder.Cfg {
		t.Fatalf("config %+v, want %+v", q.Encoder.Cfg, p.Encoder.Cfg)
	}
	if _, err := textmodel.LoadPretrained(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing dir: no error")
	}
	if _, err := textmodel.LoadPretrained(t.TempDir()); err == nil || !strings.Contains(err.Error(), "model.json") {
		t.Fatalf("empty dir: %v", err)
	}
}
