// Package textmodel holds text classifiers built from the nn layers: a
// fastText-style bag of n-grams (ArchBOW), a bidirectional LSTM (ArchLSTM)
// a Transformer encoder (ArchTransformer), and an ensemble of bow and lstm
// members (ArchEnsemble). Every classifier is an
// nn.Module whose Forward takes a batch of token ids (int64 [N, T], padded
// with text.PadID = 0; the mask is derived as ids != 0) and returns class
// logits [N, C]. They are registered in the model layer registry (types
// "TextBOW", "TextLSTM", "TextTransformer", "TextEnsemble"), so a model package saved with
// them loads with model.Load once this package is imported.
//
// tokenizer_pkg.go adds what serving needs: the "tokenize" preprocessing
// op that embeds the tokenizer in model.json, and helpers to encode raw
// texts with it.
package textmodel

import (
	"errors"
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
	// ArchEnsemble averages the class probabilities of bow and lstm
	// members that read the same token ids.
	ArchEnsemble = "ensemble"
)

// Pooling modes.
const (
	PoolMax  = "max"
	PoolMean = "mean"
	PoolCLS  = "cls"
	// PoolMaxMean concatenates the masked max and the masked mean (lstm).
	PoolMaxMean = "maxmean"
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
	// Buckets is the number of hash buckets for bigrams and character
	// n-grams (bow; 0: none).
	Buckets int `json:"buckets,omitempty"`
	// MinN and MaxN are the lengths (in runes) of bow's character n-gram
	// features, fastText's subwords: the n-grams of "<" + word + ">" for
	// every vocabulary word, hashed into the Buckets rows (see
	// BOW.SetSubwords). MaxN 0: none.
	MinN int `json:"min_n,omitempty"`
	MaxN int `json:"max_n,omitempty"`
	// Subwords is the most character n-grams kept per word (bow, MaxN > 0).
	Subwords int `json:"subwords,omitempty"`
	// Hidden is the LSTM hidden size per direction, or the Transformer's
	// feed-forward size.
	Hidden int `json:"hidden,omitempty"`
	// Layers is the number of LSTM or Transformer layers.
	Layers int `json:"layers,omitempty"`
	// Heads is the Transformer's number of attention heads.
	Heads int `json:"heads,omitempty"`
	// MaxLen is the longest sequence the Transformer's positions cover.
	MaxLen int `json:"max_len,omitempty"`
	// Pool is "max", "mean" or "maxmean" (lstm), "cls" or "mean"
	// (transformer).
	Pool string `json:"pool,omitempty"`
	// Dropout is applied before the output layer (and inside the
	// Transformer layers).
	Dropout float32 `json:"dropout,omitempty"`
	// EmbedDropout is dropout on the token embeddings before the LSTM
	// (lstm; 0: none).
	EmbedDropout float32 `json:"embed_dropout,omitempty"`
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
	if c.Arch == ArchEnsemble {
		if c.VocabSize <= text.PadID || c.NumClasses < 2 {
			return fmt.Errorf("textmodel: ensemble: vocab_size %d and num_classes %d must be positive (at least 2 classes)", c.VocabSize, c.NumClasses)
		}
		return nil
	}
	if c.VocabSize <= text.PadID || c.NumClasses < 2 || c.Dim <= 0 {
		return fmt.Errorf("textmodel: vocab_size %d, num_classes %d and dim %d must be positive (at least 2 classes)", c.VocabSize, c.NumClasses, c.Dim)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) || !(c.EmbedDropout >= 0 && c.EmbedDropout < 1) {
		return fmt.Errorf("textmodel: dropout %v or embed_dropout %v not in [0, 1)", c.Dropout, c.EmbedDropout)
	}
	switch c.Arch {
	case ArchBOW:
		if c.Buckets < 0 {
			return fmt.Errorf("textmodel: bow: buckets %d is negative", c.Buckets)
		}
		if c.MaxN > 0 && (c.MinN < 1 || c.MinN > c.MaxN || c.MaxN > 16 || c.Buckets == 0 || c.Subwords < 1 || c.Subwords > 1024) {
			return fmt.Errorf("textmodel: bow: character n-grams %d-%d need 1 <= min_n <= max_n <= 16, buckets > 0 (have %d) and subwords in [1, 1024] (have %d)",
				c.MinN, c.MaxN, c.Buckets, c.Subwords)
		}
		if c.MaxN <= 0 && (c.MinN != 0 || c.MaxN < 0 || c.Subwords != 0) {
			return fmt.Errorf("textmodel: bow: min_n %d and subwords %d without max_n", c.MinN, c.Subwords)
		}
	case ArchLSTM:
		if c.Hidden <= 0 || c.Layers < 1 || c.Layers > nn.MaxRNNLayers {
			return fmt.Errorf("textmodel: lstm: hidden %d must be positive and layers %d in [1, %d]", c.Hidden, c.Layers, nn.MaxRNNLayers)
		}
		if c.Pool != PoolMax && c.Pool != PoolMean && c.Pool != PoolMaxMean {
			return fmt.Errorf("textmodel: lstm: pool %q, want %q, %q or %q", c.Pool, PoolMax, PoolMean, PoolMaxMean)
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
		return fmt.Errorf("textmodel: unknown architecture %q (want %s, %s, %s or %s)", c.Arch, ArchBOW, ArchLSTM, ArchTransformer, ArchEnsemble)
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
// configurations are errors; an ensemble is made with NewEnsemble.
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
	case ArchEnsemble:
		return nil, errors.New("textmodel.New: an ensemble is made from its trained members with NewEnsemble")
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
// text's unigram ids, of its bigrams, hashed into Buckets extra rows of
// the same table, and (with Cfg.MaxN > 0) of the character n-grams of its
// words, hashed into the same rows, followed by a linear layer.
type BOW struct {
	// Embedding has VocabSize + Buckets rows; row 0 (padding) stays zero.
	Embedding *nn.Embedding
	Dropout   *nn.Dropout
	FC        *nn.Linear
	// Subwords (int64 [VocabSize, Cfg.Subwords], only with Cfg.MaxN > 0)
	// lists the table rows of each word's character n-grams, 0 after the
	// last; SetSubwords fills it, and it is saved with the weights.
	Subwords *tensor.Tensor `nn:"subwords,buffer"`
	Cfg      Config         `nn:"-"`
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
	m := &BOW{Embedding: emb, Dropout: nn.NewDropout(r, cfg.Dropout), FC: nn.NewLinear(r, cfg.Dim, cfg.NumClasses, true), Cfg: cfg}
	if cfg.MaxN > 0 {
		m.Subwords = tensor.FromInt64(make([]int64, cfg.VocabSize*cfg.Subwords), cfg.VocabSize, cfg.Subwords)
	}
	return m
}

// CharNGrams returns the character n-grams (minN to maxN runes) of
// "<" + word + ">", shortest first, left to right.
func CharNGrams(word string, minN, maxN int) []string {
	r := []rune("<" + word + ">")
	var out []string
	for n := minN; n <= maxN; n++ {
		for i := 0; i+n <= len(r); i++ {
			out = append(out, string(r[i:i+n]))
		}
	}
	return out
}

// NGramBucket returns the table row of a character n-gram: VocabSize plus
// an FNV-1a hash of its bytes (after a 0xff byte, which no UTF-8 text
// holds) modulo buckets.
func NGramBucket(gram string, vocab, buckets int) int64 {
	h := fnv.New64a()
	h.Write([]byte{0xff})
	h.Write([]byte(gram))
	return int64(vocab) + int64(h.Sum64()%uint64(buckets))
}

// hasSubwords reports whether word (of vocabulary id id) gets character
// n-grams: not the special tokens, which are not words.
func hasSubwords(id int, word string) bool {
	return id > text.MaskID && word != text.URLToken
}

// MaxSubwords returns the number of character n-grams (minN to maxN) of
// the longest of words, at most limit: the Config.Subwords that keeps
// them all.
func MaxSubwords(words []string, minN, maxN, limit int) int {
	k := 1
	for id, w := range words {
		if !hasSubwords(id, w) {
			continue
		}
		r := len([]rune(w)) + 2
		n := 0
		for l := minN; l <= maxN && l <= r; l++ {
			n += r - l + 1
		}
		k = max(k, min(n, limit))
	}
	return k
}

// SetSubwords fills the Subwords table from the vocabulary (words[id] is
// the token of id; len(words) must be VocabSize): the first Cfg.Subwords
// character n-grams of every word except the special tokens. It panics
// if the classifier has no character n-grams.
func (m *BOW) SetSubwords(words []string) {
	if m.Subwords == nil || len(words) != m.Cfg.VocabSize {
		panic(fmt.Sprintf("textmodel.BOW.SetSubwords: %d words for a vocabulary of %d (max_n %d)", len(words), m.Cfg.VocabSize, m.Cfg.MaxN))
	}
	k := m.Cfg.Subwords
	tab := m.Subwords.Int64s()
	clear(tab)
	for id, w := range words {
		if !hasSubwords(id, w) {
			continue
		}
		for j, g := range CharNGrams(w, m.Cfg.MinN, m.Cfg.MaxN) {
			if j == k {
				break
			}
			tab[id*k+j] = NGramBucket(g, m.Cfg.VocabSize, m.Cfg.Buckets)
		}
	}
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
// (with buckets) the bigrams of adjacent non-padding ids, then (with
// character n-grams) the n-gram rows of each non-padding id in turn.
func (m *BOW) Features(ids *tensor.Tensor) (feats, mask *tensor.Tensor) {
	data, n, t, lens := trimIDs("textmodel.BOW", ids, m.Cfg.VocabSize)
	f := t
	if m.Cfg.Buckets > 0 {
		f += max(t-1, 0)
	}
	var sub []int64
	nsub := 0
	if m.Subwords != nil {
		sub = m.Subwords.Int64s()
		for i := range n {
			c := 0
			for _, v := range data[i*t : i*t+lens[i]] {
				for _, r := range sub[int(v)*m.Cfg.Subwords : int(v+1)*m.Cfg.Subwords] {
					if r == 0 {
						break
					}
					c++
				}
			}
			nsub = max(nsub, c)
		}
	}
	subStart := f
	f += nsub
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
		c := subStart
		for _, v := range row[:lens[i]] {
			for _, r := range sub[int(v)*m.Cfg.Subwords : int(v+1)*m.Cfg.Subwords] {
				if r == 0 {
					break
				}
				o[c], k[c] = r, 1
				c++
			}
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

// LSTM is embedding → (embedding dropout) → bidirectional LSTM → masked
// max, mean or both (concatenated) pooling over the valid steps → dropout
// → linear.
type LSTM struct {
	Embedding *nn.Embedding
	LSTM      *nn.LSTM
	Dropout   *nn.Dropout
	FC        *nn.Linear
	// EmbedDropout is nil when Cfg.EmbedDropout is 0.
	EmbedDropout *nn.Dropout
	Cfg          Config `nn:"-"`
}

// NewLSTM makes an LSTM classifier (cfg.Arch must be ArchLSTM).
func NewLSTM(r *tensor.RNG, cfg Config) *LSTM {
	checkArch("textmodel.NewLSTM", cfg, ArchLSTM)
	emb := nn.NewEmbedding(r, cfg.VocabSize, cfg.Dim, text.PadID)
	lstm := nn.NewLSTM(r, cfg.Dim, cfg.Hidden, nn.RNNOptions{NumLayers: cfg.Layers, Bias: true, BatchFirst: true,
		Bidirectional: true, Dropout: cfg.Dropout})
	pooled := 2 * cfg.Hidden
	if cfg.Pool == PoolMaxMean {
		pooled *= 2
	}
	m := &LSTM{Embedding: emb, LSTM: lstm, Dropout: nn.NewDropout(r, cfg.Dropout),
		FC: nn.NewLinear(r, pooled, cfg.NumClasses, true), Cfg: cfg}
	if cfg.EmbedDropout > 0 {
		m.EmbedDropout = nn.NewDropout(r, cfg.EmbedDropout)
	}
	return m
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
	if m.EmbedDropout != nil {
		x = m.EmbedDropout.Forward(x)
	}
	out, _, _ := m.LSTM.ForwardSeq(x, lens, nil, nil)
	mask := lengthMask(lens, t)
	var h *tensor.Tensor
	switch m.Cfg.Pool {
	case PoolMean:
		h = nn.MaskedMean(out, mask)
	case PoolMaxMean:
		h = tensor.Concat([]*tensor.Tensor{nn.MaskedMax(out, mask), nn.MaskedMean(out, mask)}, 1)
	default:
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

// ---- ensemble ----

// Ensemble is a classifier made of trained bow and lstm members that read
// the same token ids (one tokenizer): its logits are the logarithm of the
// mean of the members' class probabilities (softmax of their logits), so
// their softmax is that mean. Cfg has Arch ArchEnsemble, VocabSize and
// NumClasses; the members keep their own configurations.
type Ensemble struct {
	Members []Classifier
	Cfg     Config `nn:"-"`
}

// minProb keeps the logarithm of a mean probability finite.
const minProb = 1e-30

// NewEnsemble makes an ensemble of members, which must be bow or lstm
// classifiers with the same vocabulary size and number of classes; cfg is
// derived from them. Bad members are errors.
func NewEnsemble(members ...Classifier) (*Ensemble, error) {
	if len(members) == 0 {
		return nil, errors.New("textmodel.NewEnsemble: no members")
	}
	first := members[0].Config()
	for i, m := range members {
		c := m.Config()
		if c.Arch != ArchBOW && c.Arch != ArchLSTM {
			return nil, fmt.Errorf("textmodel.NewEnsemble: member %d is a %q classifier, want %q or %q", i, c.Arch, ArchBOW, ArchLSTM)
		}
		if c.VocabSize != first.VocabSize || c.NumClasses != first.NumClasses {
			return nil, fmt.Errorf("textmodel.NewEnsemble: member %d has vocab_size %d and %d classes, member 0 %d and %d",
				i, c.VocabSize, c.NumClasses, first.VocabSize, first.NumClasses)
		}
	}
	return &Ensemble{Members: members, Cfg: Config{Arch: ArchEnsemble, VocabSize: first.VocabSize, NumClasses: first.NumClasses}}, nil
}

// Config returns the configuration.
func (m *Ensemble) Config() Config { return m.Cfg }

// Forward returns log(mean_i softmax(member_i(ids))) [N, C] for ids [N, T]
// (probabilities below 1e-30 count as 1e-30).
func (m *Ensemble) Forward(ids *tensor.Tensor) *tensor.Tensor {
	var sum *tensor.Tensor
	for _, c := range m.Members {
		p := tensor.Softmax(c.Forward(ids), 1)
		if sum == nil {
			sum = p
		} else {
			sum = tensor.Add(sum, p)
		}
	}
	mean := tensor.MulScalar(sum, 1/float32(len(m.Members)))
	return tensor.Log(tensor.Clamp(mean, minProb, 1))
}
