package metrics

import (
	"fmt"
	"math"
	"slices"
)

// Score is the element type of score slices: float32 (tensor data) or float64.
type Score interface{ ~float32 | ~float64 }

// checkBinary panics unless labels are 0/1 and as many as scores; it returns
// the number of positives.
func checkBinary(op string, n int, labels []int64) int {
	checkLen(op, n, len(labels))
	pos := 0
	for i, l := range labels {
		switch l {
		case 1:
			pos++
		case 0:
		default:
			panic(fmt.Sprintf("metrics.%s: label %d at position %d, want 0 or 1", op, l, i))
		}
	}
	return pos
}

// ROCAUC returns the area under the ROC curve of binary labels (1 positive,
// 0 negative) ranked by scores (higher means more likely positive). Tied
// scores count one half, which is what scikit-learn's roc_auc_score gets
// from its trapezoidal rule; the value equals the Mann-Whitney U statistic
// divided by (positives x negatives). It is NaN when only one class occurs
// or a score is NaN (scikit-learn raises an error there).
func ROCAUC[S Score](scores []S, labels []int64) float64 {
	pos := checkBinary("ROCAUC", len(scores), labels)
	neg := len(labels) - pos
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	idx := make([]int, len(scores))
	for i := range idx {
		if math.IsNaN(float64(scores[i])) {
			return math.NaN()
		}
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	// Sum of the (1-based, tie-averaged) ranks of the positives.
	rankSum := 0.0
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+1+j) / 2 // mean of ranks i+1 .. j
		for _, k := range idx[i:j] {
			if labels[k] == 1 {
				rankSum += avg
			}
		}
		i = j
	}
	p, n := float64(pos), float64(neg)
	return (rankSum - p*(p+1)/2) / (p * n)
}

// ROCCurve returns the ROC curve of binary labels ranked by scores: for each
// distinct score, in decreasing order, the false and true positive rates of
// predicting positive when score >= threshold, preceded by the point (0, 0)
// with threshold +Inf. This is scikit-learn's roc_curve with
// drop_intermediate=False. With only one class present the rates of the
// missing class are NaN.
func ROCCurve[S Score](scores []S, labels []int64) (fpr, tpr, thresholds []float64) {
	pos := checkBinary("ROCCurve", len(scores), labels)
	neg := len(labels) - pos
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	rate := func(c, total int) float64 {
		if total == 0 {
			return math.NaN()
		}
		return float64(c) / float64(total)
	}
	fpr, tpr, thresholds = []float64{rate(0, neg)}, []float64{rate(0, pos)}, []float64{math.Inf(1)}
	tp, fp := 0, 0
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			if labels[idx[j]] == 1 {
				tp++
			} else {
				fp++
			}
			j++
		}
		fpr = append(fpr, rate(fp, neg))
		tpr = append(tpr, rate(tp, pos))
		thresholds = append(thresholds, float64(scores[idx[i]]))
		i = j
	}
	return fpr, tpr, thresholds
}
