package text

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// byteToRune is GPT-2's reversible byte -> printable rune mapping: the
// printable Latin-1 bytes map to themselves, the others (space, control
// bytes, ...) to runes from U+0100 on, so every byte sequence becomes a
// printable string ("Ġ" is the space).
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	used := [256]bool{}
	for b := '!'; b <= '~'; b++ {
		used[b] = true
	}
	for b := '¡'; b <= '¬'; b++ {
		used[b] = true
	}
	for b := '®'; b <= 'ÿ'; b++ {
		used[b] = true
	}
	n := rune(0)
	for b := 0; b < 256; b++ {
		if used[b] {
			b2r[b] = rune(b)
		} else {
			b2r[b] = 256 + n
			n++
		}
	}
	r2b := make(map[rune]byte, 256)
	for b, r := range b2r {
		r2b[r] = byte(b)
	}
	return b2r, r2b
}()

// BPE is a byte-level byte-pair-encoding tokenizer in the style of GPT-2:
// text is normalized and pre-tokenized, each pre-token (with a leading
// space when whitespace preceded it) is turned into bytes, and learned
// merges, applied in rank order, join adjacent symbols. Any text can be
// encoded without [UNK]. Words longer than MaxInputCharsPerWord runes are
// cut into pieces of that many runes first, which bounds the work per word.
// Decode restores the normalized text exactly, except that a URL replaced
// by URLToken stays "[URL]".
type BPE struct {
	pipeline
	maxChars int
	byteID   [256]int
	merges   map[uint64]bpeMerge
	mergeSeq [][2]string

	mu    sync.Mutex
	cache map[string][]int
}

type bpeMerge struct {
	rank int
	id   int
}

const bpeCacheMax = 1 << 16

// BPEConfig configures TrainBPE.
type BPEConfig struct {
	// VocabSize is the target vocabulary size, special tokens and the 256
	// byte symbols included (default 8000).
	VocabSize int
	// MinFrequency is the smallest count of a pair that may be merged
	// (default 2).
	MinFrequency int
	// Normalizer and PreTokenizer are applied before training and encoding.
	Normalizer   Normalizer
	PreTokenizer PreTokenizer
	// MaxInputCharsPerWord: longer words are cut into pieces (default 100).
	MaxInputCharsPerWord int
}

// TrainBPE learns byte-level BPE merges from texts: starting from the 256
// byte symbols it repeatedly merges the most frequent adjacent pair (ties
// broken lexicographically) until the vocabulary has VocabSize tokens.
func TrainBPE(texts []string, cfg BPEConfig) (*BPE, error) {
	subwordDefaults(&cfg.VocabSize, &cfg.MinFrequency, &cfg.MaxInputCharsPerWord)
	reserved := specialsFor(cfg.PreTokenizer)
	if cfg.VocabSize < len(reserved)+256 || cfg.MinFrequency < 0 || cfg.MaxInputCharsPerWord < 0 {
		return nil, fmt.Errorf("text.TrainBPE: bad config (VocabSize %d must be at least %d special tokens + 256 bytes, MinFrequency %d, MaxInputCharsPerWord %d)",
			cfg.VocabSize, len(reserved), cfg.MinFrequency, cfg.MaxInputCharsPerWord)
	}
	wordCounts := map[string]int64{}
	for _, s := range texts {
		cfg.PreTokenizer.Each(cfg.Normalizer.Normalize(s), func(t Token) bool {
			if !t.Special {
				eachBPEWord(t, cfg.MaxInputCharsPerWord, func(w string) { wordCounts[w]++ })
			}
			return true
		})
	}
	if len(wordCounts) == 0 {
		return nil, fmt.Errorf("text.TrainBPE: %w", errEmptyCorpus)
	}
	m := newMergeTrainer(func(a, b string) string { return a + b })
	tokens, inVocab := startVocab(reserved)
	for b := 0; b < 256; b++ {
		s := string(byteToRune[b])
		m.intern(s)
		tokens = append(tokens, s)
		inVocab[s] = true
	}
	for _, w := range sortedWords(wordCounts) {
		syms := make([]int32, len(w))
		for i := 0; i < len(w); i++ {
			syms[i] = int32(w[i])
		}
		m.addWord(syms, wordCounts[w])
	}
	var merges [][2]string
	for len(tokens) < cfg.VocabSize {
		pi := m.best(Frequency, int64(cfg.MinFrequency))
		if pi < 0 {
			break
		}
		p := m.pairs[pi]
		joined := m.syms[p.a] + m.syms[p.b]
		if slices.Contains(reserved, joined) {
			m.pairs[pi].dead = true // would collide with a reserved token
			continue
		}
		merges = append(merges, [2]string{m.syms[p.a], m.syms[p.b]})
		c := m.merge(pi)
		if s := m.syms[c]; !inVocab[s] {
			tokens = append(tokens, s)
			inVocab[s] = true
		}
	}
	return NewBPE(tokens, merges, cfg.Normalizer, cfg.PreTokenizer, cfg.MaxInputCharsPerWord)
}

// eachBPEWord calls fn with the raw-byte words of a pre-token: a leading
// space if whitespace preceded it, cut every maxChars runes.
func eachBPEWord(t Token, maxChars int, fn func(string)) {
	s := t.Text
	first := true
	for len(s) > 0 {
		cut, n := 0, 0
		for cut < len(s) && n < maxChars {
			_, sz := utf8.DecodeRuneInString(s[cut:])
			cut += sz
			n++
		}
		w := s[:cut]
		if first && t.SpaceBefore {
			w = " " + w
		}
		fn(w)
		first = false
		s = s[cut:]
	}
}

// NewBPE makes a byte-level BPE tokenizer from a vocabulary in id order (the
// special tokens, URLToken if p.URLToken is set, the 256 byte symbols in
// byte order, then merged symbols, all in the printable byte-level form) and
// the merges in rank order. Every merge's parts and result must be in the
// vocabulary. maxChars <= 0 selects DefaultMaxInputCharsPerWord.
func NewBPE(tokens []string, merges [][2]string, n Normalizer, p PreTokenizer, maxChars int) (*BPE, error) {
	if err := checkSpecials(tokens, p); err != nil {
		return nil, fmt.Errorf("text.NewBPE: %w", err)
	}
	v, err := NewVocab(tokens)
	if err != nil {
		return nil, fmt.Errorf("text.NewBPE: %w", err)
	}
	if maxChars <= 0 {
		maxChars = DefaultMaxInputCharsPerWord
	}
	bp := &BPE{pipeline: newPipeline(n, p, v), maxChars: maxChars, merges: make(map[uint64]bpeMerge, len(merges)), cache: map[string][]int{}}
	for b := 0; b < 256; b++ {
		s := string(byteToRune[b])
		id, ok := v.ID(s)
		if !ok || id != bp.nspec+b {
			return nil, fmt.Errorf("text.NewBPE: vocabulary token %d must be the byte symbol %q", bp.nspec+b, s)
		}
		bp.byteID[b] = id
	}
	for r, mg := range merges {
		a, okA := v.ID(mg[0])
		b, okB := v.ID(mg[1])
		c, okC := v.ID(mg[0] + mg[1])
		if !okA || !okB || !okC || a < bp.nspec || b < bp.nspec || c < bp.nspec {
			return nil, fmt.Errorf("text.NewBPE: merge %d (%q %q) uses tokens missing from the vocabulary", r, mg[0], mg[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := bp.merges[k]; dup {
			return nil, fmt.Errorf("text.NewBPE: merge %d (%q %q) is repeated", r, mg[0], mg[1])
		}
		bp.merges[k] = bpeMerge{rank: r, id: c}
	}
	bp.mergeSeq = append([][2]string(nil), merges...)
	return bp, nil
}

// Merges returns a copy of the merges in rank order.
func (bp *BPE) Merges() [][2]string { return append([][2]string(nil), bp.mergeSeq...) }

// Encode returns the BPE ids of text.
func (bp *BPE) Encode(text string) []int { return bp.encodeLimit(text, -1) }

func (bp *BPE) encodeLimit(text string, limit int) []int {
	return bp.pipeline.encodeLimit(text, limit, func(ids []int, t Token) []int {
		eachBPEWord(t, bp.maxChars, func(w string) { ids = bp.appendWord(ids, w) })
		return ids
	})
}

// appendWord appends the ids of one raw-byte word, using the cache.
func (bp *BPE) appendWord(ids []int, w string) []int {
	bp.mu.Lock()
	c, ok := bp.cache[w]
	bp.mu.Unlock()
	if ok {
		return append(ids, c...)
	}
	syms := make([]int, len(w))
	for i := 0; i < len(w); i++ {
		syms[i] = bp.byteID[w[i]]
	}
	for len(syms) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(syms); i++ {
			if mg, ok := bp.merges[pairKey(int32(syms[i]), int32(syms[i+1]))]; ok && (best < 0 || mg.rank < bestRank) {
				best, bestRank = i, mg.rank
			}
		}
		if best < 0 {
			break
		}
		mg := bp.merges[pairKey(int32(syms[best]), int32(syms[best+1]))]
		a, b := syms[best], syms[best+1]
		out := syms[:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, mg.id)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	bp.mu.Lock()
	if len(bp.cache) >= bpeCacheMax {
		clear(bp.cache)
	}
	bp.cache[w] = syms
	bp.mu.Unlock()
	return append(ids, syms...)
}

// Decode turns ids back into text: byte symbols are mapped back to bytes,
// so the spacing of the normalized text is restored. [PAD], [CLS] and [SEP]
// are dropped; other reserved tokens and unknown ids (written [UNK]) are
// set off by a space. Byte sequences that are not valid UTF-8 (possible for
// arbitrary ids) are replaced with U+FFFD.
func (bp *BPE) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id == PadID || id == ClsID || id == SepID {
			continue
		}
		tok, ok := bp.vocab.Token(id)
		if !ok || id < bp.nspec {
			if !ok {
				tok = UnkToken
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(tok)
			continue
		}
		for _, r := range tok {
			if c, ok := runeToByte[r]; ok {
				b.WriteByte(c)
			}
		}
	}
	s := b.String()
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// EncodeBatch encodes and pads texts; see the package function EncodeBatch.
func (bp *BPE) EncodeBatch(texts []string, opt EncodeOptions) (*Batch, error) {
	return EncodeBatch(bp, texts, opt)
}
