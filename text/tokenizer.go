package text

import (
	"errors"
	"fmt"

	"github.com/deepgo/deepgo/tensor"
)

// Special tokens. Every vocabulary starts with them, at these ids.
const (
	PadToken  = "[PAD]"
	UnkToken  = "[UNK]"
	ClsToken  = "[CLS]"
	SepToken  = "[SEP]"
	MaskToken = "[MASK]"
)

// Ids of the special tokens.
const (
	PadID  = 0
	UnkID  = 1
	ClsID  = 2
	SepID  = 3
	MaskID = 4
)

// SpecialTokens returns the special tokens in id order: [PAD] [UNK] [CLS]
// [SEP] [MASK]. A tokenizer whose pre-tokenizer replaces URLs also has
// URLToken, right after them (id 5).
func SpecialTokens() []string {
	return []string{PadToken, UnkToken, ClsToken, SepToken, MaskToken}
}

// Tokenizer turns text into token ids and back. Implementations (WordLevel,
// WordPiece, BPE) are safe for concurrent use and deterministic. Encode
// never panics: invalid UTF-8 is replaced with U+FFFD (see Normalizer),
// empty text gives no ids, and work is linear in the text length.
type Tokenizer interface {
	// Encode returns the ids of text, without special tokens.
	Encode(text string) []int
	// Decode turns ids back into text. [PAD], [CLS] and [SEP] are dropped;
	// ids outside the vocabulary are written as [UNK].
	Decode(ids []int) string
	// EncodeBatch encodes texts into a padded batch; see EncodeOptions.
	EncodeBatch(texts []string, opt EncodeOptions) (*Batch, error)
	// Vocab returns the tokenizer's vocabulary.
	Vocab() *Vocab
	// Save writes the tokenizer to a JSON file atomically; Load reads it.
	Save(path string) error
}

// limitEncoder is implemented by the tokenizers of this package: it stops
// after limit ids (limit < 0: no limit), so that truncating a huge text
// costs only the normalisation.
type limitEncoder interface {
	encodeLimit(text string, limit int) []int
}

// Padding selects the length of a padded batch.
type Padding int

const (
	// PadLongest pads every sequence to the longest one in the batch.
	PadLongest Padding = iota
	// PadMaxLength pads every sequence to EncodeOptions.MaxLen.
	PadMaxLength
)

// EncodeOptions configures EncodeSequence and EncodeBatch.
type EncodeOptions struct {
	// MaxLen is the maximum sequence length including special tokens;
	// 0 means no limit (only with PadLongest).
	MaxLen int
	// Truncation cuts sequences longer than MaxLen (keeping the start and,
	// with AddSpecial, the final [SEP]). Without it a longer sequence is
	// an error.
	Truncation bool
	// Padding selects the padded length (default PadLongest). Padding uses
	// PadID and a 0 in the attention mask.
	Padding Padding
	// AddSpecial frames every sequence as [CLS] ... [SEP].
	AddSpecial bool
}

func (o EncodeOptions) check(op string) {
	if o.MaxLen < 0 {
		panic(fmt.Sprintf("%s: MaxLen %d is negative", op, o.MaxLen))
	}
	if o.Padding != PadLongest && o.Padding != PadMaxLength {
		panic(fmt.Sprintf("%s: unknown Padding %d", op, o.Padding))
	}
	if o.Padding == PadMaxLength && o.MaxLen == 0 {
		panic(op + ": Padding PadMaxLength needs MaxLen > 0")
	}
	if o.AddSpecial && o.MaxLen == 1 {
		panic(op + ": MaxLen 1 leaves no room for [CLS] and [SEP]")
	}
}

// Batch is a padded batch of token id sequences.
type Batch struct {
	// IDs holds the token ids, int64 [N, T], padded with PadID.
	IDs *tensor.Tensor
	// AttentionMask is float32 [N, T]: 1 for a token, 0 for padding.
	AttentionMask *tensor.Tensor
	// Lengths are the unpadded lengths of the N sequences.
	Lengths []int
}

// EncodeSequence encodes one text with the framing and length rules of opt
// (but no padding). It returns an error only when the text is longer than
// opt.MaxLen and opt.Truncation is off. Invalid options panic.
func EncodeSequence(t Tokenizer, text string, opt EncodeOptions) ([]int, error) {
	opt.check("text.EncodeSequence")
	return encodeSequence(t, text, opt)
}

func encodeSequence(t Tokenizer, text string, opt EncodeOptions) ([]int, error) {
	limit := -1
	if opt.MaxLen > 0 {
		limit = opt.MaxLen
		if opt.AddSpecial {
			limit -= 2
		}
	}
	ask := limit
	if limit >= 0 && !opt.Truncation {
		ask = limit + 1
	}
	var ids []int
	if le, ok := t.(limitEncoder); ok {
		ids = le.encodeLimit(text, ask)
	} else {
		ids = t.Encode(text)
	}
	if limit >= 0 && len(ids) > limit {
		if !opt.Truncation {
			return nil, fmt.Errorf("text: sequence has more than %d tokens (MaxLen %d) and Truncation is off", limit, opt.MaxLen)
		}
		ids = ids[:limit]
	}
	if opt.AddSpecial {
		out := make([]int, 0, len(ids)+2)
		out = append(out, ClsID)
		out = append(out, ids...)
		return append(out, SepID), nil
	}
	return ids, nil
}

// EncodeBatch encodes texts and pads them into a Batch; the tokenizers'
// EncodeBatch methods call it. An empty texts slice gives tensors of shape
// [0, T]. The error names the first text that is too long when Truncation
// is off; invalid options panic.
func EncodeBatch(t Tokenizer, texts []string, opt EncodeOptions) (*Batch, error) {
	opt.check("text.EncodeBatch")
	seqs := make([][]int, len(texts))
	for i, s := range texts {
		ids, err := encodeSequence(t, s, opt)
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
		seqs[i] = ids
	}
	return Pad(seqs, opt), nil
}

// Pad builds a Batch from id sequences: it pads them to the longest one
// (PadLongest) or to opt.MaxLen (PadMaxLength, cutting longer ones). Only
// opt.Padding and opt.MaxLen are used.
func Pad(seqs [][]int, opt EncodeOptions) *Batch {
	width := 0
	if opt.Padding == PadMaxLength {
		width = opt.MaxLen
	} else {
		for _, s := range seqs {
			width = max(width, len(s))
		}
	}
	n := len(seqs)
	ids := make([]int64, n*width)
	mask := make([]float32, n*width)
	lens := make([]int, n)
	for i, s := range seqs {
		l := min(len(s), width)
		lens[i] = l
		row := ids[i*width : i*width+l]
		for j, v := range s[:l] {
			row[j] = int64(v)
		}
		m := mask[i*width : i*width+l]
		for j := range m {
			m[j] = 1
		}
	}
	return &Batch{IDs: tensor.FromInt64(ids, n, width), AttentionMask: tensor.FromSlice(mask, n, width), Lengths: lens}
}

// pipeline is the part shared by the tokenizers: normalisation,
// pre-tokenisation and the vocabulary.
type pipeline struct {
	norm  Normalizer
	pre   PreTokenizer
	vocab *Vocab
	nspec int // number of reserved tokens (special tokens and URLToken)
}

func newPipeline(n Normalizer, p PreTokenizer, v *Vocab) pipeline {
	return pipeline{norm: n, pre: p, vocab: v, nspec: len(specialsFor(p))}
}

// encodeLimit normalizes and pre-tokenizes text; a special pre-token is
// looked up in the vocabulary ([UNK] if absent), any other is appended by
// word. It stops after limit ids (limit < 0: no limit).
func (p *pipeline) encodeLimit(text string, limit int, word func(ids []int, t Token) []int) []int {
	var ids []int
	if limit == 0 {
		return ids
	}
	p.pre.Each(p.norm.Normalize(text), func(t Token) bool {
		if t.Special {
			id, ok := p.vocab.ID(t.Text)
			if !ok {
				id = UnkID
			}
			ids = append(ids, id)
		} else {
			ids = word(ids, t)
		}
		if limit >= 0 && len(ids) >= limit {
			ids = ids[:limit]
			return false
		}
		return true
	})
	return ids
}

// Vocab returns the vocabulary.
func (p *pipeline) Vocab() *Vocab { return p.vocab }

// Normalizer returns the normalizer the tokenizer applies.
func (p *pipeline) Normalizer() Normalizer { return p.norm }

// PreTokenizer returns the pre-tokenizer the tokenizer applies.
func (p *pipeline) PreTokenizer() PreTokenizer { return p.pre }

// specials returns the reserved tokens for a pre-tokenizer.
func specialsFor(pre PreTokenizer) []string {
	s := SpecialTokens()
	if pre.URLToken {
		s = append(s, URLToken)
	}
	return s
}

// checkSpecials verifies that tokens start with the special tokens.
func checkSpecials(tokens []string, pre PreTokenizer) error {
	want := specialsFor(pre)
	if len(tokens) < len(want) {
		return fmt.Errorf("vocabulary has %d tokens, want at least the %d special tokens %v", len(tokens), len(want), want)
	}
	for i, w := range want {
		if tokens[i] != w {
			return fmt.Errorf("vocabulary token %d is %q, want %q", i, tokens[i], w)
		}
	}
	return nil
}

var errEmptyCorpus = errors.New("no words in the training texts")
