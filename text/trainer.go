package text

import (
	"cmp"
	"slices"
	"strings"
)

// Scoring selects how a subword trainer picks the next pair of symbols to
// merge.
type Scoring int

const (
	// Frequency merges the most frequent adjacent pair (as BPE and the
	// Hugging Face WordPiece trainer do).
	Frequency Scoring = iota
	// Likelihood merges the pair with the highest count(ab) /
	// (count(a) * count(b)), the language-model likelihood gain used by the
	// original WordPiece.
	Likelihood
)

// mergeTrainer learns merges over words given as symbol sequences. Pair
// counts are kept exactly and updated incrementally: a merge only touches
// the words that contain the merged pair.
type mergeTrainer struct {
	syms     []string
	symID    map[string]int32
	symCount []int64

	words  [][]int32
	wcount []int64
	stamp  []int32

	pairs     []pairStat
	pairIdx   map[uint64]int32
	pairWords [][]int32 // per pair: words that may contain it (with repeats)
	iter      int32

	joinFn func(a, b string) string
}

type pairStat struct {
	a, b  int32
	count int64
	dead  bool // may never be merged again (result collides with a reserved token)
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newMergeTrainer(join func(a, b string) string) *mergeTrainer {
	return &mergeTrainer{symID: map[string]int32{}, pairIdx: map[uint64]int32{}, joinFn: join}
}

func (m *mergeTrainer) intern(s string) int32 {
	if id, ok := m.symID[s]; ok {
		return id
	}
	id := int32(len(m.syms))
	m.syms = append(m.syms, s)
	m.symID[s] = id
	m.symCount = append(m.symCount, 0)
	return id
}

// addWord adds a word (symbol ids) seen count times.
func (m *mergeTrainer) addWord(w []int32, count int64) {
	wi := int32(len(m.words))
	m.words = append(m.words, w)
	m.wcount = append(m.wcount, count)
	m.stamp = append(m.stamp, -1)
	for _, s := range w {
		m.symCount[s] += count
	}
	m.addPairs(wi, w, count)
}

func (m *mergeTrainer) addPairs(wi int32, w []int32, count int64) {
	for i := 0; i+1 < len(w); i++ {
		k := pairKey(w[i], w[i+1])
		pi, ok := m.pairIdx[k]
		if !ok {
			pi = int32(len(m.pairs))
			m.pairIdx[k] = pi
			m.pairs = append(m.pairs, pairStat{a: w[i], b: w[i+1]})
			m.pairWords = append(m.pairWords, nil)
		}
		m.pairs[pi].count += count
		m.pairWords[pi] = append(m.pairWords[pi], wi)
	}
}

func (m *mergeTrainer) subPairs(w []int32, count int64) {
	for i := 0; i+1 < len(w); i++ {
		m.pairs[m.pairIdx[pairKey(w[i], w[i+1])]].count -= count
	}
}

// best returns the index of the pair to merge next, or -1 when no pair has
// at least minFreq occurrences. Ties are broken by the lexicographic order
// of (symbol a, symbol b), so training is deterministic.
func (m *mergeTrainer) best(scoring Scoring, minFreq int64) int {
	bi := -1
	var bc int64
	var bs float64
	for i := range m.pairs {
		p := &m.pairs[i]
		if p.count < minFreq || p.count <= 0 || p.dead {
			continue
		}
		if scoring == Likelihood {
			s := float64(p.count) / (float64(m.symCount[p.a]) * float64(m.symCount[p.b]))
			if bi >= 0 && (s < bs || (s == bs && !m.lexLess(p, &m.pairs[bi]))) {
				continue
			}
			bi, bs = i, s
			continue
		}
		if bi >= 0 && (p.count < bc || (p.count == bc && !m.lexLess(p, &m.pairs[bi]))) {
			continue
		}
		bi, bc = i, p.count
	}
	return bi
}

func (m *mergeTrainer) lexLess(p, q *pairStat) bool {
	if c := strings.Compare(m.syms[p.a], m.syms[q.a]); c != 0 {
		return c < 0
	}
	return m.syms[p.b] < m.syms[q.b]
}

// merge replaces every occurrence of pair pi by the joined symbol and
// returns the joined symbol's id.
func (m *mergeTrainer) merge(pi int) int32 {
	m.iter++
	a, b := m.pairs[pi].a, m.pairs[pi].b
	c := m.intern(m.joinFn(m.syms[a], m.syms[b]))
	list := m.pairWords[pi]
	m.pairWords[pi] = nil
	for _, wi := range list {
		if m.stamp[wi] == m.iter {
			continue
		}
		m.stamp[wi] = m.iter
		w := m.words[wi]
		found := false
		for i := 0; i+1 < len(w); i++ {
			if w[i] == a && w[i+1] == b {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		cnt := m.wcount[wi]
		m.subPairs(w, cnt)
		nw := make([]int32, 0, len(w)-1)
		for i := 0; i < len(w); i++ {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				nw = append(nw, c)
				m.symCount[a] -= cnt
				m.symCount[b] -= cnt
				m.symCount[c] += cnt
				i++
				continue
			}
			nw = append(nw, w[i])
		}
		m.words[wi] = nw
		m.addPairs(wi, nw, cnt)
	}
	return c
}

// sortedByCount returns symbol strings sorted by decreasing count, ties
// lexicographic.
func sortedByCount(counts map[string]int64) []string {
	out := make([]string, 0, len(counts))
	for s := range counts {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y string) int {
		if c := cmp.Compare(counts[y], counts[x]); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	return out
}

// sortedWords returns the keys of a word-count map in lexicographic order.
func sortedWords(counts map[string]int64) []string {
	out := make([]string, 0, len(counts))
	for s := range counts {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// subwordDefaults fills in the zero settings of TrainBPE and
// TrainWordPiece: 8000 tokens, pairs seen at least twice,
// DefaultMaxInputCharsPerWord.
func subwordDefaults(vocabSize, minFreq, maxChars *int) {
	if *vocabSize == 0 {
		*vocabSize = 8000
	}
	if *minFreq == 0 {
		*minFreq = 2
	}
	if *maxChars == 0 {
		*maxChars = DefaultMaxInputCharsPerWord
	}
}

// startVocab returns a vocabulary that holds the reserved tokens, in order,
// and the set of its tokens.
func startVocab(reserved []string) ([]string, map[string]bool) {
	inVocab := make(map[string]bool, len(reserved))
	for _, t := range reserved {
		inVocab[t] = true
	}
	return append([]string(nil), reserved...), inVocab
}
