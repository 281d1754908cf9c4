package textmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Masked-language-model pretraining (BERT, Devlin et al. 2019): 15% of the
// tokens of every sequence (never [CLS], [SEP] or padding) are chosen; of
// those, 80% become [MASK], 10% a random ordinary token and 10% stay as
// they are, and the model predicts the original token at the chosen
// positions only. Masks are drawn afresh for every batch (dynamic masking,
// as in RoBERTa) from a seeded RNG, so a run is a pure function of the
// corpus, the config and the seed.
//
// The loss is computed on the chosen positions only: their hidden states are
// gathered (tensor.IndexSelect) before the output layer, which gives the
// same value as nn.CrossEntropy with an ignore index over every position but
// avoids a [N·T, vocab] logit matrix.

// MLMHead predicts tokens from hidden states: dense + GELU + layer norm,
// then a decoder tied to the token embedding (logits = h·Eᵀ + bias).
type MLMHead struct {
	Dense *nn.Linear    `nn:"dense"`
	Norm  *nn.LayerNorm `nn:"norm"`
	Bias  *tensor.Tensor
	// Embed is the tied embedding table (not a parameter of the head).
	Embed *tensor.Tensor `nn:"-"`
}

// NewMLMHead makes a head tied to the embedding table of e.
func NewMLMHead(r *tensor.RNG, e *PretrainedEncoder) *MLMHead {
	d := e.Cfg.Dim
	return &MLMHead{
		Dense: nn.NewLinear(r, d, d, true),
		Norm:  nn.NewLayerNorm([]int{d}, true),
		Bias:  tensor.Zeros(e.Cfg.VocabSize).SetRequiresGrad(true),
		Embed: e.Embedding.Weight,
	}
}

// Forward maps hidden states [..., D] to vocabulary logits [..., V].
func (h *MLMHead) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = h.Norm.Forward(tensor.GELU(h.Dense.Forward(x)))
	return tensor.Linear(x, h.Embed, h.Bias)
}

// MLM is an encoder with its MLM head: the model pretraining trains.
type MLM struct {
	Encoder *PretrainedEncoder `nn:"encoder"`
	Head    *MLMHead           `nn:"head"`
}

// Forward returns vocabulary logits [N, T, V] for ids [N, T].
func (m *MLM) Forward(ids *tensor.Tensor) *tensor.Tensor {
	return m.Head.Forward(m.Encoder.Forward(ids))
}

// Loss returns the mean cross-entropy of predicting targets at the flat
// positions (index into N·T) of the masked inputs [N, T].
func (m *MLM) Loss(inputs *tensor.Tensor, positions, targets []int64) *tensor.Tensor {
	if len(positions) != len(targets) || len(positions) == 0 {
		panic(fmt.Sprintf("textmodel.MLM.Loss: %d positions and %d targets (want equal, > 0)", len(positions), len(targets)))
	}
	h := m.Encoder.Forward(inputs)
	N, T, D := h.Size(0), h.Size(1), h.Size(2)
	sel := tensor.IndexSelect(tensor.Reshape(h, N*T, D), 0, tensor.FromInt64(positions, len(positions)))
	return nn.CrossEntropy(m.Head.Forward(sel), tensor.FromInt64(targets, len(targets)))
}

// Masking configures BERT masking.
type Masking struct {
	// Prob is the share of maskable tokens chosen (0.15).
	Prob float64
	// MaskShare and RandomShare split the chosen tokens into [MASK] and a
	// random token; the rest keep their token (0.8 and 0.1).
	MaskShare, RandomShare float64
}

// DefaultMasking is BERT's 15% with 80/10/10.
var DefaultMasking = Masking{Prob: 0.15, MaskShare: 0.8, RandomShare: 0.1}

// MaskTokens applies BERT masking to ids [N, T] (int64): it returns the
// corrupted inputs, the flat positions chosen (row-major into N·T) and the
// original ids there. Special tokens (ids below text.MaskID+1, which
// includes padding, [CLS] and [SEP]) are never chosen; random replacements
// are ordinary tokens in [firstOrdinary, vocabSize). Every sequence with a
// maskable token gets at least one chosen position.
func MaskTokens(ids *tensor.Tensor, vocabSize int, m Masking, r *tensor.RNG) (inputs *tensor.Tensor, positions, targets []int64) {
	if ids.Dim() != 2 || ids.DType() != tensor.Int64 {
		panic(fmt.Sprintf("textmodel.MaskTokens: ids must be int64 [N, T], got %v %v", ids.DType(), ids.Shape()))
	}
	first := int64(firstOrdinary(vocabSize))
	src := ids.Int64s()
	out := append([]int64(nil), src...)
	N, T := ids.Size(0), ids.Size(1)
	for n := range N {
		row := out[n*T : (n+1)*T]
		chosenAny, lastMaskable := false, -1
		for t, id := range row {
			if id < first {
				continue
			}
			lastMaskable = t
			if r.Float64() < m.Prob {
				chosenAny = true
				positions = append(positions, int64(n*T+t))
			}
		}
		if !chosenAny && lastMaskable >= 0 {
			// Pick one maskable position uniformly.
			var cand []int
			for t, id := range row {
				if id >= first {
					cand = append(cand, t)
				}
			}
			positions = append(positions, int64(n*T+cand[r.IntN(len(cand))]))
		}
	}
	sort.Slice(positions, func(i, j int) bool { return positions[i] < positions[j] })
	targets = make([]int64, len(positions))
	for i, p := range positions {
		targets[i] = src[p]
		u := r.Float64()
		switch {
		case u < m.MaskShare:
			out[p] = text.MaskID
		case u < m.MaskShare+m.RandomShare:
			out[p] = first + int64(r.IntN(vocabSize-int(first)))
		}
	}
	return tensor.FromInt64(out, N, T), positions, targets
}

// firstOrdinary is the first id that is not a special token. Vocabularies
// made with URL replacement also reserve [URL] right after [MASK]; it is a
// real word-like token and may be masked, so the special range is
// [PAD]..[MASK].
func firstOrdinary(vocabSize int) int {
	return min(text.MaskID+1, vocabSize-1)
}

// PretrainConfig configures Pretrain.
type PretrainConfig struct {
	// Encoder is the architecture (a Transformer classifier Config; its
	// VocabSize is filled from the tokenizer, NumClasses and Pool are only
	// defaults for fine-tuning).
	Encoder Config
	// VocabSize is the WordPiece vocabulary trained on the corpus (8000)
	// when Tokenizer is nil.
	VocabSize int
	// Tokenizer, when set, is used instead of training one.
	Tokenizer text.Tokenizer
	// Epochs over the corpus, BatchSize sequences per step.
	Epochs, BatchSize int
	// LR is the peak AdamW learning rate, reached after WarmupSteps and
	// decayed linearly to 0 at the last step; WeightDecay is AdamW's.
	LR, WeightDecay float64
	WarmupSteps     int
	// ClipNorm clips the gradient norm (0: no clipping).
	ClipNorm float64
	// Masking is the masking scheme (zero: DefaultMasking).
	Masking Masking
	// MaxDuration stops training cleanly after this much time (0: none).
	MaxDuration time.Duration
	// MaxSteps stops after this many optimizer steps (0: none).
	MaxSteps int
	// Seed fixes initialisation, shuffling, masking and dropout.
	Seed uint64
	// Log, if set, is called every LogEvery steps (and at the end) with
	// the step, the total planned steps and the mean loss since the last call.
	Log      func(step, total int, loss float64)
	LogEvery int
}

// DefaultEncoderConfig is the encoder deepgo pretrain text trains: d=128,
// 4 heads, 2 layers, feed-forward 512, max length 64, dropout 0.1, mean
// pooling for fine-tuning.
func DefaultEncoderConfig(vocabSize int) Config {
	return Config{Arch: ArchTransformer, VocabSize: vocabSize, NumClasses: 2, Dim: 128, Hidden: 512, Layers: 2,
		Heads: 4, MaxLen: 64, Pool: PoolMean, Dropout: 0.1}
}

// DefaultPretrainConfig is the configuration of deepgo pretrain text: an 8k
// WordPiece vocabulary, DefaultEncoderConfig, 2 epochs of batches of 64,
// AdamW lr 1e-3 (weight decay 0.01), 300 warm-up steps then linear decay,
// clipping at norm 1.
func DefaultPretrainConfig() PretrainConfig {
	return PretrainConfig{Encoder: DefaultEncoderConfig(8000), VocabSize: 8000, Epochs: 2, BatchSize: 64,
		LR: 1e-3, WeightDecay: 0.01, WarmupSteps: 300, ClipNorm: 1, Masking: DefaultMasking, LogEvery: 50}
}

// Pretrained is a pretrained encoder with its tokenizer.
type Pretrained struct {
	Encoder   *PretrainedEncoder
	Tokenizer text.Tokenizer
	// Head is the MLM head (nil after Load: packages keep the encoder only).
	Head *MLMHead
	// Losses is the mean training loss of each logged interval; Steps the
	// optimizer steps taken; Stopped says why training ended early
	// ("", "max-duration", "max-steps" or "canceled").
	Losses  []float64
	Steps   int
	Stopped string
	// Metadata is stored in model.json (seed, steps, final loss, …).
	Metadata map[string]any
}

// Pretrain trains a WordPiece tokenizer on corpus (unless cfg.Tokenizer is
// set) and an encoder with masked-language modelling. A canceled ctx or
// cfg.MaxDuration stops training cleanly between steps and returns the model
// trained so far (Stopped tells why); only an empty corpus or an invalid
// config is an error.
func Pretrain(ctx context.Context, corpus []string, cfg PretrainConfig) (*Pretrained, error) {
	if cfg.Masking == (Masking{}) {
		cfg.Masking = DefaultMasking
	}
	if cfg.Epochs <= 0 || cfg.BatchSize <= 0 || !(cfg.LR > 0) || cfg.WarmupSteps < 0 {
		return nil, fmt.Errorf("textmodel.Pretrain: epochs %d, batch size %d, lr %v and warm-up %d must be positive", cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.WarmupSteps)
	}
	m := cfg.Masking
	if !(m.Prob > 0 && m.Prob <= 1 && m.MaskShare >= 0 && m.RandomShare >= 0 && m.MaskShare+m.RandomShare <= 1) {
		return nil, fmt.Errorf("textmodel.Pretrain: invalid masking %+v", m)
	}
	tok := cfg.Tokenizer
	if tok == nil {
		vs := cfg.VocabSize
		if vs == 0 {
			vs = 8000
		}
		wcfg := text.DefaultWordPieceConfig(vs)
		var err error
		if tok, err = text.TrainWordPiece(corpus, wcfg); err != nil {
			return nil, fmt.Errorf("textmodel.Pretrain: tokenizer: %v", err)
		}
	}
	ecfg := cfg.Encoder
	ecfg.VocabSize = tok.Vocab().Len()
	if ecfg.Arch == "" {
		ecfg.Arch = ArchTransformer
	}
	if ecfg.NumClasses < 2 {
		ecfg.NumClasses = 2
	}
	if ecfg.Pool == "" {
		ecfg.Pool = PoolMean
	}
	if ecfg.Arch != ArchTransformer {
		return nil, fmt.Errorf("textmodel.Pretrain: arch %q, want %q", ecfg.Arch, ArchTransformer)
	}
	if err := ecfg.Validate(); err != nil {
		return nil, err
	}
	seqs := tokenizeCorpus(tok, corpus, ecfg.MaxLen)
	if len(seqs) == 0 {
		return nil, errors.New("textmodel.Pretrain: the corpus has no text with a maskable token")
	}

	r := tensor.NewRNG(cfg.Seed)
	enc := NewPretrainedEncoder(r, ecfg)
	mlm := &MLM{Encoder: enc, Head: NewMLMHead(r, enc)}
	nn.Train(mlm)
	params := nn.TrainableParameters(mlm)
	opt := optim.NewAdamW(params, optim.AdamConfig{LR: cfg.LR, WeightDecay: cfg.WeightDecay})
	steps := cfg.Epochs * ((len(seqs) + cfg.BatchSize - 1) / cfg.BatchSize)
	if cfg.MaxSteps > 0 {
		steps = min(steps, cfg.MaxSteps)
	}
	sched := newWarmupLinear(opt, cfg.WarmupSteps, steps)

	p := &Pretrained{Encoder: enc, Tokenizer: tok, Head: mlm.Head}
	start := time.Now()
	var sum float64
	var count int
	logEvery := max(cfg.LogEvery, 1)
	flush := func() {
		if count > 0 {
			p.Losses = append(p.Losses, sum/float64(count))
			if cfg.Log != nil {
				cfg.Log(p.Steps, steps, sum/float64(count))
			}
		}
		sum, count = 0, 0
	}
	shuffle := tensor.NewRNG(cfg.Seed ^ 0x9e3779b97f4a7c15)
	maskRNG := tensor.NewRNG(cfg.Seed ^ 0x6a09e667f3bcc908)
train:
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		for _, batch := range lengthBatches(seqs, cfg.BatchSize, shuffle) {
			if p.Steps >= steps {
				break train
			}
			if err := ctx.Err(); err != nil {
				p.Stopped = "canceled"
				break train
			}
			if cfg.MaxDuration > 0 && time.Since(start) >= cfg.MaxDuration {
				p.Stopped = "max-duration"
				break train
			}
			ids := text.Pad(batch, text.EncodeOptions{}).IDs
			in, pos, tgt := MaskTokens(ids, ecfg.VocabSize, m, maskRNG)
			opt.ZeroGrad()
			loss := mlm.Loss(in, pos, tgt)
			loss.Backward()
			if cfg.ClipNorm > 0 {
				optim.ClipGradNorm(params, cfg.ClipNorm, 2)
			}
			opt.Step()
			sched.step()
			p.Steps++
			sum += float64(loss.Item())
			count++
			if p.Steps%logEvery == 0 {
				flush()
			}
		}
	}
	if cfg.MaxSteps > 0 && p.Steps >= cfg.MaxSteps && p.Stopped == "" && p.Steps < cfg.Epochs*((len(seqs)+cfg.BatchSize-1)/cfg.BatchSize) {
		p.Stopped = "max-steps"
	}
	flush()
	nn.Eval(mlm)
	p.Metadata = map[string]any{
		"task": "masked-language-model", "seed": cfg.Seed, "steps": p.Steps, "planned_steps": steps,
		"epochs": cfg.Epochs, "batch_size": cfg.BatchSize, "lr": cfg.LR, "sequences": len(seqs),
		"seconds": math.Round(time.Since(start).Seconds()),
	}
	if n := len(p.Losses); n > 0 {
		p.Metadata["final_loss"] = p.Losses[n-1]
	}
	if p.Stopped != "" {
		p.Metadata["stopped"] = p.Stopped
	}
	return p, nil
}

// MaxChunksPerText bounds how many sequences Pretrain cuts from one long
// text (news bodies): a text longer than MaxLen−2 tokens is split into
// consecutive windows, each framed as [CLS] … [SEP].
const MaxChunksPerText = 8

// tokenizeCorpus encodes every text into windows of at most maxLen ids
// ([CLS] … [SEP]), keeping those with at least one ordinary token; a
// window after the first must have at least 8 tokens.
func tokenizeCorpus(tok text.Tokenizer, corpus []string, maxLen int) [][]int {
	first := firstOrdinary(tok.Vocab().Len())
	w := maxLen - 2
	var seqs [][]int
	for _, s := range corpus {
		if len(s) > 1<<16 {
			s = s[:1<<16] // at most MaxChunksPerText windows are used anyway
		}
		ids := tok.Encode(s)
		for c := 0; c < MaxChunksPerText && c*w < len(ids); c++ {
			part := ids[c*w : min((c+1)*w, len(ids))]
			if c > 0 && len(part) < 8 {
				break
			}
			ok := false
			for _, id := range part {
				ok = ok || id >= first
			}
			if !ok {
				continue
			}
			seq := make([]int, 0, len(part)+2)
			seq = append(append(append(seq, text.ClsID), part...), text.SepID)
			seqs = append(seqs, seq)
		}
	}
	return seqs
}

// lengthBatches shuffles the sequences, cuts the order into chunks of 50
// batches, sorts each chunk by length (so batches waste little padding) and
// returns the batches in shuffled order.
func lengthBatches(seqs [][]int, batchSize int, r *tensor.RNG) [][][]int {
	order := r.Perm(len(seqs))
	chunk := batchSize * 50
	var batches [][][]int
	for lo := 0; lo < len(order); lo += chunk {
		part := order[lo:min(lo+chunk, len(order))]
		sort.SliceStable(part, func(i, j int) bool { return len(seqs[part[i]]) < len(seqs[part[j]]) })
		for b := 0; b < len(part); b += batchSize {
			var batch [][]int
			for _, i := range part[b:min(b+batchSize, len(part))] {
				batch = append(batch, seqs[i])
			}
			batches = append(batches, batch)
		}
	}
	perm := r.Perm(len(batches))
	out := make([][][]int, len(batches))
	for i, j := range perm {
		out[i] = batches[j]
	}
	return out
}

// warmupLinear sets the LR per step: linear warm-up from 0 to the base LR
// over warm steps, then linear decay to 0 at total.
type warmupLinear struct {
	opt         optim.Optimizer
	base        float64
	warm, total int
	n           int
}

func newWarmupLinear(opt optim.Optimizer, warm, total int) *warmupLinear {
	w := &warmupLinear{opt: opt, base: opt.LR(), warm: warm, total: max(total, 1)}
	opt.SetLR(w.at(0))
	return w
}

func (w *warmupLinear) at(step int) float64 {
	if step < w.warm {
		return w.base * float64(step+1) / float64(w.warm+1)
	}
	rest := w.total - w.warm
	if rest <= 0 {
		return w.base
	}
	return w.base * max(0, float64(w.total-step)/float64(rest))
}

func (w *warmupLinear) step() {
	w.n++
	w.opt.SetLR(w.at(w.n))
}

// Save writes the pretrained encoder as a model package in dir: model.json
// (architecture textmodel.PretrainedEncoder, the tokenizer embedded as the
// "tokenize" preprocessing op, input "input_ids" int64 [-1, -1], output
// "hidden" float32 [-1, -1, dim], metadata) and weights.safetensors (the
// encoder's state dict).
func (p *Pretrained) Save(dir string) error {
	if p == nil || p.Encoder == nil || p.Tokenizer == nil {
		return errors.New("textmodel.Pretrained.Save: no encoder or tokenizer")
	}
	meta := map[string]any{}
	for k, v := range p.Metadata {
		meta[k] = v
	}
	meta["kind"] = "pretrained-text-encoder"
	op, err := TokenizeOp(p.Tokenizer, p.Encoder.Cfg.MaxLen, true)
	if err != nil {
		return fmt.Errorf("textmodel.Pretrained.Save: %v", err)
	}
	return model.Save(dir, &model.Package{
		Name:       "mlm-encoder",
		Module:     p.Encoder,
		Preprocess: []model.PreprocessOp{op},
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "input_ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "hidden", DType: model.DTypeFloat32, Shape: []int{-1, -1, p.Encoder.Cfg.Dim}}},
		},
		Metadata: meta,
	})
}

// LoadPretrained reads a package written by Pretrained.Save. The encoder is
// returned in eval mode.
func LoadPretrained(dir string) (*Pretrained, error) {
	pkg, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	return pretrainedFrom(dir, pkg)
}

func pretrainedFrom(dir string, pkg *model.Package) (*Pretrained, error) {
	enc, ok := pkg.Module.(*PretrainedEncoder)
	if !ok {
		return nil, fmt.Errorf("textmodel.LoadPretrained: %s holds a %T, not a %s (make one with deepgo pretrain text)", dir, pkg.Module, EncoderLayerType)
	}
	te, err := NewTextEncoder(pkg.Preprocess)
	if err != nil {
		return nil, fmt.Errorf("textmodel.LoadPretrained: %s: %v", dir, err)
	}
	if n := te.Tokenizer.Vocab().Len(); n != enc.Cfg.VocabSize {
		return nil, fmt.Errorf("textmodel.LoadPretrained: %s: tokenizer has %d tokens, encoder %d", dir, n, enc.Cfg.VocabSize)
	}
	return &Pretrained{Encoder: enc, Tokenizer: te.Tokenizer, Metadata: pkg.Metadata}, nil
}
