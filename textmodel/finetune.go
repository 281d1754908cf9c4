package textmodel

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Fine-tuning puts a pretrained encoder into a Transformer classifier
// (NewFromPretrained) and trains either every weight or, with LoRA, only
// low-rank adapters on the attention input/output projections and the
// feed-forward layers plus the new classification head (the pretrained
// weights stay frozen). MergeLoRA folds the adapters into the weights, so
// the served model is a plain Transformer classifier ("TextTransformer" in
// model.json) that computes the same function.

// FineTuneOptions configures the classifier made by NewFromPretrained.
type FineTuneOptions struct {
	// Pool is PoolMean (masked mean, the default) or PoolCLS.
	Pool string
	// Dropout replaces the encoder's dropout when > 0 (used before the head
	// and inside the layers); 0 keeps the pretrained config's.
	Dropout float32
	// LoRARank > 0 trains rank-r adapters only (see ApplyLoRA); 0 trains
	// all weights.
	LoRARank int
	// LoRAAlpha is the adapters' α (0: 2·rank); LoRADropout their input
	// dropout.
	LoRAAlpha, LoRADropout float32
	// Seed initialises the head and the adapters.
	Seed uint64
}

// NewFromPretrained returns a Transformer classifier for numClasses classes
// whose embedding, positions and encoder are copies of p's (the head is
// new), ready for fine-tuning; with opt.LoRARank > 0 it is prepared for
// LoRA (ApplyLoRA). p is not modified.
func NewFromPretrained(p *Pretrained, numClasses int, opt FineTuneOptions) (*Transformer, error) {
	if p == nil || p.Encoder == nil {
		return nil, errors.New("textmodel.NewFromPretrained: no pretrained encoder")
	}
	cfg := p.Encoder.Cfg
	cfg.NumClasses = numClasses
	if opt.Pool != "" {
		cfg.Pool = opt.Pool
	}
	if opt.Dropout > 0 {
		cfg.Dropout = opt.Dropout
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("textmodel.NewFromPretrained: %v", err)
	}
	m := NewTransformer(tensor.NewRNG(opt.Seed), cfg)
	if err := nn.LoadStateDict(m, cloneState(nn.StateDict(p.Encoder)), false); err != nil {
		return nil, fmt.Errorf("textmodel.NewFromPretrained: %v", err)
	}
	if opt.LoRARank > 0 {
		ApplyLoRA(m, opt.LoRARank, opt.LoRAAlpha, opt.LoRADropout, opt.Seed)
	}
	return m, nil
}

// cloneState copies every tensor of a state dict, so that loading it shares
// no storage with its source.
func cloneState(sd map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	out := make(map[string]*tensor.Tensor, len(sd))
	for k, v := range sd {
		out[k] = v.Detach().Clone()
	}
	return out
}

// ApplyLoRA freezes every weight of m, adds rank-r adapters (α = alpha, 2·r
// when 0) to the attention input and output projections and both
// feed-forward layers of every encoder layer, and makes the classification
// head trainable again. It returns the adapted projections' names. Only
// nn.TrainableParameters(m) should then go to the optimizer.
func ApplyLoRA(m *Transformer, rank int, alpha, dropout float32, seed uint64) []string {
	if alpha == 0 {
		alpha = 2 * float32(rank)
	}
	nn.Freeze(m)
	names := nn.ApplyLoRA(m, rank, alpha, nil, nn.LoRAOptions{Dropout: dropout, RNG: tensor.NewRNG(seed ^ 0x10a)})
	m.FC.Weight.SetRequiresGrad(true)
	if m.FC.Bias != nil {
		m.FC.Bias.SetRequiresGrad(true)
	}
	return names
}

// MergeLoRA folds m's adapters into its weights (nn.MergeLoRA) and makes
// every weight trainable again: the result is a plain Transformer
// classifier that gives the same outputs in eval mode and saves as
// "TextTransformer".
func MergeLoRA(m *Transformer) *Transformer {
	nn.MergeLoRA(m)
	nn.Unfreeze(m)
	return m
}

// FineTuneConfig configures FineTune.
type FineTuneConfig struct {
	// Epochs and BatchSize of training.
	Epochs, BatchSize int
	// LR is the peak AdamW learning rate (linear warm-up over WarmupFrac of
	// the steps, then linear decay to 0); WeightDecay is AdamW's.
	LR, WeightDecay float64
	WarmupFrac      float64
	// ClassWeights weight the cross-entropy per class (nil: none).
	ClassWeights []float32
	// ClipNorm clips the gradient norm (0: none).
	ClipNorm float64
	// MaxDuration stops training cleanly between steps (0: none).
	MaxDuration time.Duration
	// Seed fixes shuffling and dropout.
	Seed uint64
	// Log, if set, is called after every epoch.
	Log func(EpochResult)
}

// DefaultFineTuneConfig returns the defaults for full fine-tuning (lr 1e-4
// is too low for LoRA: use about 1e-3 there): 4 epochs, batches of 32,
// weight decay 0.01, 10% warm-up, clipping at 1.
func DefaultFineTuneConfig() FineTuneConfig {
	return FineTuneConfig{Epochs: 4, BatchSize: 32, LR: 2e-4, WeightDecay: 0.01, WarmupFrac: 0.1, ClipNorm: 1}
}

// EpochResult reports one fine-tuning epoch.
type EpochResult struct {
	Epoch     int
	TrainLoss float64
	// ValAccuracy and ValMacroF1 are measured on the validation texts
	// (zero when there are none).
	ValAccuracy, ValMacroF1 float64
	Seconds                 float64
}

// FineTune trains m (a classifier from NewFromPretrained, or NewTransformer
// for a model from scratch) on texts encoded with tok ([CLS] … [SEP], cut
// to the model's MaxLen) and integer labels in [0, NumClasses), evaluating
// on the validation texts after every epoch. Only parameters that require
// a gradient are trained, so a LoRA-prepared model trains its adapters and
// head. m is left in eval mode. A canceled ctx or MaxDuration stops
// training cleanly and returns the epochs done so far.
func FineTune(ctx context.Context, m *Transformer, tok text.Tokenizer, trainTexts []string, trainLabels []int,
	valTexts []string, valLabels []int, cfg FineTuneConfig) ([]EpochResult, error) {
	if m == nil || tok == nil {
		return nil, errors.New("textmodel.FineTune: nil model or tokenizer")
	}
	if len(trainTexts) == 0 || len(trainTexts) != len(trainLabels) || len(valTexts) != len(valLabels) {
		return nil, fmt.Errorf("textmodel.FineTune: %d training texts with %d labels, %d validation texts with %d labels",
			len(trainTexts), len(trainLabels), len(valTexts), len(valLabels))
	}
	if cfg.Epochs <= 0 || cfg.BatchSize <= 0 || !(cfg.LR > 0) {
		return nil, fmt.Errorf("textmodel.FineTune: epochs %d, batch size %d and lr %v must be positive", cfg.Epochs, cfg.BatchSize, cfg.LR)
	}
	C := m.Cfg.NumClasses
	for _, l := range append(append([]int(nil), trainLabels...), valLabels...) {
		if l < 0 || l >= C {
			return nil, fmt.Errorf("textmodel.FineTune: label %d not in [0, %d)", l, C)
		}
	}
	var lossOpts []nn.LossOption
	if cfg.ClassWeights != nil {
		if len(cfg.ClassWeights) != C {
			return nil, fmt.Errorf("textmodel.FineTune: %d class weights for %d classes", len(cfg.ClassWeights), C)
		}
		lossOpts = append(lossOpts, nn.WithWeight(tensor.FromSlice(append([]float32(nil), cfg.ClassWeights...), C)))
	}
	enc := text.EncodeOptions{MaxLen: m.Cfg.MaxLen, Truncation: true, AddSpecial: true}
	trainSeqs := encodeAll(tok, trainTexts, enc)
	valSeqs := encodeAll(tok, valTexts, enc)

	// Dropout layers may share one generator (the constructors pass one RNG
	// to all of them), so reseed in a fixed order: map order would make the
	// surviving seed, and so the masks, differ from run to run.
	sources := nn.RandomSources(m)
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := fnv.New64a()
		h.Write([]byte(name))
		*sources[name] = *tensor.NewRNG(cfg.Seed ^ h.Sum64())
	}
	params := nn.TrainableParameters(m)
	opt := optim.NewAdamW(params, optim.AdamConfig{LR: cfg.LR, WeightDecay: cfg.WeightDecay})
	perEpoch := (len(trainSeqs) + cfg.BatchSize - 1) / cfg.BatchSize
	sched := newWarmupLinear(opt, int(cfg.WarmupFrac*float64(perEpoch*cfg.Epochs)), perEpoch*cfg.Epochs)
	shuffle := tensor.NewRNG(cfg.Seed)
	start := time.Now()
	var results []EpochResult
	defer nn.Eval(m)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		t0 := time.Now()
		nn.Train(m)
		order := shuffle.Perm(len(trainSeqs))
		var sum float64
		var n int
		stopped := false
		for b := 0; b < len(order); b += cfg.BatchSize {
			if ctx.Err() != nil || (cfg.MaxDuration > 0 && time.Since(start) >= cfg.MaxDuration) {
				stopped = true
				break
			}
			idx := order[b:min(b+cfg.BatchSize, len(order))]
			seqs := make([][]int, len(idx))
			tg := make([]int64, len(idx))
			for i, j := range idx {
				seqs[i], tg[i] = trainSeqs[j], int64(trainLabels[j])
			}
			opt.ZeroGrad()
			loss := nn.CrossEntropy(m.Forward(padIDs(seqs)), tensor.FromInt64(tg, len(tg)), lossOpts...)
			loss.Backward()
			if cfg.ClipNorm > 0 {
				optim.ClipGradNorm(params, cfg.ClipNorm, 2)
			}
			opt.Step()
			sched.step()
			sum += float64(loss.Item())
			n++
		}
		if n == 0 {
			break
		}
		res := EpochResult{Epoch: epoch, TrainLoss: sum / float64(n)}
		if len(valSeqs) > 0 {
			pred := predictSeqs(m, valSeqs, 128)
			res.ValAccuracy, res.ValMacroF1 = AccuracyMacroF1(pred, valLabels, C)
		}
		res.Seconds = time.Since(t0).Seconds()
		results = append(results, res)
		if cfg.Log != nil {
			cfg.Log(res)
		}
		if stopped {
			break
		}
	}
	return results, nil
}

func encodeAll(tok text.Tokenizer, texts []string, opt text.EncodeOptions) [][]int {
	out := make([][]int, len(texts))
	for i, s := range texts {
		ids, err := text.EncodeSequence(tok, clip(s), opt)
		if err != nil || len(ids) == 0 {
			ids = []int{text.ClsID, text.SepID}
		}
		out[i] = ids
	}
	return out
}

func padIDs(seqs [][]int) *tensor.Tensor {
	return text.Pad(seqs, text.EncodeOptions{}).IDs
}

// predictSeqs returns the arg-max class of every sequence, in eval mode.
func predictSeqs(m nn.Module, seqs [][]int, batch int) []int {
	nn.Eval(m)
	out := make([]int, 0, len(seqs))
	tensor.NoGrad(func() {
		for b := 0; b < len(seqs); b += batch {
			logits := m.Forward(padIDs(seqs[b:min(b+batch, len(seqs))]))
			C := logits.Size(1)
			d := logits.Data()
			for i := range logits.Size(0) {
				best := 0
				for c := 1; c < C; c++ {
					if d[i*C+c] > d[i*C+best] {
						best = c
					}
				}
				out = append(out, best)
			}
		}
	})
	return out
}

// PredictClasses returns the arg-max class of each text under m, encoding
// the texts with tok as FineTune does.
func PredictClasses(m *Transformer, tok text.Tokenizer, texts []string) []int {
	return predictSeqs(m, encodeAll(tok, texts, text.EncodeOptions{MaxLen: m.Cfg.MaxLen, Truncation: true, AddSpecial: true}), 128)
}

// AccuracyMacroF1 returns the accuracy of pred against gold and the
// unweighted mean of the per-class F1 over the classes in [0, C) that occur
// in gold or pred.
func AccuracyMacroF1(pred, gold []int, C int) (acc, macroF1 float64) {
	if len(pred) != len(gold) || len(gold) == 0 {
		return 0, 0
	}
	tp := make([]int, C)
	fp := make([]int, C)
	fn := make([]int, C)
	correct := 0
	for i, p := range pred {
		g := gold[i]
		if p == g {
			correct++
			tp[g]++
		} else {
			fp[p]++
			fn[g]++
		}
	}
	var sum float64
	k := 0
	for c := range C {
		if tp[c]+fp[c]+fn[c] == 0 {
			continue
		}
		sum += 2 * float64(tp[c]) / float64(2*tp[c]+fp[c]+fn[c])
		k++
	}
	return float64(correct) / float64(len(gold)), sum / float64(max(k, 1))
}

// SaveClassifier writes a fine-tuned classifier as a text model package:
// model.json (architecture "TextTransformer", the tokenizer as the tokenize
// preprocessing op, input "input_ids" int64 [-1, -1], output "logits"
// float32 [-1, C], labels, metadata) and weights.safetensors. A model with
// LoRA adapters is merged first (MergeLoRA), so the package is a plain
// classifier.
func SaveClassifier(dir string, m *Transformer, tok text.Tokenizer, labels []string, meta map[string]any) error {
	if m == nil || tok == nil {
		return errors.New("textmodel.SaveClassifier: nil model or tokenizer")
	}
	MergeLoRA(m)
	op, err := TokenizeOp(tok, m.Cfg.MaxLen, true)
	if err != nil {
		return fmt.Errorf("textmodel.SaveClassifier: %v", err)
	}
	return model.Save(dir, &model.Package{
		Name:       "text-transformer",
		Module:     m,
		Preprocess: []model.PreprocessOp{op},
		Labels:     labels,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "input_ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, m.Cfg.NumClasses}}},
		},
		Metadata: meta,
	})
}
