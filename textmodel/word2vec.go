package textmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
)

// Word-embedding pretraining for the bag-of-n-grams and LSTM classifiers:
// skip-gram with negative sampling (word2vec SGNS, Mikolov et al. 2013).
// Every word of the corpus (after subsampling of frequent words) predicts
// each word within a random window of 1..Window positions on either side
// against Negative words drawn from the unigram distribution raised to the
// power 0.75; the learning rate decays linearly to LR·1e-4 over the run.
// Training is a plain single-threaded loop with sparse updates of the rows
// involved (no autograd), so a run is a pure function of the corpus, the
// config and the seed, whatever the number of threads.

// Word2VecConfig configures TrainWord2Vec.
type Word2VecConfig struct {
	// Dim is the vector size (128, the LSTM classifier's embedding size).
	Dim int
	// Window is the largest distance of a context word (5).
	Window int
	// Negative is the number of negative samples per context word (5).
	Negative int
	// MinCount drops words seen fewer times (5); MaxVocab caps the
	// vocabulary, special tokens included (0: no cap).
	MinCount, MaxVocab int
	// Sample is the subsampling threshold t (1e-3): a word of corpus
	// frequency f is kept with probability (√(f/t)+1)·t/f.
	Sample float64
	// Epochs over the corpus (5); LR is the starting learning rate (0.025).
	Epochs int
	LR     float64
	// Normalizer and PreTokenizer make the word-level tokenizer; the
	// defaults (DefaultWord2VecConfig) are those of deepgo train text:
	// lower-cased, accents stripped, URLs as one token.
	Normalizer   text.Normalizer
	PreTokenizer text.PreTokenizer
	// Seed fixes initialisation, subsampling, windows and negatives.
	Seed uint64
	// MaxDuration stops training cleanly between texts (0: none).
	MaxDuration time.Duration
	// Log, if set, is called after every epoch with the epoch, the words
	// trained on so far and the mean loss per (word, context) pair of the
	// epoch.
	Log func(epoch int, words int64, loss float64)
}

// DefaultWord2VecConfig is the configuration of deepgo pretrain text
// --objective word2vec: 128-dimensional vectors, window 5, 5 negatives,
// min count 5, at most 50,000 words, subsampling 1e-3, 5 epochs, lr 0.025.
func DefaultWord2VecConfig() Word2VecConfig {
	return Word2VecConfig{Dim: 128, Window: 5, Negative: 5, MinCount: 5, MaxVocab: 50000, Sample: 1e-3, Epochs: 5, LR: 0.025,
		Normalizer: text.Normalizer{Lowercase: true, StripAccents: true}, PreTokenizer: text.PreTokenizer{URLToken: true}}
}

// WordVectors are pretrained word vectors with their word-level tokenizer:
// row i of Vectors ([vocab, Dim]) is the vector of token id i. The rows of
// [PAD], of the other special tokens that never occur in text ([UNK],
// [CLS], [SEP], [MASK]) and of [URL] when the corpus has no URL are zero.
type WordVectors struct {
	Tokenizer *text.WordLevel
	Vectors   *tensor.Tensor
	// Steps is the number of words trained on (after subsampling), Stopped
	// why training ended early ("", "max-duration" or "canceled"), Losses
	// the mean loss of every epoch.
	Steps   int64
	Stopped string
	Losses  []float64
	// Metadata is stored in model.json.
	Metadata map[string]any
}

// Dim returns the vector size.
func (w *WordVectors) Dim() int { return w.Vectors.Size(1) }

// Vector returns the vector of word (normalised and looked up as the
// tokenizer does) and whether the word is in the vocabulary.
func (w *WordVectors) Vector(word string) ([]float32, bool) {
	ids := w.Tokenizer.Encode(word)
	if len(ids) != 1 || ids[0] == text.UnkID {
		return nil, false
	}
	d := w.Dim()
	return w.Vectors.Data()[ids[0]*d : (ids[0]+1)*d], true
}

// Similarity returns the cosine similarity of two words' vectors, and false
// when either is not in the vocabulary.
func (w *WordVectors) Similarity(a, b string) (float64, bool) {
	va, ok1 := w.Vector(a)
	vb, ok2 := w.Vector(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	var dot, na, nb float64
	for i := range va {
		dot += float64(va[i]) * float64(vb[i])
		na += float64(va[i]) * float64(va[i])
		nb += float64(vb[i]) * float64(vb[i])
	}
	if na == 0 || nb == 0 {
		return 0, true
	}
	return dot / math.Sqrt(na*nb), true
}

// w2vRand is word2vec's linear congruential generator: cheap, and the same
// sequence for the same seed on every platform.
type w2vRand uint64

func (r *w2vRand) next() uint64 {
	*r = *r*25214903917 + 11
	return uint64(*r)
}

// float returns a number in [0, 1).
func (r *w2vRand) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// negTableSize is the length of the unigram^0.75 table negatives are drawn
// from.
const negTableSize = 1 << 21

// negativeTable returns a table in which word i fills a share of the
// entries proportional to counts[i]^0.75 (words with a zero count get none).
func negativeTable(counts []int64) []int32 {
	var total float64
	for _, c := range counts {
		total += math.Pow(float64(c), 0.75)
	}
	table := make([]int32, negTableSize)
	if total == 0 {
		return table
	}
	i := 0
	for i < len(counts) && counts[i] == 0 {
		i++
	}
	cum := math.Pow(float64(counts[i]), 0.75) / total
	for a := range table {
		table[a] = int32(i)
		if float64(a+1)/negTableSize > cum && i < len(counts)-1 {
			for i++; i < len(counts)-1 && counts[i] == 0; i++ {
			}
			cum += math.Pow(float64(counts[i]), 0.75) / total
		}
	}
	return table
}

// sgnsUpdate does one SGNS step for the input vector in against the output
// vectors outs (outs[0] the true context, the rest negatives): with
// s_k = σ(in·out_k) and label 1 for k = 0 and 0 otherwise, the loss is
// −log s_0 − Σ_{k>0} log(1 − s_k); its gradient is
// ∂/∂out_k = (s_k − label_k)·in and ∂/∂in = Σ_k (s_k − label_k)·out_k.
// Every out_k moves by −lr times its gradient (computed with the old in),
// and −lr·∂/∂in, computed with the old out_k, is added to acc for the
// caller to apply to in. It returns the loss before the update.
func sgnsUpdate(in []float32, outs [][]float32, lr float32, acc []float32) float64 {
	var loss float64
	for k, out := range outs {
		out = out[:len(in)]
		var f float32
		for i, v := range in {
			f += v * out[i]
		}
		label := float32(0)
		if k == 0 {
			label = 1
		}
		s := sigmoid(f)
		if k == 0 {
			loss -= logSigmoid(float64(f))
		} else {
			loss -= logSigmoid(-float64(f))
		}
		g := (label - s) * lr
		for i, v := range out {
			acc[i] += g * v
		}
		for i, v := range in {
			out[i] += g * v
		}
	}
	return loss
}

func sigmoid(x float32) float32 {
	switch {
	case x > 30:
		return 1
	case x < -30:
		return 0
	}
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// logSigmoid is log σ(x), stable for large |x|.
func logSigmoid(x float64) float64 {
	if x < 0 {
		return x - math.Log1p(math.Exp(x))
	}
	return -math.Log1p(math.Exp(-x))
}

// TrainWord2Vec trains a word-level tokenizer (cfg.Normalizer,
// cfg.PreTokenizer, cfg.MinCount, cfg.MaxVocab) and skip-gram word vectors
// with negative sampling on corpus. Words outside the vocabulary are
// dropped from the training stream (as in word2vec). A canceled ctx or
// cfg.MaxDuration stops training cleanly between texts and returns the
// vectors trained so far; an empty corpus or an invalid config is an error.
func TrainWord2Vec(ctx context.Context, corpus []string, cfg Word2VecConfig) (*WordVectors, error) {
	if cfg.Dim <= 0 || cfg.Window <= 0 || cfg.Negative < 0 || cfg.MinCount < 0 || cfg.MaxVocab < 0 || cfg.Sample < 0 || cfg.Epochs <= 0 || !(cfg.LR > 0) {
		return nil, fmt.Errorf("textmodel.TrainWord2Vec: dim %d, window %d, epochs %d and lr %v must be positive; negative %d, min count %d, max vocab %d and sample %v not negative",
			cfg.Dim, cfg.Window, cfg.Epochs, cfg.LR, cfg.Negative, cfg.MinCount, cfg.MaxVocab, cfg.Sample)
	}
	if cfg.Dim > 1<<12 || cfg.Window > 1<<10 || cfg.Negative > 1<<10 {
		return nil, fmt.Errorf("textmodel.TrainWord2Vec: dim %d, window %d or negative %d too large", cfg.Dim, cfg.Window, cfg.Negative)
	}
	tok, err := text.TrainWordLevel(corpus, text.WordLevelConfig{Normalizer: cfg.Normalizer, PreTokenizer: cfg.PreTokenizer,
		MinFreq: max(cfg.MinCount, 1), MaxSize: cfg.MaxVocab})
	if err != nil {
		return nil, fmt.Errorf("textmodel.TrainWord2Vec: %v", err)
	}
	V, D := tok.Vocab().Len(), cfg.Dim
	first := text.MaskID + 1 // the first id that occurs in text ([URL] or a word)
	// Encode the corpus once; unknown words are dropped.
	var docs [][]int32
	counts := make([]int64, V)
	var total int64
	for _, s := range corpus {
		ids := tok.Encode(clip(s))
		doc := make([]int32, 0, len(ids))
		for _, id := range ids {
			if id >= first {
				doc = append(doc, int32(id))
				counts[id]++
			}
		}
		if len(doc) >= 2 {
			docs = append(docs, doc)
			total += int64(len(doc))
		}
	}
	if total == 0 {
		return nil, errors.New("textmodel.TrainWord2Vec: the corpus has no text with two words of the vocabulary")
	}
	keep := make([]float64, V)
	for i, c := range counts {
		keep[i] = 1
		if cfg.Sample > 0 && c > 0 {
			th := cfg.Sample * float64(total)
			keep[i] = min(1, (math.Sqrt(float64(c)/th)+1)*th/float64(c))
		}
	}
	table := negativeTable(counts)

	rng := w2vRand(cfg.Seed*0x9e3779b97f4a7c15 + 1)
	in := make([]float32, V*D)
	for id := first; id < V; id++ {
		if counts[id] == 0 {
			continue // [URL] in a corpus without URLs: its row stays zero
		}
		for i := range D {
			in[id*D+i] = float32((rng.float() - 0.5) / float64(D))
		}
	}
	out := make([]float32, V*D)
	acc := make([]float32, D)
	outs := make([][]float32, 0, cfg.Negative+1)
	sent := make([]int32, 0, 256)

	w := &WordVectors{Tokenizer: tok}
	start := time.Now()
	planned := int64(cfg.Epochs) * total
	var seen int64 // words of the corpus gone through (before subsampling), for the LR decay
	lr0 := cfg.LR
	for epoch := 1; epoch <= cfg.Epochs && w.Stopped == ""; epoch++ {
		var loss float64
		var pairs int64
		for _, doc := range docs {
			if err := ctx.Err(); err != nil {
				w.Stopped = "canceled"
				break
			}
			if cfg.MaxDuration > 0 && time.Since(start) >= cfg.MaxDuration {
				w.Stopped = "max-duration"
				break
			}
			lr := float32(lr0 * max(1-float64(seen)/float64(planned+1), 1e-4))
			seen += int64(len(doc))
			sent = sent[:0]
			for _, id := range doc {
				if keep[id] >= 1 || rng.float() < keep[id] {
					sent = append(sent, id)
				}
			}
			for p, center := range sent {
				b := int(rng.next() % uint64(cfg.Window)) // effective window Window−b
				lo, hi := max(p-cfg.Window+b, 0), min(p+cfg.Window-b, len(sent)-1)
				cv := in[int(center)*D : int(center+1)*D]
				for q := lo; q <= hi; q++ {
					if q == p {
						continue
					}
					ctxID := sent[q]
					outs = append(outs[:0], out[int(ctxID)*D:int(ctxID+1)*D])
					for range cfg.Negative {
						neg := table[rng.next()>>16%negTableSize]
						if neg == ctxID {
							continue
						}
						outs = append(outs, out[int(neg)*D:int(neg+1)*D])
					}
					clear(acc)
					loss += sgnsUpdate(cv, outs, lr, acc)
					for i, v := range acc {
						cv[i] += v
					}
					pairs++
				}
				w.Steps++
			}
		}
		if pairs > 0 {
			w.Losses = append(w.Losses, loss/float64(pairs))
			if cfg.Log != nil {
				cfg.Log(epoch, w.Steps, loss/float64(pairs))
			}
		}
	}
	w.Vectors = tensor.FromSlice(in, V, D)
	w.Metadata = map[string]any{
		"task": "word2vec-sgns", "seed": cfg.Seed, "dim": D, "window": cfg.Window, "negative": cfg.Negative,
		"min_count": cfg.MinCount, "sample": cfg.Sample, "epochs": cfg.Epochs, "lr": cfg.LR, "vocab_size": V,
		"corpus_words": total, "texts": len(docs), "trained_words": w.Steps,
		"seconds": math.Round(time.Since(start).Seconds()),
	}
	if n := len(w.Losses); n > 0 {
		w.Metadata["final_loss"] = w.Losses[n-1]
	}
	if w.Stopped != "" {
		w.Metadata["stopped"] = w.Stopped
	}
	return w, nil
}

// WordVectorsKind is the "kind" metadata of a word-vector package.
const WordVectorsKind = "pretrained-word-vectors"

// Save writes the vectors as a model package in dir: model.json
// (architecture an Embedding [vocab, dim] with padding row 0, the word-level
// tokenizer as the "tokenize" preprocessing op without special tokens,
// cutting texts at 512 words, input
// "input_ids" int64 [-1, -1], output "vectors" float32 [-1, -1, dim],
// metadata with kind "pretrained-word-vectors") and weights.safetensors.
func (w *WordVectors) Save(dir string) error {
	if w == nil || w.Tokenizer == nil || w.Vectors == nil {
		return errors.New("textmodel.WordVectors.Save: no vectors or tokenizer")
	}
	V, D := w.Vectors.Size(0), w.Vectors.Size(1)
	if V != w.Tokenizer.Vocab().Len() {
		return fmt.Errorf("textmodel.WordVectors.Save: %d vectors for %d tokens", V, w.Tokenizer.Vocab().Len())
	}
	meta := map[string]any{}
	for k, v := range w.Metadata {
		meta[k] = v
	}
	meta["kind"] = WordVectorsKind
	op, err := TokenizeOp(w.Tokenizer, 512, false)
	if err != nil {
		return fmt.Errorf("textmodel.WordVectors.Save: %v", err)
	}
	emb := &nn.Embedding{Weight: w.Vectors, PaddingIdx: text.PadID}
	return model.Save(dir, &model.Package{
		Name:       "word2vec",
		Module:     emb,
		Preprocess: []model.PreprocessOp{op},
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "input_ids", DType: model.DTypeInt64, Shape: []int{-1, -1}}},
			Outputs: []model.TensorSpec{{Name: "vectors", DType: model.DTypeFloat32, Shape: []int{-1, -1, D}}},
		},
		Metadata: meta,
	})
}

// LoadWordVectors reads a package written by WordVectors.Save.
func LoadWordVectors(dir string) (*WordVectors, error) {
	pkg, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	return wordVectorsFrom(dir, pkg)
}

func wordVectorsFrom(dir string, pkg *model.Package) (*WordVectors, error) {
	emb, ok := pkg.Module.(*nn.Embedding)
	if kind, _ := pkg.Metadata["kind"].(string); !ok || kind != WordVectorsKind {
		return nil, fmt.Errorf("textmodel.LoadWordVectors: %s holds a %T with kind %q, not word vectors (make them with deepgo pretrain text --objective word2vec)",
			dir, pkg.Module, pkg.Metadata["kind"])
	}
	te, err := NewTextEncoder(pkg.Preprocess)
	if err != nil {
		return nil, fmt.Errorf("textmodel.LoadWordVectors: %s: %v", dir, err)
	}
	wl, ok := te.Tokenizer.(*text.WordLevel)
	if !ok {
		return nil, fmt.Errorf("textmodel.LoadWordVectors: %s: tokenizer is a %T, want a word-level tokenizer", dir, te.Tokenizer)
	}
	if n := wl.Vocab().Len(); n != emb.Weight.Size(0) {
		return nil, fmt.Errorf("textmodel.LoadWordVectors: %s: tokenizer has %d tokens, the vector table %d rows", dir, n, emb.Weight.Size(0))
	}
	return &WordVectors{Tokenizer: wl, Vectors: emb.Weight.Detach(), Metadata: pkg.Metadata}, nil
}

// OpenPretrained reads a pretrained package of either kind: an MLM encoder
// (deepgo pretrain text, the default objective) or word vectors
// (--objective word2vec). Exactly one of the results is non-nil on success.
func OpenPretrained(dir string) (*Pretrained, *WordVectors, error) {
	pkg, err := model.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := pkg.Module.(*PretrainedEncoder); ok {
		p, err := pretrainedFrom(dir, pkg)
		return p, nil, err
	}
	w, err := wordVectorsFrom(dir, pkg)
	if err != nil {
		return nil, nil, fmt.Errorf("textmodel.OpenPretrained: %s holds neither an MLM encoder nor word vectors (a %T)", dir, pkg.Module)
	}
	return nil, w, nil
}

// InitEmbedding copies into the embedding table weight ([rows, dim], rows ≥
// the vocabulary of tok) the vector of every token of tok that is also in
// w's vocabulary, matched by its string after both tokenizers' normalisation
// ([URL] included, the other special tokens never; a zero vector, of a
// token never seen in training, is skipped). The vectors are centred (the
// mean of the non-zero vectors is subtracted: SGNS vectors share a large
// common direction) and scaled by scale. Rows of other tokens, and any rows beyond tok's vocabulary
// (bigram buckets), are left as they are. It returns how many rows were
// set. The widths must agree.
func InitEmbedding(weight *tensor.Tensor, tok text.Tokenizer, w *WordVectors, scale float32) (int, error) {
	if weight == nil || weight.Dim() != 2 || weight.Size(0) < tok.Vocab().Len() {
		return 0, fmt.Errorf("textmodel.InitEmbedding: embedding table %v does not cover a vocabulary of %d", weight.Shape(), tok.Vocab().Len())
	}
	D := w.Dim()
	if weight.Size(1) != D {
		return 0, fmt.Errorf("textmodel.InitEmbedding: embedding width %d, word vectors %d (set --dim %d)", weight.Size(1), D, D)
	}
	dst := weight.Data()
	src, _ := w.centered()
	wv := w.Tokenizer.Vocab()
	n := 0
	for id, t := range tok.Vocab().Tokens() {
		if id <= text.MaskID {
			continue
		}
		j, ok := wv.ID(t)
		if !ok || j <= text.MaskID || !slices.ContainsFunc(src[j*D:(j+1)*D], func(v float32) bool { return v != 0 }) {
			continue
		}
		for i := range D {
			dst[id*D+i] = scale * src[j*D+i]
		}
		n++
	}
	return n, nil
}

// MatchRMS returns the factor that gives w's non-zero centred vectors the root mean
// square of the first rows rows of weight (a classifier's random
// initialisation, its zero padding row left out), so that pretrained rows
// and the randomly initialised ones of unknown words have the same scale.
// It returns 1 when either is all zeros.
func MatchRMS(weight *tensor.Tensor, rows int, w *WordVectors) float32 {
	rms := func(d []float32, width int) float64 {
		var s float64
		n := 0
		for r := 0; r+width <= len(d); r += width {
			row := d[r : r+width]
			if !slices.ContainsFunc(row, func(v float32) bool { return v != 0 }) {
				continue
			}
			for _, v := range row {
				s += float64(v) * float64(v)
			}
			n += width
		}
		if n == 0 {
			return 0
		}
		return math.Sqrt(s / float64(n))
	}
	d := weight.Size(1)
	a := rms(weight.Data()[:min(rows, weight.Size(0))*d], d)
	c, _ := w.centered()
	b := rms(c, w.Dim())
	if a == 0 || b == 0 {
		return 1
	}
	return float32(a / b)
}

// centered returns the vectors minus their mean (over the non-zero rows;
// zero rows stay zero) and that mean. SGNS vectors share a large common
// direction; removing it leaves what tells words apart.
func (w *WordVectors) centered() ([]float32, []float64) {
	D := w.Dim()
	src := w.Vectors.Data()
	mean := make([]float64, D)
	n := 0
	nonzero := func(row []float32) bool { return slices.ContainsFunc(row, func(v float32) bool { return v != 0 }) }
	for r := 0; r+D <= len(src); r += D {
		if row := src[r : r+D]; nonzero(row) {
			for i, v := range row {
				mean[i] += float64(v)
			}
			n++
		}
	}
	out := make([]float32, len(src))
	if n == 0 {
		return out, mean
	}
	for i := range mean {
		mean[i] /= float64(n)
	}
	for r := 0; r+D <= len(src); r += D {
		if row := src[r : r+D]; nonzero(row) {
			for i, v := range row {
				out[r+i] = v - float32(mean[i])
			}
		}
	}
	return out, mean
}
