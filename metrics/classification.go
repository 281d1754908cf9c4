// Package metrics computes evaluation metrics: accuracy and top-k accuracy,
// precision/recall/F1, confusion matrices, binary ROC-AUC, and ranking
// metrics for recommendation (Recall@K, Precision@K, HitRate@K, NDCG@K, MRR).
//
// Functions work on plain slices (predicted and true labels as []int64,
// scores as []float32 or []float64); the ones named after tensors accept
// *tensor.Tensor logits of shape [N, C] and read their Data(). Definitions
// follow scikit-learn where it has the metric; doc comments say where they
// differ. A metric that is undefined for its input (accuracy of nothing,
// ROC-AUC with one class) is NaN. Mismatched lengths and out-of-range labels
// are programmer errors and panic with a message naming the function.
package metrics

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/tensor"
)

func checkLen(op string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("metrics.%s: %d predictions and %d targets", op, a, b))
	}
}

// Accuracy returns the fraction of positions where pred equals target
// (NaN when both are empty).
func Accuracy(pred, target []int64) float64 {
	checkLen("Accuracy", len(pred), len(target))
	if len(pred) == 0 {
		return math.NaN()
	}
	hit := 0
	for i, p := range pred {
		if p == target[i] {
			hit++
		}
	}
	return float64(hit) / float64(len(pred))
}

// logitRows checks that logits is a float32 [N, C] tensor and returns its data.
func logitRows(op string, logits *tensor.Tensor) (data []float32, n, c int) {
	s := logits.Shape()
	if len(s) != 2 || logits.DType() != tensor.Float32 {
		panic(fmt.Sprintf("metrics.%s: logits must be float32 [N C], got %v %v", op, logits.DType(), s))
	}
	return logits.Data(), s[0], s[1]
}

// ArgMax returns, for each row of float32 logits of shape [N, C], the index
// of the largest value (the first one on ties).
func ArgMax(logits *tensor.Tensor) []int64 {
	d, _, c := logitRows("ArgMax", logits)
	return ArgMaxRows(d, c)
}

// ArgMaxRows is ArgMax on a row-major slice of rows of numClasses scores.
func ArgMaxRows(scores []float32, numClasses int) []int64 {
	if numClasses <= 0 || len(scores)%numClasses != 0 {
		panic(fmt.Sprintf("metrics.ArgMaxRows: %d scores are not rows of %d classes", len(scores), numClasses))
	}
	out := make([]int64, len(scores)/numClasses)
	for i := range out {
		row := scores[i*numClasses : (i+1)*numClasses]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		out[i] = int64(best)
	}
	return out
}

// AccuracyLogits is the accuracy of the arg-max of logits [N, C] against
// target.
func AccuracyLogits(logits *tensor.Tensor, target []int64) float64 {
	return Accuracy(ArgMax(logits), target)
}

// TopKAccuracy returns the fraction of rows of logits [N, C] whose target
// class is among the k highest scores. Ties are broken towards the lower
// class index, as ArgMax does, so k=1 equals AccuracyLogits.
func TopKAccuracy(logits *tensor.Tensor, target []int64, k int) float64 {
	d, _, c := logitRows("TopKAccuracy", logits)
	return TopKAccuracyRows(d, c, target, k)
}

// TopKAccuracyRows is TopKAccuracy on a row-major slice of scores.
func TopKAccuracyRows(scores []float32, numClasses int, target []int64, k int) float64 {
	if numClasses <= 0 || len(scores)%numClasses != 0 {
		panic(fmt.Sprintf("metrics.TopKAccuracy: %d scores are not rows of %d classes", len(scores), numClasses))
	}
	if k <= 0 {
		panic(fmt.Sprintf("metrics.TopKAccuracy: k = %d, want > 0", k))
	}
	n := len(scores) / numClasses
	checkLen("TopKAccuracy", n, len(target))
	if n == 0 {
		return math.NaN()
	}
	hit := 0
	for i := 0; i < n; i++ {
		row := scores[i*numClasses : (i+1)*numClasses]
		t := target[i]
		if t < 0 || int(t) >= numClasses {
			panic(fmt.Sprintf("metrics.TopKAccuracy: target %d of row %d outside [0, %d)", t, i, numClasses))
		}
		st := row[t]
		rank := 0 // classes ranked before t
		for j, v := range row {
			if v > st || (v == st && j < int(t)) {
				rank++
			}
		}
		if rank < k {
			hit++
		}
	}
	return float64(hit) / float64(n)
}
