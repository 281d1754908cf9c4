package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ConfusionMatrix counts (true class, predicted class) pairs. Counts[i][j] is
// the number of examples of true class i predicted as class j, the layout of
// scikit-learn's confusion_matrix. Add accumulates batches, so one matrix can
// cover a whole evaluation pass.
type ConfusionMatrix struct {
	// Counts[true][pred] are the pair counts.
	Counts [][]int64
	// Labels optionally name the classes in String; missing names print as
	// the class index.
	Labels []string
}

// NewConfusionMatrix returns the confusion matrix of pred against target
// over numClasses classes (either slice may be empty and added to later).
func NewConfusionMatrix(pred, target []int64, numClasses int) *ConfusionMatrix {
	if numClasses <= 0 {
		panic(fmt.Sprintf("metrics.NewConfusionMatrix: %d classes", numClasses))
	}
	m := &ConfusionMatrix{Counts: make([][]int64, numClasses)}
	for i := range m.Counts {
		m.Counts[i] = make([]int64, numClasses)
	}
	m.Add(pred, target)
	return m
}

// Add counts more predictions. Labels outside [0, numClasses) panic.
func (m *ConfusionMatrix) Add(pred, target []int64) {
	checkLen("ConfusionMatrix.Add", len(pred), len(target))
	c := int64(len(m.Counts))
	for i, p := range pred {
		t := target[i]
		if p < 0 || p >= c || t < 0 || t >= c {
			panic(fmt.Sprintf("metrics.ConfusionMatrix.Add: position %d has prediction %d and target %d, want both in [0, %d)", i, p, t, c))
		}
		m.Counts[t][p]++
	}
}

// NumClasses returns the number of classes.
func (m *ConfusionMatrix) NumClasses() int { return len(m.Counts) }

// Total returns the number of counted examples.
func (m *ConfusionMatrix) Total() int64 {
	var s int64
	for _, r := range m.Counts {
		for _, v := range r {
			s += v
		}
	}
	return s
}

// Accuracy returns the fraction of counted examples on the diagonal (NaN
// when empty).
func (m *ConfusionMatrix) Accuracy() float64 {
	tot := m.Total()
	if tot == 0 {
		return math.NaN()
	}
	var d int64
	for i := range m.Counts {
		d += m.Counts[i][i]
	}
	return float64(d) / float64(tot)
}

// ClassScores are the precision, recall and F1 of one class (or an average),
// with the number of true examples it covers.
type ClassScores struct {
	Precision, Recall, F1 float64
	// Support is the number of examples whose true class is this class (for
	// averages: of all classes).
	Support int64
}

// Report holds per-class and averaged precision, recall and F1.
//
// Zero division gives 0, like scikit-learn's zero_division=0: precision of a
// class never predicted, recall of a class that never occurs, and F1 when
// precision and recall are both 0. Macro and Weighted average over the
// classes that occur in the targets or the predictions, which is what
// scikit-learn does when labels are not given; Weighted weights each class by
// its support. Micro-averaged precision, recall and F1 all equal Accuracy for
// single-label classification.
type Report struct {
	// PerClass has one entry per class index.
	PerClass []ClassScores
	// Macro is the unweighted mean over the classes present.
	Macro ClassScores
	// Weighted is the support-weighted mean over the classes present.
	Weighted ClassScores
	// Accuracy is the fraction of correct predictions (NaN when empty).
	Accuracy float64
	// Labels optionally name the classes in String.
	Labels []string
}

// Report computes precision, recall and F1 from the counts.
func (m *ConfusionMatrix) Report() Report {
	c := len(m.Counts)
	r := Report{PerClass: make([]ClassScores, c), Accuracy: m.Accuracy(), Labels: m.Labels}
	present := 0
	var total int64
	for k := 0; k < c; k++ {
		var tp, predicted, actual int64
		tp = m.Counts[k][k]
		for j := 0; j < c; j++ {
			predicted += m.Counts[j][k]
			actual += m.Counts[k][j]
		}
		s := ClassScores{Precision: ratio(tp, predicted), Recall: ratio(tp, actual), Support: actual}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		r.PerClass[k] = s
		if predicted == 0 && actual == 0 {
			continue
		}
		present++
		total += actual
		r.Macro.Precision += s.Precision
		r.Macro.Recall += s.Recall
		r.Macro.F1 += s.F1
		w := float64(actual)
		r.Weighted.Precision += w * s.Precision
		r.Weighted.Recall += w * s.Recall
		r.Weighted.F1 += w * s.F1
	}
	r.Macro.Support, r.Weighted.Support = total, total
	if present > 0 {
		p := float64(present)
		r.Macro.Precision /= p
		r.Macro.Recall /= p
		r.Macro.F1 /= p
	}
	if total > 0 {
		t := float64(total)
		r.Weighted.Precision /= t
		r.Weighted.Recall /= t
		r.Weighted.F1 /= t
	} else {
		r.Weighted = ClassScores{}
	}
	return r
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// PrecisionRecallF1 returns per-class, macro and weighted precision, recall
// and F1 of pred against target over numClasses classes; see Report.
func PrecisionRecallF1(pred, target []int64, numClasses int) Report {
	return NewConfusionMatrix(pred, target, numClasses).Report()
}

func label(labels []string, i int) string {
	if i < len(labels) && labels[i] != "" {
		return labels[i]
	}
	return strconv.Itoa(i)
}

// String formats the matrix as a table with true classes as rows and
// predicted classes as columns.
func (m *ConfusionMatrix) String() string {
	c := len(m.Counts)
	cells := make([][]string, c+1)
	cells[0] = append(make([]string, 0, c+1), "true\\pred")
	for j := 0; j < c; j++ {
		cells[0] = append(cells[0], label(m.Labels, j))
	}
	for i := 0; i < c; i++ {
		row := []string{label(m.Labels, i)}
		for _, v := range m.Counts[i] {
			row = append(row, strconv.FormatInt(v, 10))
		}
		cells[i+1] = row
	}
	return table(cells)
}

// String formats the report like scikit-learn's classification_report.
func (r Report) String() string {
	cells := [][]string{{"", "precision", "recall", "f1", "support"}}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for i, s := range r.PerClass {
		cells = append(cells, []string{label(r.Labels, i), f(s.Precision), f(s.Recall), f(s.F1), strconv.FormatInt(s.Support, 10)})
	}
	cells = append(cells,
		[]string{"accuracy", "", "", f(r.Accuracy), strconv.FormatInt(r.Macro.Support, 10)},
		[]string{"macro avg", f(r.Macro.Precision), f(r.Macro.Recall), f(r.Macro.F1), strconv.FormatInt(r.Macro.Support, 10)},
		[]string{"weighted avg", f(r.Weighted.Precision), f(r.Weighted.Recall), f(r.Weighted.F1), strconv.FormatInt(r.Weighted.Support, 10)})
	return table(cells)
}

// table right-aligns cells in columns (the first column left-aligned).
func table(cells [][]string) string {
	width := map[int]int{}
	for _, row := range cells {
		for j, s := range row {
			width[j] = max(width[j], len(s))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		for j, s := range row {
			if j == 0 {
				b.WriteString(s + strings.Repeat(" ", width[0]-len(s)))
				continue
			}
			b.WriteString("  " + strings.Repeat(" ", width[j]-len(s)) + s)
		}
		b.WriteString("\n")
	}
	return b.String()
}
