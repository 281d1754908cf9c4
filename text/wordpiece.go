package text

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ContinuationPrefix marks a WordPiece token that continues a word.
const ContinuationPrefix = "##"

// DefaultMaxInputCharsPerWord is the longest word (in runes) that WordPiece
// segments; longer words become [UNK] (BPE cuts them into pieces of this
// many runes instead).
const DefaultMaxInputCharsPerWord = 100

// WordPiece is a BERT-style subword tokenizer: each pre-token is segmented
// greedily, longest match first, into a word-initial piece followed by
// continuation pieces written with the "##" prefix. A word that cannot be
// segmented, or is longer than MaxInputCharsPerWord runes, becomes a single
// [UNK].
type WordPiece struct {
	pipeline
	maxChars int
	first    map[string]int // word-initial pieces
	cont     map[string]int // continuation pieces, without the prefix
	maxFirst int            // longest word-initial piece, bytes
	maxCont  int            // longest continuation piece, bytes
}

// WordPieceConfig configures TrainWordPiece.
type WordPieceConfig struct {
	// VocabSize is the target vocabulary size, special tokens included
	// (default 8000). Training stops earlier when no pair is frequent
	// enough.
	VocabSize int
	// MinFrequency is the smallest count of a pair that may be merged
	// (default 2).
	MinFrequency int
	// Scoring picks the merge criterion (default Frequency).
	Scoring Scoring
	// Normalizer and PreTokenizer are applied before training and encoding.
	Normalizer   Normalizer
	PreTokenizer PreTokenizer
	// MaxInputCharsPerWord: longer words become [UNK] (default 100).
	MaxInputCharsPerWord int
}

// DefaultWordPieceConfig returns the settings of an uncased BERT-style
// tokenizer with the given vocabulary size: lower-casing, accent
// stripping, URLs replaced by URLToken, frequency scoring.
func DefaultWordPieceConfig(vocabSize int) WordPieceConfig {
	return WordPieceConfig{
		VocabSize:    vocabSize,
		Normalizer:   Normalizer{Lowercase: true, StripAccents: true},
		PreTokenizer: PreTokenizer{URLToken: true},
	}
}

// TrainWordPiece learns a WordPiece vocabulary from texts. The alphabet is
// every character seen (as word-initial and as "##" continuation symbol),
// most frequent first, cut to fit VocabSize; words with characters left out
// do not take part in merging. Merges are then added until the vocabulary
// has VocabSize tokens. The result is a pure function of texts and cfg.
func TrainWordPiece(texts []string, cfg WordPieceConfig) (*WordPiece, error) {
	subwordDefaults(&cfg.VocabSize, &cfg.MinFrequency, &cfg.MaxInputCharsPerWord)
	reserved := specialsFor(cfg.PreTokenizer)
	if cfg.VocabSize < len(reserved)+1 || cfg.MinFrequency < 0 || cfg.MaxInputCharsPerWord < 0 || (cfg.Scoring != Frequency && cfg.Scoring != Likelihood) {
		return nil, fmt.Errorf("text.TrainWordPiece: bad config (VocabSize %d must exceed the %d special tokens, MinFrequency %d, MaxInputCharsPerWord %d, Scoring %d)",
			cfg.VocabSize, len(reserved), cfg.MinFrequency, cfg.MaxInputCharsPerWord, cfg.Scoring)
	}
	wordCounts := map[string]int64{}
	for _, s := range texts {
		cfg.PreTokenizer.Each(cfg.Normalizer.Normalize(s), func(t Token) bool {
			if !t.Special && utf8.RuneCountInString(t.Text) <= cfg.MaxInputCharsPerWord {
				wordCounts[t.Text]++
			}
			return true
		})
	}
	if len(wordCounts) == 0 {
		return nil, fmt.Errorf("text.TrainWordPiece: %w", errEmptyCorpus)
	}
	words := sortedWords(wordCounts)
	// Alphabet.
	alpha := map[string]int64{}
	for _, w := range words {
		for i, r := range w {
			alpha[wpSymbol(r, i > 0)] += wordCounts[w]
		}
	}
	tokens, inVocab := startVocab(reserved)
	for _, s := range sortedByCount(alpha) {
		if len(tokens) >= cfg.VocabSize {
			break
		}
		if !inVocab[s] {
			tokens = append(tokens, s)
			inVocab[s] = true
		}
	}
	m := newMergeTrainer(func(a, b string) string { return a + strings.TrimPrefix(b, ContinuationPrefix) })
	var syms []int32
wordLoop:
	for _, w := range words {
		syms = syms[:0]
		for i, r := range w {
			s := wpSymbol(r, i > 0)
			if !inVocab[s] {
				continue wordLoop
			}
			syms = append(syms, m.intern(s))
		}
		m.addWord(append([]int32(nil), syms...), wordCounts[w])
	}
	for len(tokens) < cfg.VocabSize {
		pi := m.best(cfg.Scoring, int64(cfg.MinFrequency))
		if pi < 0 {
			break
		}
		c := m.merge(pi)
		if s := m.syms[c]; !inVocab[s] {
			tokens = append(tokens, s)
			inVocab[s] = true
		}
	}
	return NewWordPiece(tokens, cfg.Normalizer, cfg.PreTokenizer, cfg.MaxInputCharsPerWord)
}

// wpSymbol is the initial symbol of rune r: "r" at the start of a word,
// "##r" inside.
func wpSymbol(r rune, cont bool) string {
	if cont {
		return ContinuationPrefix + string(r)
	}
	return string(r)
}

// NewWordPiece makes a WordPiece tokenizer from a vocabulary in id order:
// the special tokens, URLToken if p.URLToken is set, then the pieces
// (continuation pieces with the "##" prefix). maxChars <= 0 selects
// DefaultMaxInputCharsPerWord.
func NewWordPiece(tokens []string, n Normalizer, p PreTokenizer, maxChars int) (*WordPiece, error) {
	if err := checkSpecials(tokens, p); err != nil {
		return nil, fmt.Errorf("text.NewWordPiece: %w", err)
	}
	v, err := NewVocab(tokens)
	if err != nil {
		return nil, fmt.Errorf("text.NewWordPiece: %w", err)
	}
	if maxChars <= 0 {
		maxChars = DefaultMaxInputCharsPerWord
	}
	wp := &WordPiece{pipeline: newPipeline(n, p, v), maxChars: maxChars, first: map[string]int{}, cont: map[string]int{}}
	for id, t := range tokens[wp.nspec:] {
		id += wp.nspec
		if rest, ok := strings.CutPrefix(t, ContinuationPrefix); ok && rest != "" {
			wp.cont[rest] = id
			wp.maxCont = max(wp.maxCont, len(rest))
		} else {
			wp.first[t] = id
			wp.maxFirst = max(wp.maxFirst, len(t))
		}
	}
	return wp, nil
}

// MaxInputCharsPerWord returns the longest word (in runes) that is
// segmented rather than mapped to [UNK].
func (wp *WordPiece) MaxInputCharsPerWord() int { return wp.maxChars }

// Encode returns the WordPiece ids of text.
func (wp *WordPiece) Encode(text string) []int { return wp.encodeLimit(text, -1) }

func (wp *WordPiece) encodeLimit(text string, limit int) []int {
	return wp.pipeline.encodeLimit(text, limit, func(ids []int, t Token) []int { return wp.appendWord(ids, t.Text) })
}

// appendWord appends the pieces of one word (greedy longest match first).
// The cost is O(len(word) * longest piece), never quadratic in the word.
func (wp *WordPiece) appendWord(ids []int, w string) []int {
	if utf8.RuneCountInString(w) > wp.maxChars {
		return append(ids, UnkID)
	}
	mark := len(ids)
	for start := 0; start < len(w); {
		table, longest := wp.first, wp.maxFirst
		if start > 0 {
			table, longest = wp.cont, wp.maxCont
		}
		end := min(len(w), start+longest)
		found := -1
		for end > start {
			if end < len(w) && !utf8.RuneStart(w[end]) {
				end--
				continue
			}
			if id, ok := table[w[start:end]]; ok {
				found = id
				break
			}
			_, n := utf8.DecodeLastRuneInString(w[start:end])
			end -= n
		}
		if found < 0 {
			return append(ids[:mark], UnkID)
		}
		ids = append(ids, found)
		start = end
	}
	return ids
}

// Decode joins the pieces: a continuation piece is glued to the previous
// token, other tokens are separated by one space. [PAD], [CLS] and [SEP]
// are dropped; unknown ids are written as [UNK].
func (wp *WordPiece) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id == PadID || id == ClsID || id == SepID {
			continue
		}
		tok, ok := wp.vocab.Token(id)
		if !ok {
			tok = UnkToken
		}
		if rest, cont := strings.CutPrefix(tok, ContinuationPrefix); cont && rest != "" && id >= wp.nspec && b.Len() > 0 {
			b.WriteString(rest)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// EncodeBatch encodes and pads texts; see the package function EncodeBatch.
func (wp *WordPiece) EncodeBatch(texts []string, opt EncodeOptions) (*Batch, error) {
	return EncodeBatch(wp, texts, opt)
}
