package metrics

import (
	"fmt"
	"math"
	"slices"
)

// Ranking metrics score one query (a user, in recommendation) at a time: the
// ranked list of recommended item ids, best first, against the set of
// relevant item ids (e.g. the items the user interacted with in the test
// period). Relevance is binary and an item repeated in the ranked list counts
// only at its first position. A query without relevant items has no defined
// score: the per-query functions return NaN and EvaluateRanking skips it.

func checkK(op string, k int) {
	if k <= 0 {
		panic(fmt.Sprintf("metrics.%s: k = %d, want > 0", op, k))
	}
}

// hits returns, for the first k positions of ranked, whether each holds a
// relevant item not seen earlier in the list, and the number of relevant items.
func hits(ranked, relevant []int64, k int) ([]bool, int) {
	rel := make(map[int64]bool, len(relevant))
	for _, r := range relevant {
		rel[r] = true
	}
	k = min(k, len(ranked))
	out := make([]bool, k)
	seen := make(map[int64]bool, k)
	for i, item := range ranked[:k] {
		if rel[item] && !seen[item] {
			out[i] = true
		}
		seen[item] = true
	}
	return out, len(rel)
}

func count(h []bool) int {
	n := 0
	for _, v := range h {
		if v {
			n++
		}
	}
	return n
}

// RecallAtK returns the fraction of relevant items found in the first k
// ranked items: |top-k ∩ relevant| / |relevant|.
func RecallAtK(ranked, relevant []int64, k int) float64 {
	checkK("RecallAtK", k)
	h, nrel := hits(ranked, relevant, k)
	if nrel == 0 {
		return math.NaN()
	}
	return float64(count(h)) / float64(nrel)
}

// PrecisionAtK returns the fraction of the first k positions holding a
// relevant item: |top-k ∩ relevant| / k (a list shorter than k counts its
// missing positions as misses).
func PrecisionAtK(ranked, relevant []int64, k int) float64 {
	checkK("PrecisionAtK", k)
	h, nrel := hits(ranked, relevant, k)
	if nrel == 0 {
		return math.NaN()
	}
	return float64(count(h)) / float64(k)
}

// HitRateAtK returns 1 if any of the first k ranked items is relevant, else 0.
func HitRateAtK(ranked, relevant []int64, k int) float64 {
	checkK("HitRateAtK", k)
	h, nrel := hits(ranked, relevant, k)
	if nrel == 0 {
		return math.NaN()
	}
	if count(h) > 0 {
		return 1
	}
	return 0
}

// NDCGAtK returns the normalised discounted cumulative gain of the first k
// ranked items with binary relevance: DCG = sum over relevant positions i
// (0-based) of 1/log2(i+2), divided by the DCG of an ideal list that puts
// min(k, |relevant|) relevant items first.
func NDCGAtK(ranked, relevant []int64, k int) float64 {
	checkK("NDCGAtK", k)
	h, nrel := hits(ranked, relevant, k)
	if nrel == 0 {
		return math.NaN()
	}
	dcg, ideal := 0.0, 0.0
	for i, v := range h {
		if v {
			dcg += 1 / math.Log2(float64(i+2))
		}
	}
	for i := 0; i < min(k, nrel); i++ {
		ideal += 1 / math.Log2(float64(i+2))
	}
	return dcg / ideal
}

// ReciprocalRank returns 1/r for the 1-based position r of the first
// relevant item in ranked, or 0 if none is relevant. Pass ranked[:k] for the
// cut-off version; the mean over queries is the MRR.
func ReciprocalRank(ranked, relevant []int64) float64 {
	h, nrel := hits(ranked, relevant, len(ranked))
	if nrel == 0 {
		return math.NaN()
	}
	if i := slices.Index(h, true); i >= 0 {
		return 1 / float64(i+1)
	}
	return 0
}

// Query is one ranking to evaluate: recommended items best first, and the
// relevant items.
type Query struct {
	Ranked, Relevant []int64
}

// RankingScores are ranking metrics averaged over queries.
type RankingScores struct {
	// K is the cut-off.
	K int
	// Recall, Precision, HitRate and NDCG are the means of the @K metrics.
	Recall, Precision, HitRate, NDCG float64
	// MRR is the mean reciprocal rank within the first K items (MRR@K).
	MRR float64
	// Queries is the number of queries averaged (those with a relevant item).
	Queries int
}

// EvaluateRanking averages Recall@K, Precision@K, HitRate@K, NDCG@K and
// MRR@K over the queries that have at least one relevant item. With no such
// query every mean is NaN.
func EvaluateRanking(queries []Query, k int) RankingScores {
	checkK("EvaluateRanking", k)
	s := RankingScores{K: k}
	for _, q := range queries {
		if len(q.Relevant) == 0 {
			continue
		}
		s.Queries++
		s.Recall += RecallAtK(q.Ranked, q.Relevant, k)
		s.Precision += PrecisionAtK(q.Ranked, q.Relevant, k)
		s.HitRate += HitRateAtK(q.Ranked, q.Relevant, k)
		s.NDCG += NDCGAtK(q.Ranked, q.Relevant, k)
		s.MRR += ReciprocalRank(q.Ranked[:min(k, len(q.Ranked))], q.Relevant)
	}
	n := float64(s.Queries)
	if s.Queries == 0 {
		n = math.NaN()
	}
	s.Recall /= n
	s.Precision /= n
	s.HitRate /= n
	s.NDCG /= n
	s.MRR /= n
	return s
}

// TopK returns the indices of the k largest scores, best first, ties broken
// towards the lower index, skipping the indices in exclude (e.g. items a user
// already has). It returns fewer than k when there are fewer candidates.
// NaN scores are never chosen.
func TopK[S Score](scores []S, k int, exclude ...int64) []int64 {
	checkK("TopK", k)
	skip := make(map[int64]bool, len(exclude))
	for _, e := range exclude {
		skip[e] = true
	}
	cand := make([]int64, 0, len(scores))
	for i, v := range scores {
		if !skip[int64(i)] && !math.IsNaN(float64(v)) {
			cand = append(cand, int64(i))
		}
	}
	slices.SortStableFunc(cand, func(a, b int64) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	return cand[:min(k, len(cand))]
}
