package textmodel

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/kernels"
	"github.com/deepgo/deepgo/nn"
)

// withThreads runs fn with GOMAXPROCS and the kernels' thread limit set to n.
func withThreads(n int, fn func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	defer kernels.SetThreads(kernels.SetThreads(n))
	fn()
}

// stateBits returns every tensor of m's state dict as raw bits, by name.
func stateBits(m nn.Module) map[string][]uint32 {
	out := map[string][]uint32{}
	for k, v := range nn.StateDict(m) {
		if v.DType().String() != "float32" {
			continue
		}
		bits := make([]uint32, 0, v.Numel())
		for _, f := range v.Data() {
			bits = append(bits, math.Float32bits(f))
		}
		out[k] = bits
	}
	return out
}

func sameBits(t *testing.T, what string, a, b map[string][]uint32) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%s: %d and %d tensors", what, len(a), len(b))
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			t.Fatalf("%s: %s differs between 1 and 4 threads", what, k)
		}
	}
}

// TestPretrainAndFineTuneThreadIndependent checks that MLM pretraining
// and fine-tuning give bit-identical weights with 1 and 4 threads. The
// sizes are chosen so that the work is actually split: a batch of 64
// sequences of 32 tokens gives 2048 rows, and the feed-forward products
// (2048 × 256 × 64 = 2·2²⁴ multiply-adds) exceed twice the kernels' least
// work per GEMM thread, so Sgemm runs on 2 or more threads; the
// element-wise ops and reductions of that size (≥ 2¹⁵ elements) are split
// by kernels.ParallelFor too.
func TestPretrainAndFineTuneThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	words := make([]string, 150)
	for i := range words {
		words[i] = fmt.Sprintf("w%02dx", i)
	}
	corpus := make([]string, 64)
	labels := make([]int, len(corpus))
	for i := range corpus {
		ws := make([]string, 40)
		for j := range ws {
			ws[j] = words[r.IntN(len(words))]
		}
		corpus[i] = strings.Join(ws, " ")
		labels[i] = i % 2
	}
	cfg := DefaultPretrainConfig()
	cfg.Encoder = Config{Arch: ArchTransformer, NumClasses: 2, Dim: 64, Hidden: 256, Layers: 1, Heads: 4, MaxLen: 32, Pool: PoolMean, Dropout: 0.1}
	cfg.VocabSize, cfg.Epochs, cfg.BatchSize, cfg.WarmupSteps, cfg.Seed = 300, 1, 64, 1, 3
	run := func(n int) (pre, fine map[string][]uint32) {
		withThreads(n, func() {
			p, err := Pretrain(context.Background(), corpus, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.Steps != 2 {
				t.Fatalf("%d steps, want 2", p.Steps)
			}
			pre = stateBits(p.Encoder)
			m, err := NewFromPretrained(p, 2, FineTuneOptions{Seed: 4})
			if err != nil {
				t.Fatal(err)
			}
			fc := DefaultFineTuneConfig()
			fc.Epochs, fc.BatchSize, fc.Seed = 1, 64, 4
			if _, err := FineTune(context.Background(), m, p.Tokenizer, corpus, labels, nil, nil, fc); err != nil {
				t.Fatal(err)
			}
			fine = stateBits(m)
		})
		return pre, fine
	}
	pre1, fine1 := run(1)
	pre4, fine4 := run(4)
	sameBits(t, "pretrained encoder", pre1, pre4)
	sameBits(t, "fine-tuned classifier", fine1, fine4)
}
