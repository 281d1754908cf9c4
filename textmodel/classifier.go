// Package textmodel holds text classifiers built from the nn layers: a
// fastText-style bag of n-grams (ArchBOW), a bidirectional LSTM (ArchLSTM)
// and a Transformer encoder (ArchTransformer). Every classifier is an
// nn.Module whose Forward takes a batch of token ids (int64 [N, T], padded
// with text.PadID = 0; the mask is derived as ids != 0) and returns class
// logits [N, C]. They are registered in the model layer registry (types
// "TextBOW", "TextLSTM", "TextTransformer"), so a model package saved with
// them loads with model.Load once this package is imported.
//
// tokenizer_pkg.go adds what serving needs: the "tokenize" preprocessing
// op that embeds the tokenizer in model.json, and helpers to encode raw
// texts with it.
package textmodel

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Architectures.
const (
	// ArchBOW is a fastText-style classifier: the mean of the embeddings of
	// the word unigrams and of hashed word bigrams, then a linear layer.
	ArchBOW = "bow"
	// ArchLSTM is embedding → bidirectional LSTM → masked max or mean
	// pooling → linear.
	ArchLSTM = "lstm"
	// ArchTransformer is embedding + learned positions → Transformer
	// encoder → [CLS] or masked mean pooling → linear.
	ArchTransformer = "transformer"
)

// Pooling modes.
const (
	PoolMax  = "max"
	PoolMean = "mean"
	PoolCLS  = "cls"
)

// Config describes a classifier. Fields that an architecture does not use
// are ignored (and left zero by DefaultConfig).
type Config struct {
	// Arch is ArchBOW, ArchLSTM or ArchTransformer.
	Arch string `json:"arch"`
	// VocabSize is the tokenizer's vocabulary size (ids 0..VocabSize-1).
	VocabSize int `json:"vocab_size"`
	// NumClasses is the number of output classes.
	NumClasses int `json:"num_classes"`
	// Dim is the embedding size (the model width for the Transformer).
	Dim int `json:"dim"`
	// Buckets is the number of hash buckets for bigrams (bow; 0: none).
	Buckets int `json:"buckets,omitempty"`
	// Hidden is the LSTM hidden size per direction, or the Transformer's
	// feed-forward size.
	Hidden int `json:"hidden,omitempty"`
	// Layers is the number of LSTM or Transformer layers.
	Layers int `json:"layers,omitempty"`
	// Heads is the Transformer's number of attention heads.
	Heads int `json:"heads,omitempty"`
	// MaxLen is the longest sequence the Transformer's positions cover.
	MaxLen int `json:"max_len,omitempty"`
	// Pool is "max" or "mean" (lstm), "cls" or "mean" (transformer).
	Pool string `json:"pool,omitempty"`
	// Dropout is applied before the output layer (and inside the
	// Transformer layers).
	Dropout float32 `json:"dropout,omitempty"`
}

// DefaultConfig returns the default configuration of arch for a
// vocabulary of vocab tokens and classes classes.
func DefaultConfig(arch string, vocab, classes int) Config {
	c := Config{Arch: arch, VocabSize: vocab, NumClasses: classes}
	switch arch {
	case ArchBOW:
		c.Dim, c.Buckets, c.Dropout = 64, 1<<17, 0.5
	case ArchLSTM:
		c.Dim, c.Hidden, c.Layers, c.Pool, c.Dropout = 128, 128, 1, PoolMax, 0.3
	case ArchTransformer:
		c.Dim, c.Hidden, c.Layers, c.Heads, c.MaxLen, c.Pool, c.Dropout = 128, 256, 2, 4, 128, PoolMean, 0.1
	}
	return c
}

// Validate checks that c describes a buildable classifier.
func (c Config) Validate() error {
	if c.VocabSize <= text.PadID || c.NumClasses < 2 || c.Dim <= 0 {
		return fmt.Errorf("textmodel: vocab_size %d, num_classes %d and dim %d must be positive (at least 2 classes)", c.VocabSize, c.NumClasses, c.Dim)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("textmodel: dropout %v not in [0, 1)", c.Dropout)
	}
	switch c.Arch {
	case ArchBOW:
		if c.Buckets < 0 {
			return fmt.Errorf("textmodel: bow: buckets %d is negative", c.Buckets)
		}
	case ArchLSTM:
		if c.Hidden <= 0 || c.Layers < 1 || c.Layers > nn.MaxRNNLayers {
			return fmt.Errorf("textmodel: lstm: hidden %d must be positive and layers %d in [1, %d]", c.Hidden, c.Layers, nn.MaxRNNLayers)
		}
		if c.Pool != PoolMax && c.Pool != PoolMean {
			return fmt.Errorf("textmodel: lstm: pool %q, want %q or %q", c.Pool, PoolMax, PoolMean)
		}
	case ArchTransformer:
		if c.Hidden <= 0 || c.Layers < 1 || c.Heads <= 0 || c.MaxLen <= 0 || c.Dim%c.Heads != 0 {
			return fmt.Errorf("textmodel: transformer: hidden %d, layers %d, heads %d and max_len %d must be positive, dim %d divisible by heads",
				c.Hidden, c.Layers, c.Heads, c.MaxLen, c.Dim)
		}
		if c.Pool != PoolCLS && c.Pool != PoolMean {
			return fmt.Errorf("textmodel: transformer: pool %q, want %q or %q", c.Pool, PoolCLS, PoolMean)
		}
	default:
		return fmt.Errorf("textmodel: unknown architecture %q (want %s, %s or %s)", c.Arch, ArchBOW, ArchLSTM, ArchTransformer)
	}
	return nil
}

// Classifier is the common interface of the text classifiers: Forward
// takes token ids int64 [N, T] (padding text.PadID, trailing) and returns
// logits [N, NumClasses].
type Classifier interface {
	nn.Module
	// Config returns the classifier's configuration.
	Config() Config
}

// New makes a classifier for cfg, initialised from r. Invalid
// configurations are errors.
func New(r *tensor.RNG, cfg Config) (c Classifier, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("textmodel.New: %v", p)
		}
	}()
	switch cfg.Arch {
	case ArchBOW:
		return NewBOW(r, cfg), nil
	case ArchLSTM:
		return NewLSTM(r, cfg), nil
	default:
		return NewTransformer(r, cfg), nil
	}
}

// trimIDs checks ids (int64 [N, T]) and returns them cut to the longest
// unpadded row, with each row's length (number of ids up to the last
// non-padding one). Rows are read as is: padding is expected at the end.
func trimIDs(op string, ids *tensor.Tensor, vocab int) (data []int64, n, t int, lens []int) {
	if ids == nil || ids.DType() != tensor.Int64 || ids.Dim() != 2 {
		shape := []int(nil)
		if ids != nil {
			shape = ids.Shape()
		}
		panic(fmt.Sprintf("%s: want int64 token ids [N, T], got shape %v", op, shape))
	}
	n, T := ids.Size(0), ids.Size(1)
	src := ids.Int64s()
	lens = make([]int, n)
	for i := range n {
		row := src[i*T : (i+1)*T]
		for j, v := range row {
			if v < 0 || v >= int64(vocab) {
				panic(fmt.Sprintf("%s: token id %d out of range for a vocabulary of %d (ids of shape %v)", op, v, vocab, ids.Shape()))
			}
			if v != text.PadID {
				lens[i] = j + 1
			}
		}
		t = max(t, lens[i])
	}
	t = max(t, 1)
	if t == T {
		return src, n, t, lens
	}
	data = make([]int64, n*t)
	for i := range n {
		copy(data[i*t:(i+1)*t], src[i*T:i*T+min(t, T)])
	}
	return data, n, t, lens
}

// lengthMask returns the float32 [N, T] mask of positions below each
// length.
func lengthMask(lens []int, t int) *tensor.Tensor {
	m := make([]float32, len(lens)*t)
	for i, l := range lens {
		for j := range l {
			m[i*t+j] = 1
		}
	}
	return tensor.FromSlice(m, len(lens), t)
}

// ---- bag of n-grams ----

// BOW is the fastText-style classifier: the mean of the embeddings of a
// text's unigram ids and of its bigrams, hashed into Buckets extra rows of
// the same table, followed by a linear layer.
type BOW struct {
	// Embedding has VocabSize + Buckets rows; row 0 (padding) stays zero.
	Embedding *nn.Embedding
	Dropout   *nn.Dropout
	FC        *nn.Linear
	Cfg       Config `nn:"-"`
}

// NewBOW makes a BOW classifier (cfg.Arch must be ArchBOW; sizes are
// checked by Config.Validate, and bad ones panic).
func NewBOW(r *tensor.RNG, cfg Config) *BOW {
	checkArch("textmodel.NewBOW", cfg, ArchBOW)
	emb := nn.NewEmbedding(r, cfg.VocabSize+cfg.Buckets, cfg.Dim, text.PadID)
	// fastText initialises the input vectors uniformly in ±1/dim.
	bound := 1 / float64(cfg.Dim)
	nn.Uniform(emb.Weight, -bound, bound, r)
	clear(emb.Weight.Data()[:cfg.Dim]) // keep the padding row zero
	return &BOW{Embedding: emb, Dropout: nn.NewDropout(r, cfg.Dropout), FC: nn.NewLinear(r, cfg.Dim, cfg.NumClasses, true), Cfg: cfg}
}

func checkArch(op string, cfg Config, arch string) {
	if cfg.Arch != arch {
		panic(fmt.Sprintf("%s: config is for arch %q", op, cfg.Arch))
	}
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("%s: %v", op, err))
	}
}

// Config returns the configuration.
func (m *BOW) Config() Config { return m.Cfg }

// BigramBucket returns the table row of the bigram (a, b): VocabSize plus
// an FNV-1a hash of the pair modulo buckets.
func BigramBucket(a, b int64, vocab, buckets int) int64 {
	h := fnv.New64a()
	var buf [16]byte
	for i := range 8 {
		buf[i] = byte(a >> (8 * i))
		buf[8+i] = byte(b >> (8 * i))
	}
	h.Write(buf[:])
	return int64(vocab) + int64(h.Sum64()%uint64(buckets))
}

// Features returns the n-gram rows of a batch of ids [N, T] as int64
// [N, F] and the float32 mask [N, F] of the valid ones: the unigrams, then
// (with buckets) the bigrams of adjacent non-padding ids.
func (m *BOW) Features(ids *tensor.Tensor) (feats, mask *tensor.Tensor) {
	data, n, t, lens := trimIDs("textmodel.BOW", ids, m.Cfg.VocabSize)
	f := t
	if m.Cfg.Buckets > 0 {
		f += max(t-1, 0)
	}
	out := make([]int64, n*f)
	mk := make([]float32, n*f)
	for i := range n {
		row := data[i*t : (i+1)*t]
		o, k := out[i*f:(i+1)*f], mk[i*f:(i+1)*f]
		for j := range lens[i] {
			o[j] = row[j]
			if row[j] != text.PadID {
				k[j] = 1
			}
		}
		if m.Cfg.Buckets == 0 {
			continue
		}
		for j := 0; j+1 < lens[i]; j++ {
			if row[j] == text.PadID || row[j+1] == text.PadID {
				continue
			}
			o[t+j] = BigramBucket(row[j], row[j+1], m.Cfg.VocabSize, m.Cfg.Buckets)
			k[t+j] = 1
		}
	}
	return tensor.FromInt64(out, n, f), tensor.FromSlice(mk, n, f)
}

// Forward returns the logits [N, C] of ids [N, T].
func (m *BOW) Forward(ids *tensor.Tensor) *tensor.Tensor {
	feats, mask := m.Features(ids)
	h := nn.MaskedMean(m.Embedding.Forward(feats), mask)
	return m.FC.Forward(m.Dropout.Forward(h))
}

// ---- BiLSTM ----

// LSTM is embedding → bidirectional LSTM → masked max or mean pooling over
// the valid steps → dropout → linear.
type LSTM struct {
	Embedding *nn.Embedding
	LSTM      *nn.LSTM
	Dropout   *nn.Dropout
	FC        *nn.Linear
	Cfg       Config `nn:"-"`
}

// NewLSTM makes an LSTM classifier (cfg.Arch must be ArchLSTM).
func NewLSTM(r *tensor.RNG, cfg Config) *LSTM {
	checkArch("textmodel.NewLSTM", cfg, ArchLSTM)
	emb := nn.NewEmbedding(r, cfg.VocabSize, cfg.Dim, text.PadID)
	lstm := nn.NewLSTM(r, cfg.Dim, cfg.Hidden, nn.RNNOptions{NumLayers: cfg.Layers, Bias: true, BatchFirst: true,
		Bidirectional: true, Dropout: cfg.Dropout})
	return &LSTM{Embedding: emb, LSTM: lstm, Dropout: nn.NewDropout(r, cfg.Dropout),
		FC: nn.NewLinear(r, 2*cfg.Hidden, cfg.NumClasses, true), Cfg: cfg}
}

// Config returns the configuration.
func (m *LSTM) Config() Config { return m.Cfg }

// Forward returns the logits [N, C] of ids [N, T]. An empty row (all
// padding) is run as one padding step.
func (m *LSTM) Forward(ids *tensor.Tensor) *tensor.Tensor {
	data, n, t, lens := trimIDs("textmodel.LSTM", ids, m.Cfg.VocabSize)
	for i := range lens {
		lens[i] = max(lens[i], 1)
	}
	x := m.Embedding.Forward(tensor.FromInt64(data, n, t))
	out, _, _ := m.LSTM.ForwardSeq(x, lens, nil, nil)
	mask := lengthMask(lens, t)
	var h *tensor.Tensor
	if m.Cfg.Pool == PoolMean {
		h = nn.MaskedMean(out, mask)
	} else {
		h = nn.MaskedMax(out, mask)
	}
	return m.FC.Forward(m.Dropout.Forward(h))
}

// ---- Transformer ----

// Transformer is token embedding (scaled by √Dim) + learned positions →
// Transformer encoder (pre-norm, GELU, key padding mask) → the first
// position ([CLS], with Pool "cls") or the masked mean → dropout → linear.
// Its fields are exported so that a pretrained encoder (MLM pretraining)
// can be put in place before fine-tuning.
type Transformer struct {
	Embedding *nn.Embedding
	Positions *nn.LearnedPositionalEmbedding
	Encoder   *nn.TransformerEncoder
	Dropout   *nn.Dropout
	FC        *nn.Linear
	Cfg       Config `nn:"-"`
}

// EncoderLayerConfig returns the encoder layer configuration that
// NewTransformer uses for cfg.
func EncoderLayerConfig(cfg Config) nn.TransformerEncoderLayerConfig {
	return nn.TransformerEncoderLayerConfig{DModel: cfg.Dim, NHead: cfg.Heads, DimFeedforward: cfg.Hidden,
		Dropout: cfg.Dropout, Activation: "gelu", LayerNormEps: 1e-5, BatchFirst: true, NormFirst: true}
}

// NewTransformer makes a Transformer classifier (cfg.Arch must be
// ArchTransformer), with embeddings and positions drawn from N(0, 0.02²).
func NewTransformer(r *tensor.RNG, cfg Config) *Transformer {
	checkArch("textmodel.NewTransformer", cfg, ArchTransformer)
	return NewTransformerWith(r, cfg, nn.NewTransformerEncoder(r, EncoderLayerConfig(cfg), cfg.Layers, true))
}

// NewTransformerWith makes a Transformer classifier around an existing
// encoder (batch-first, width cfg.Dim), e.g. a pretrained one; the other
// layers are new. cfg.Layers, Heads and Hidden are informative only.
func NewTransformerWith(r *tensor.RNG, cfg Config, enc *nn.TransformerEncoder) *Transformer {
	checkArch("textmodel.NewTransformerWith", cfg, ArchTransformer)
	if enc == nil {
		panic("textmodel.NewTransformerWith: nil encoder")
	}
	emb := nn.NewEmbedding(r, cfg.VocabSize, cfg.Dim, text.PadID)
	nn.Normal(emb.Weight, 0, 0.02, r)
	clear(emb.Weight.Data()[:cfg.Dim])
	pos := nn.NewLearnedPositionalEmbedding(r, cfg.MaxLen, cfg.Dim, true)
	nn.Normal(pos.Weight, 0, 0.02, r)
	return &Transformer{Embedding: emb, Positions: pos, Encoder: enc, Dropout: nn.NewDropout(r, cfg.Dropout),
		FC: nn.NewLinear(r, cfg.Dim, cfg.NumClasses, true), Cfg: cfg}
}

// Config returns the configuration.
func (m *Transformer) Config() Config { return m.Cfg }

// Encode runs the embedding, positions and encoder on ids [N, T] (longer
// than MaxLen: cut to MaxLen) and returns the hidden states [N, T', Dim]
// and the float32 mask [N, T'] of the real tokens.
func (m *Transformer) Encode(ids *tensor.Tensor) (hidden, mask *tensor.Tensor) {
	data, n, t, lens := trimIDs("textmodel.Transformer", ids, m.Cfg.VocabSize)
	if t > m.Cfg.MaxLen {
		cut := make([]int64, n*m.Cfg.MaxLen)
		for i := range n {
			copy(cut[i*m.Cfg.MaxLen:(i+1)*m.Cfg.MaxLen], data[i*t:])
			lens[i] = min(lens[i], m.Cfg.MaxLen)
		}
		data, t = cut, m.Cfg.MaxLen
	}
	for i := range lens {
		lens[i] = max(lens[i], 1) // an empty row attends to its padding
	}
	x := tensor.MulScalar(m.Embedding.Forward(tensor.FromInt64(data, n, t)), float32(math.Sqrt(float64(m.Cfg.Dim))))
	x = m.Positions.Forward(x)
	h := m.Encoder.ForwardMasked(x, nil, nn.PaddingMask(lens, t))
	return h, lengthMask(lens, t)
}

// Forward returns the logits [N, C] of ids [N, T].
func (m *Transformer) Forward(ids *tensor.Tensor) *tensor.Tensor {
	h, mask := m.Encode(ids)
	var p *tensor.Tensor
	if m.Cfg.Pool == PoolCLS {
		p = tensor.Reshape(tensor.Slice(h, 1, 0, 1, 1), h.Size(0), h.Size(2))
	} else {
		p = nn.MaskedMean(h, mask)
	}
	return m.FC.Forward(m.Dropout.Forward(p))
}
