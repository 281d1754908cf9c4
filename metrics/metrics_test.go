package metrics_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/tensor"
)

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 && !(math.IsNaN(got) && math.IsNaN(want)) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestAccuracy(t *testing.T) {
	near(t, "Accuracy", metrics.Accuracy([]int64{0, 1, 2, 2}, []int64{0, 2, 2, 1}), 0.5)
	near(t, "Accuracy empty", metrics.Accuracy(nil, nil), math.NaN())
	testutil.MustPanic(t, "length", func() { metrics.Accuracy([]int64{1}, nil) }, "metrics.Accuracy", "1 predictions", "0 targets")
}

func TestTopKAccuracy(t *testing.T) {
	logits := tensor.FromSlice([]float32{
		0.1, 0.5, 0.4, // target 2: one class above it
		0.3, 0.3, 0.4, // target 1: 2 is above it, 0 ties and wins the tie
		0.9, 0.05, 0.05, // target 0: top
	}, 3, 3)
	target := []int64{2, 1, 0}
	if got := metrics.ArgMax(logits); !slices.Equal(got, []int64{1, 2, 0}) {
		t.Errorf("ArgMax = %v", got)
	}
	near(t, "AccuracyLogits", metrics.AccuracyLogits(logits, target), 1.0/3)
	near(t, "top1", metrics.TopKAccuracy(logits, target, 1), 1.0/3)
	near(t, "top2", metrics.TopKAccuracy(logits, target, 2), 2.0/3)
	near(t, "top3", metrics.TopKAccuracy(logits, target, 3), 1)
	near(t, "top5 > classes", metrics.TopKAccuracy(logits, target, 5), 1)
	testutil.MustPanic(t, "shape", func() { metrics.ArgMax(tensor.Zeros(2, 3, 4)) }, "metrics.ArgMax", "[2 3 4]")
	testutil.MustPanic(t, "target range", func() { metrics.TopKAccuracy(logits, []int64{0, 0, 3}, 1) }, "metrics.TopKAccuracy", "target 3", "row 2")
	testutil.MustPanic(t, "k", func() { metrics.TopKAccuracy(logits, target, 0) }, "metrics.TopKAccuracy", "k = 0")
	testutil.MustPanic(t, "rows", func() { metrics.ArgMaxRows(make([]float32, 5), 2) }, "metrics.ArgMaxRows", "5 scores", "2 classes")
}

func TestConfusionMatrix(t *testing.T) {
	// scikit-learn's confusion_matrix docstring example:
	// confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2])
	// = [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
	m := metrics.NewConfusionMatrix([]int64{0, 0, 2, 2, 0, 2}, []int64{2, 0, 2, 2, 0, 1}, 3)
	want := [][]int64{{2, 0, 0}, {0, 0, 1}, {1, 0, 2}}
	for i := range want {
		if !slices.Equal(m.Counts[i], want[i]) {
			t.Errorf("row %d = %v, want %v", i, m.Counts[i], want[i])
		}
	}
	near(t, "Accuracy", m.Accuracy(), 4.0/6)
	if m.Total() != 6 || m.NumClasses() != 3 {
		t.Errorf("Total %d NumClasses %d", m.Total(), m.NumClasses())
	}
	m.Add([]int64{1}, []int64{1})
	if m.Counts[1][1] != 1 || m.Total() != 7 {
		t.Errorf("Add did not count")
	}
	m.Labels = []string{"cat", "dog"}
	s := m.String()
	wantS := "true\\pred  cat  dog  2\n" +
		"cat          2    0  0\n" +
		"dog          0    1  1\n" +
		"2            1    0  2\n"
	if s != wantS {
		t.Errorf("String:\n%s\nwant:\n%s", s, wantS)
	}
	testutil.MustPanic(t, "range", func() { m.Add([]int64{3}, []int64{0}) }, "metrics.ConfusionMatrix.Add", "prediction 3", "[0, 3)")
	near(t, "empty accuracy", metrics.NewConfusionMatrix(nil, nil, 2).Accuracy(), math.NaN())
}

func TestPrecisionRecallF1(t *testing.T) {
	// scikit-learn's precision_recall_fscore_support docstring example:
	// y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1]
	// class 0: tp 2, predicted 3, actual 2 -> P 2/3, R 1, F1 0.8
	// classes 1 and 2: tp 0 -> P = R = F1 = 0
	// average='macro' -> (0.2222, 0.3333, 0.2667); 'weighted' the same (equal supports).
	yt := []int64{0, 1, 2, 0, 1, 2}
	yp := []int64{0, 2, 1, 0, 0, 1}
	r := metrics.PrecisionRecallF1(yp, yt, 3)
	near(t, "P0", r.PerClass[0].Precision, 2.0/3)
	near(t, "R0", r.PerClass[0].Recall, 1)
	near(t, "F1_0", r.PerClass[0].F1, 0.8)
	if r.PerClass[0].Support != 2 || r.PerClass[1] != (metrics.ClassScores{Support: 2}) {
		t.Errorf("per class %+v", r.PerClass)
	}
	near(t, "macro P", r.Macro.Precision, 2.0/9)
	near(t, "macro R", r.Macro.Recall, 1.0/3)
	near(t, "macro F1", r.Macro.F1, 0.8/3)
	near(t, "weighted F1", r.Weighted.F1, 0.8/3)
	near(t, "accuracy", r.Accuracy, 2.0/6)

	// Unequal supports and a class (3) absent from both: zero, and left out
	// of the averages as scikit-learn does without labels=.
	// y_true = [0, 0, 0, 1], y_pred = [0, 0, 1, 1]
	// class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1, F1 2/3
	// macro F1 = (0.8 + 2/3)/2 = 0.733333; weighted F1 = (3*0.8 + 1*2/3)/4 = 0.766667
	r = metrics.PrecisionRecallF1([]int64{0, 0, 1, 1}, []int64{0, 0, 0, 1}, 4)
	near(t, "macro F1", r.Macro.F1, (0.8+2.0/3)/2)
	near(t, "weighted F1", r.Weighted.F1, (3*0.8+2.0/3)/4)
	near(t, "weighted P", r.Weighted.Precision, (3*1+0.5)/4)
	near(t, "macro R", r.Macro.Recall, (2.0/3+1)/2)
	if r.PerClass[3] != (metrics.ClassScores{}) || r.Macro.Support != 4 {
		t.Errorf("absent class %+v, support %d", r.PerClass[3], r.Macro.Support)
	}
	// Never predicted and never true except as a miss: zero division gives 0.
	r = metrics.PrecisionRecallF1([]int64{0, 0}, []int64{1, 1}, 2)
	if r.PerClass[0].Precision != 0 || r.PerClass[1].Precision != 0 || r.Macro.F1 != 0 || math.IsNaN(r.Weighted.F1) {
		t.Errorf("zero division: %+v", r)
	}
	r.Labels = []string{"neg", "pos"}
	out := r.String()
	for _, w := range []string{"precision", "neg", "pos", "macro avg", "weighted avg", "accuracy", "0.0000"} {
		if !strings.Contains(out, w) {
			t.Errorf("report text lacks %q:\n%s", w, out)
		}
	}
}

func TestROCAUC(t *testing.T) {
	// scikit-learn roc_auc_score docstring-style example:
	// y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8] -> 0.75
	y := []int64{0, 0, 1, 1}
	near(t, "auc", metrics.ROCAUC([]float64{0.1, 0.4, 0.35, 0.8}, y), 0.75)
	near(t, "auc float32", metrics.ROCAUC([]float32{0.1, 0.4, 0.35, 0.8}, y), 0.75)
	// Ties: pairs (pos, neg) = (0.5,0.5)->1/2, (0.5,0.2)->1, (0.8,0.5)->1,
	// (0.8,0.2)->1: 3.5/4. The trapezoid over (0,0),(0,.5),(.5,1),(1,1)
	// that sklearn integrates gives the same 0.875.
	near(t, "auc ties", metrics.ROCAUC([]float64{0.5, 0.5, 0.2, 0.8}, []int64{0, 1, 0, 1}), 0.875)
	near(t, "all tied", metrics.ROCAUC([]float64{1, 1, 1, 1}, y), 0.5)
	near(t, "reversed", metrics.ROCAUC([]float64{4, 3, 2, 1}, y), 0)
	near(t, "one class", metrics.ROCAUC([]float64{1, 2}, []int64{1, 1}), math.NaN())
	near(t, "nan score", metrics.ROCAUC([]float64{1, math.NaN(), 2, 3}, y), math.NaN())
	testutil.MustPanic(t, "labels", func() { metrics.ROCAUC([]float64{1, 2}, []int64{0, 2}) }, "metrics.ROCAUC", "label 2")

	// sklearn roc_curve docstring: y=[1,1,2,2] (pos 2), scores [0.1,0.4,0.35,0.8]
	// fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1], thresholds [inf, .8, .4, .35, .1]
	fpr, tpr, th := metrics.ROCCurve([]float64{0.1, 0.4, 0.35, 0.8}, y)
	if !slices.Equal(fpr, []float64{0, 0, 0.5, 0.5, 1}) || !slices.Equal(tpr, []float64{0, 0.5, 0.5, 1, 1}) ||
		!slices.Equal(th, []float64{math.Inf(1), 0.8, 0.4, 0.35, 0.1}) {
		t.Errorf("ROCCurve: fpr %v tpr %v thresholds %v", fpr, tpr, th)
	}
	// Trapezoid over the curve equals ROCAUC, ties included.
	s := []float64{0.5, 0.5, 0.2, 0.8, 0.2, 0.9}
	l := []int64{0, 1, 0, 1, 1, 0}
	fpr, tpr, _ = metrics.ROCCurve(s, l)
	area := 0.0
	for i := 1; i < len(fpr); i++ {
		area += (fpr[i] - fpr[i-1]) * (tpr[i] + tpr[i-1]) / 2
	}
	near(t, "trapezoid vs ROCAUC", metrics.ROCAUC(s, l), area)
}

func TestRanking(t *testing.T) {
	lg3 := 1 / math.Log2(3) // discount of position 2
	q1 := metrics.Query{Ranked: []int64{5, 3, 9, 1, 7}, Relevant: []int64{3, 7, 8}}
	near(t, "recall@3", metrics.RecallAtK(q1.Ranked, q1.Relevant, 3), 1.0/3)
	near(t, "recall@5", metrics.RecallAtK(q1.Ranked, q1.Relevant, 5), 2.0/3)
	near(t, "precision@3", metrics.PrecisionAtK(q1.Ranked, q1.Relevant, 3), 1.0/3)
	near(t, "hit@3", metrics.HitRateAtK(q1.Ranked, q1.Relevant, 3), 1)
	near(t, "hit@1", metrics.HitRateAtK(q1.Ranked, q1.Relevant, 1), 0)
	// DCG = 1/log2(3); ideal with 3 relevant = 1 + 1/log2(3) + 1/log2(4)
	near(t, "ndcg@3", metrics.NDCGAtK(q1.Ranked, q1.Relevant, 3), lg3/(1+lg3+0.5))
	near(t, "rr", metrics.ReciprocalRank(q1.Ranked, q1.Relevant), 0.5)
	near(t, "rr none", metrics.ReciprocalRank([]int64{1}, []int64{2}), 0)
	near(t, "no relevant", metrics.RecallAtK([]int64{1}, nil, 1), math.NaN())

	q2 := metrics.Query{Ranked: []int64{1, 2}, Relevant: []int64{2}}
	q3 := metrics.Query{Ranked: []int64{1, 2}} // skipped
	q4 := metrics.Query{Ranked: []int64{4, 4, 4}, Relevant: []int64{4, 6}}
	near(t, "duplicates count once", metrics.RecallAtK(q4.Ranked, q4.Relevant, 3), 0.5)
	s := metrics.EvaluateRanking([]metrics.Query{q1, q2, q3, q4}, 3)
	if s.Queries != 3 || s.K != 3 {
		t.Errorf("queries %d", s.Queries)
	}
	near(t, "mean recall", s.Recall, (1.0/3+1+0.5)/3)
	near(t, "mean precision", s.Precision, 1.0/3)
	near(t, "mean hit", s.HitRate, 1)
	near(t, "mean ndcg", s.NDCG, (lg3/(1+lg3+0.5)+lg3+1/(1+lg3))/3)
	near(t, "mrr", s.MRR, (0.5+0.5+1)/3)
	near(t, "mrr@1", metrics.EvaluateRanking([]metrics.Query{q1, q2, q4}, 1).MRR, 1.0/3)
	near(t, "no queries", metrics.EvaluateRanking(nil, 3).NDCG, math.NaN())
	testutil.MustPanic(t, "k", func() { metrics.NDCGAtK(nil, nil, 0) }, "metrics.NDCGAtK", "k = 0")

	got := metrics.TopK([]float32{0.1, 0.9, 0.5, 0.9, float32(math.NaN())}, 3, 2)
	if !slices.Equal(got, []int64{1, 3, 0}) {
		t.Errorf("TopK = %v, want [1 3 0]", got)
	}
	if got := metrics.TopK([]float64{1, 2}, 5); !slices.Equal(got, []int64{1, 0}) {
		t.Errorf("TopK short = %v", got)
	}
}
