package main

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/data/textdata"
	"github.com/deepgo/deepgo/textmodel"
)

// Self-training (deepgo train text --unlabeled): the configured model is
// trained on the labelled rows (the teacher), labels the unlabeled texts in
// memory, and the same configuration is trained again from scratch on the
// labelled rows plus the texts the teacher labels with probability >=
// --pseudo-threshold (the student), which is evaluated, saved and tracked
// like any run.

// pseudoChunk is how many unlabeled texts are tokenized and labelled at a
// time (bounding the memory of their ids).
const pseudoChunk = 4096

// readUnlabeled reads the texts of the --unlabeled files (their
// --unlabeled-text-col, by default the --text-col), in order. --where does
// not apply to them.
func readUnlabeled(run textRun) ([]textdata.Example, error) {
	col := run.UnlabeledTextCol
	if col == "" {
		col = run.TextCol
	}
	var out []textdata.Example
	for _, p := range run.Unlabeled {
		d, err := textdata.ReadFile(p, textdata.Options{TextCol: col, Unlabeled: true})
		if err != nil {
			return nil, fmt.Errorf("--unlabeled: %w", err)
		}
		out = append(out, d.Examples...)
	}
	return out, nil
}

// normText is the form in which texts are compared: the fields of s (split
// at white space) joined by one space.
func normText(s string) string { return strings.Join(strings.Fields(s), " ") }

// normTexts returns the set of the normalised texts of the examples of ds
// (nil entries skipped).
func normTexts(ds ...*textdata.Data) map[string]bool {
	set := map[string]bool{}
	for _, d := range ds {
		if d == nil {
			continue
		}
		for _, e := range d.Examples {
			set[normText(e.Text)] = true
		}
	}
	return set
}

// unlabeledDrops counts the unlabeled texts left out before labelling.
type unlabeledDrops struct {
	// Empty texts are empty after trimming white space.
	Empty int `json:"empty"`
	// Duplicate texts repeat (in normalised form) an earlier unlabeled
	// text that was kept for labelling.
	Duplicate int `json:"duplicate"`
	// Overlap texts equal (in normalised form) a labelled training,
	// validation or dev text.
	Overlap int `json:"overlap"`
}

// candidateTexts returns the unlabeled examples worth labelling: it drops,
// in this order of checks, texts that are empty after trimming, texts whose
// normalised form (normText) is that of a text in labelled (training,
// validation and dev rows: evaluation texts are never pseudo-labelled), and
// texts whose normalised form repeats an earlier candidate's.
func candidateTexts(unl []textdata.Example, labelled ...*textdata.Data) ([]textdata.Example, unlabeledDrops) {
	var drops unlabeledDrops
	known := normTexts(labelled...)
	seen := map[string]bool{}
	var out []textdata.Example
	for _, e := range unl {
		n := normText(e.Text)
		switch {
		case n == "":
			drops.Empty++
		case known[n]:
			drops.Overlap++
		case seen[n]:
			drops.Duplicate++
		default:
			seen[n] = true
			out = append(out, e)
		}
	}
	return out, drops
}

// pseudoLabel runs the teacher on the candidate texts (encoded as it was
// trained, in chunks of pseudoChunk) and returns those whose top class
// probability is at least threshold, labelled with that class, in their
// order, and how many of each class there are. With labelled (the class
// counts of the labelled training rows), the classes are balanced first
// (balancePseudo).
func pseudoLabel(teacher *textFit, cand []textdata.Example, classes []string, threshold float64, labelled []int) ([]textdata.Example, []int, error) {
	var out []textdata.Example
	var cls []int
	var conf []float32
	for lo := 0; lo < len(cand); lo += pseudoChunk {
		part := &textdata.Data{Examples: slices.Clone(cand[lo:min(lo+pseudoChunk, len(cand))])}
		for i := range part.Examples {
			part.Examples[i].Label = classes[0] // any class: the targets are not used
		}
		ds, err := textdata.NewDataset(part, teacher.tok, classes, teacher.dopt)
		if err != nil {
			return nil, nil, fmt.Errorf("--unlabeled: %w", err)
		}
		for i, p := range textmodel.Probabilities(teacher.clf, ds, 256) {
			k := slices.Index(p, slices.Max(p))
			if float64(p[k]) >= threshold {
				e := part.Examples[i]
				e.Label = classes[k]
				out = append(out, e)
				cls = append(cls, k)
				conf = append(conf, p[k])
			}
		}
	}
	keep := make([]bool, len(out))
	for i := range keep {
		keep[i] = true
	}
	if labelled != nil {
		keep = balancePseudo(cls, conf, labelled)
	}
	perClass := make([]int, len(classes))
	var kept []textdata.Example
	for i, e := range out {
		if keep[i] {
			kept = append(kept, e)
			perClass[cls[i]]++
		}
	}
	return kept, perClass, nil
}

// balancePseudo keeps the pseudo-labels' class mix close to the labelled
// rows' (--pseudo-balance): with r the median over classes of (confident
// pseudo-labels of the class / its labelled rows), class k keeps at most
// round(r·labelled[k]) pseudo-labels, its most confident ones (the earlier
// one on a tie). cls and conf are each pseudo-label's class and
// probability; it returns which ones to keep.
func balancePseudo(cls []int, conf []float32, labelled []int) []bool {
	count := make([]int, len(labelled))
	for _, k := range cls {
		count[k]++
	}
	var ratios []float64
	for k, n := range labelled {
		if n > 0 {
			ratios = append(ratios, float64(count[k])/float64(n))
		}
	}
	keep := make([]bool, len(cls))
	if len(ratios) == 0 {
		return keep
	}
	slices.Sort(ratios)
	r := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		r = (ratios[len(ratios)/2-1] + r) / 2
	}
	byClass := make([][]int, len(labelled))
	for i, k := range cls {
		byClass[k] = append(byClass[k], i)
	}
	for k, idx := range byClass {
		limit := int(math.Round(r * float64(labelled[k])))
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(conf[b], conf[a]) })
		for _, i := range idx[:min(limit, len(idx))] {
			keep[i] = true
		}
	}
	return keep
}

// selfTrainText trains the teacher on trainD, pseudo-labels the unlabeled
// texts unl with it, trains the student on trainD plus the pseudo-labelled
// rows, and saves, tracks and prints the student with the self-training
// counts. setAside is the validation data that --dev-split left unused (nil
// otherwise): its texts are not pseudo-labelled either.
func (a *app) selfTrainText(cmd *cobra.Command, run textRun, members []textRun, trainD, valD, setAside *textdata.Data,
	classes, names []string, unl []textdata.Example, asJSON bool, trk trackFlags) error {
	start := time.Now()
	fmt.Fprintf(a.stderr, "self-training: training the teacher on %d labelled rows\n", len(trainD.Examples))
	teacher, err := a.fitTextModel(cmd, run, members, trainD, valD, classes, names, trackFlags{NoTrack: true}, nil)
	if err != nil {
		return err
	}
	what := "validation"
	if run.DevSplit > 0 {
		what = "dev"
	}
	teacherRes := map[string]any{"seconds": round3(teacher.secs)}
	if teacher.hasVal {
		teacherRes["accuracy"], teacherRes["macro_f1"] = teacher.result["accuracy"], teacher.result["macro_f1"]
		fmt.Fprintf(a.stderr, "teacher: %s accuracy %.2f%%, macro-F1 %.4f (%.1fs)\n", what,
			100*teacher.final["val_accuracy"], teacher.final["val_macro_f1"], teacher.secs)
	} else {
		fmt.Fprintf(a.stderr, "teacher: trained in %.1fs (no validation data)\n", teacher.secs)
	}

	cand, drops := candidateTexts(unl, trainD, valD, setAside)
	fmt.Fprintf(a.stderr, "teacher: labelling %d of %d unlabeled texts\n", len(cand), len(unl))
	var labelled []int
	if run.PseudoBalance {
		labelled = make([]int, len(classes))
		idx := map[string]int{}
		for k, c := range classes {
			idx[c] = k
		}
		for _, e := range trainD.Examples {
			labelled[idx[e.Label]]++
		}
	}
	pseudo, perClass, err := pseudoLabel(teacher, cand, classes, run.PseudoThreshold, labelled)
	if err != nil {
		return err
	}
	perName := map[string]int{}
	var parts []string
	for k, n := range perClass {
		perName[names[k]] = n
		parts = append(parts, fmt.Sprintf("%s %d", names[k], n))
	}
	fmt.Fprintf(a.stderr, "pseudo-labelled %d of %d unlabeled texts (per class %s) with probability >= %g; dropped %d overlapping a training, validation or dev text, %d duplicate, %d empty\n",
		len(pseudo), len(unl), strings.Join(parts, ", "), run.PseudoThreshold, drops.Overlap, drops.Duplicate, drops.Empty)

	aug := &textdata.Data{Examples: slices.Concat(trainD.Examples, pseudo), Skipped: trainD.Skipped, SkippedLines: trainD.SkippedLines}
	fmt.Fprintf(a.stderr, "self-training: training the student from scratch on %d rows (%d labelled + %d pseudo-labelled)\n",
		len(aug.Examples), len(trainD.Examples), len(pseudo))
	student, err := a.fitTextModel(cmd, run, members, aug, valD, classes, names, trk, map[string]string{
		"unlabeled": strings.Join(run.Unlabeled, ","), "pseudo_threshold": fmt.Sprint(run.PseudoThreshold),
		"pseudo_balance":  fmt.Sprint(run.PseudoBalance),
		"pseudo_labelled": fmt.Sprint(len(pseudo)), "labelled_examples": fmt.Sprint(len(trainD.Examples)),
	})
	if err != nil {
		return err
	}
	defer student.tr.close()
	total := time.Since(start).Seconds()

	self := map[string]any{
		"teacher": teacherRes, "unlabeled": len(unl), "pseudo_labelled": len(pseudo), "pseudo_per_class": perName,
		"dropped": drops, "pseudo_threshold": run.PseudoThreshold, "pseudo_balance": run.PseudoBalance,
	}
	maps.Copy(student.result, self)
	student.result["seconds"] = round3(total)
	maps.Copy(student.meta, self)
	student.meta["unlabeled_files"] = run.Unlabeled
	student.meta["self_training_seconds"] = round3(total)
	if acc, ok := teacherRes["accuracy"].(float64); ok {
		// Tracked next to the student's val_ metrics, for runs compare.
		student.final["teacher_val_accuracy"] = acc
		student.final["teacher_val_macro_f1"], _ = teacherRes["macro_f1"].(float64)
	}
	note := fmt.Sprintf("self-trained on %d of %d unlabeled texts (threshold %g) in %.1fs in all", len(pseudo), len(unl), run.PseudoThreshold, total)
	if acc, ok := teacherRes["accuracy"].(float64); ok {
		note += fmt.Sprintf("; the teacher's %s accuracy was %.2f%%", what, 100*acc)
	}
	student.note = note
	return a.saveTextFit(student, asJSON)
}
