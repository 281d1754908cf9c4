package text

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Vocab maps tokens to ids and back. Ids are dense, 0 .. Len()-1, and the
// special tokens come first (see SpecialTokens). A Vocab is immutable and
// safe for concurrent use.
type Vocab struct {
	tokens []string
	ids    map[string]int
}

// NewVocab makes a vocabulary from tokens in id order. The tokens must be
// non-empty and distinct, and must start with SpecialTokens().
func NewVocab(tokens []string) (*Vocab, error) {
	if err := checkSpecials(tokens, PreTokenizer{}); err != nil {
		return nil, fmt.Errorf("text.NewVocab: %w", err)
	}
	v := &Vocab{tokens: slices.Clone(tokens), ids: make(map[string]int, len(tokens))}
	for i, t := range tokens {
		if t == "" {
			return nil, fmt.Errorf("text.NewVocab: token %d is empty", i)
		}
		if j, dup := v.ids[t]; dup {
			return nil, fmt.Errorf("text.NewVocab: token %q appears at ids %d and %d", t, j, i)
		}
		v.ids[t] = i
	}
	return v, nil
}

// Len returns the number of tokens.
func (v *Vocab) Len() int { return len(v.tokens) }

// ID returns the id of tok and whether it is in the vocabulary.
func (v *Vocab) ID(tok string) (int, bool) {
	id, ok := v.ids[tok]
	return id, ok
}

// Token returns the token with the given id and whether the id is valid.
func (v *Vocab) Token(id int) (string, bool) {
	if id < 0 || id >= len(v.tokens) {
		return "", false
	}
	return v.tokens[id], true
}

// Tokens returns a copy of the tokens in id order.
func (v *Vocab) Tokens() []string { return slices.Clone(v.tokens) }

// VocabConfig configures BuildVocab.
type VocabConfig struct {
	// MinFreq drops words seen fewer times (default 1).
	MinFreq int
	// MaxSize caps the vocabulary size, special tokens included (0: no
	// cap). The most frequent words are kept.
	MaxSize int
	// Reserved tokens follow the special tokens, before the words (e.g.
	// URLToken).
	Reserved []string
}

// BuildVocab makes a word vocabulary from word counts: the special tokens,
// then cfg.Reserved, then the words with count >= MinFreq by decreasing
// count, ties broken lexicographically, cut at MaxSize.
func BuildVocab(counts map[string]int, cfg VocabConfig) (*Vocab, error) {
	if cfg.MinFreq < 0 || cfg.MaxSize < 0 {
		return nil, fmt.Errorf("text.BuildVocab: negative MinFreq %d or MaxSize %d", cfg.MinFreq, cfg.MaxSize)
	}
	tokens := append(SpecialTokens(), cfg.Reserved...)
	if cfg.MaxSize > 0 && cfg.MaxSize < len(tokens) {
		return nil, fmt.Errorf("text.BuildVocab: MaxSize %d is smaller than the %d special tokens", cfg.MaxSize, len(tokens))
	}
	have := map[string]bool{}
	for _, t := range tokens {
		have[t] = true
	}
	type wc struct {
		w string
		c int
	}
	var words []wc
	for w, c := range counts {
		if c >= max(cfg.MinFreq, 1) && w != "" && !have[w] {
			words = append(words, wc{w, c})
		}
	}
	slices.SortFunc(words, func(a, b wc) int {
		if a.c != b.c {
			return cmp.Compare(b.c, a.c)
		}
		return strings.Compare(a.w, b.w)
	})
	for _, x := range words {
		if cfg.MaxSize > 0 && len(tokens) >= cfg.MaxSize {
			break
		}
		tokens = append(tokens, x.w)
	}
	return NewVocab(tokens)
}

// CountWords normalizes and pre-tokenizes texts and counts the pre-tokens
// (special pre-tokens such as URLToken are not counted).
func CountWords(texts []string, n Normalizer, p PreTokenizer) map[string]int {
	counts := map[string]int{}
	for _, s := range texts {
		p.Each(n.Normalize(s), func(t Token) bool {
			if !t.Special {
				counts[t.Text]++
			}
			return true
		})
	}
	return counts
}

// WordLevel is a word-level tokenizer: each pre-token is one id, unknown
// words are [UNK].
type WordLevel struct {
	pipeline
}

// WordLevelConfig configures TrainWordLevel.
type WordLevelConfig struct {
	// Normalizer and PreTokenizer are applied before counting and encoding.
	Normalizer   Normalizer
	PreTokenizer PreTokenizer
	// MinFreq and MaxSize are as in VocabConfig.
	MinFreq int
	MaxSize int
}

// TrainWordLevel builds a word-level tokenizer from texts.
func TrainWordLevel(texts []string, cfg WordLevelConfig) (*WordLevel, error) {
	var reserved []string
	if cfg.PreTokenizer.URLToken {
		reserved = []string{URLToken}
	}
	v, err := BuildVocab(CountWords(texts, cfg.Normalizer, cfg.PreTokenizer), VocabConfig{MinFreq: cfg.MinFreq, MaxSize: cfg.MaxSize, Reserved: reserved})
	if err != nil {
		return nil, fmt.Errorf("text.TrainWordLevel: %w", err)
	}
	return &WordLevel{newPipeline(cfg.Normalizer, cfg.PreTokenizer, v)}, nil
}

// NewWordLevel makes a word-level tokenizer from a vocabulary in id order
// (starting with the special tokens, then URLToken if p.URLToken is set).
func NewWordLevel(tokens []string, n Normalizer, p PreTokenizer) (*WordLevel, error) {
	if err := checkSpecials(tokens, p); err != nil {
		return nil, fmt.Errorf("text.NewWordLevel: %w", err)
	}
	v, err := NewVocab(tokens)
	if err != nil {
		return nil, err
	}
	return &WordLevel{newPipeline(n, p, v)}, nil
}

// Encode returns the word ids of text.
func (w *WordLevel) Encode(text string) []int { return w.encodeLimit(text, -1) }

func (w *WordLevel) encodeLimit(text string, limit int) []int {
	return w.pipeline.encodeLimit(text, limit, func(ids []int, t Token) []int {
		id, ok := w.vocab.ids[t.Text]
		if !ok || id < w.nspec {
			id = UnkID
		}
		return append(ids, id)
	})
}

// Decode joins the words of ids with spaces.
func (w *WordLevel) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id == PadID || id == ClsID || id == SepID {
			continue
		}
		tok, ok := w.vocab.Token(id)
		if !ok {
			tok = UnkToken
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// EncodeBatch encodes and pads texts; see the package function EncodeBatch.
func (w *WordLevel) EncodeBatch(texts []string, opt EncodeOptions) (*Batch, error) {
	return EncodeBatch(w, texts, opt)
}
