package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
)

// csvTable is a CSV file read whole: a header and string rows.
type csvTable struct {
	Path   string
	Header []string
	Rows   [][]string
	// Lines holds the line number of each row in the file (for errors).
	Lines []int
}

// readCSV reads a CSV file with a header line. Errors name the file and,
// where it applies, the line.
func readCSV(path string) (*csvTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file (want a CSV header line)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, h := range header {
		header[i] = strings.TrimSpace(h)
	}
	if i := firstDuplicate(header); i >= 0 {
		return nil, fmt.Errorf("%s: column %q appears twice in the header", path, header[i])
	}
	t := &csvTable{Path: path, Header: header}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		t.Rows = append(t.Rows, rec)
		t.Lines = append(t.Lines, line)
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%s: no data rows after the header", path)
	}
	return t, nil
}

func firstDuplicate(s []string) int {
	seen := map[string]bool{}
	for i, v := range s {
		if seen[v] {
			return i
		}
		seen[v] = true
	}
	return -1
}

// column returns the index of the named column, or -1.
func (t *csvTable) column(name string) int {
	return slices.Index(t.Header, name)
}

// missing reports whether a cell counts as a missing numeric value.
func missing(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "na", "nan", "null", "none", "?":
		return true
	}
	return false
}

func parseNumber(v string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// fitTabular derives a tabular model's preprocessing from training data.
// Every column but the label is a feature. A column is categorical if any
// of its (non-missing) values is not a number: it becomes a one_hot op over
// its sorted distinct values. The numeric columns are standardised with
// their mean and (population) standard deviation, in one standardize op
// that comes first. It also returns the class names: the distinct labels,
// sorted numerically when all are numbers and as strings otherwise.
func fitTabular(t *csvTable, label string) (ops []model.PreprocessOp, classes []string, err error) {
	li := t.column(label)
	if li < 0 {
		return nil, nil, usageError{fmt.Errorf("%s: no column %q (columns: %s)", t.Path, label, strings.Join(t.Header, ", "))}
	}
	if err := t.checkWidths(); err != nil {
		return nil, nil, err
	}
	std := model.PreprocessOp{Op: model.OpStandardize}
	var onehots []model.PreprocessOp
	for j, name := range t.Header {
		if j == li {
			continue
		}
		numeric := true
		var sum, sumSq float64
		n := 0
		for _, row := range t.Rows {
			v := row[j]
			if missing(v) {
				continue
			}
			f, ok := parseNumber(v)
			if !ok {
				numeric = false
				break
			}
			sum += f
			sumSq += f * f
			n++
		}
		if numeric && n > 0 {
			mean := sum / float64(n)
			sd := math.Sqrt(math.Max(sumSq/float64(n)-mean*mean, 0))
			if sd < 1e-12*math.Max(1, math.Abs(mean)) {
				sd = 1 // a constant column
			}
			std.Columns = append(std.Columns, name)
			std.Mean = append(std.Mean, mean)
			std.Std = append(std.Std, sd)
			continue
		}
		set := map[string]bool{}
		for _, row := range t.Rows {
			set[strings.TrimSpace(row[j])] = true
		}
		cats := make([]string, 0, len(set))
		for v := range set {
			cats = append(cats, v)
		}
		sort.Strings(cats)
		onehots = append(onehots, model.PreprocessOp{Op: model.OpOneHot, Column: name, Categories: cats})
	}
	if len(std.Columns) > 0 {
		ops = append(ops, std)
	}
	ops = append(ops, onehots...)
	if len(ops) == 0 {
		return nil, nil, fmt.Errorf("%s: no feature columns besides the label %q", t.Path, label)
	}
	set := map[string]bool{}
	for i, row := range t.Rows {
		v := strings.TrimSpace(row[li])
		if v == "" {
			return nil, nil, fmt.Errorf("%s: line %d: empty label in column %q", t.Path, t.Lines[i], label)
		}
		set[v] = true
	}
	classes = make([]string, 0, len(set))
	numeric := true
	for v := range set {
		classes = append(classes, v)
		if _, ok := parseNumber(v); !ok {
			numeric = false
		}
	}
	sort.Slice(classes, func(a, b int) bool {
		if numeric {
			x, _ := parseNumber(classes[a])
			y, _ := parseNumber(classes[b])
			if x != y {
				return x < y
			}
		}
		return classes[a] < classes[b]
	})
	if len(classes) < 2 {
		return nil, nil, fmt.Errorf("%s: label column %q has only one class %q", t.Path, label, classes[0])
	}
	return ops, classes, nil
}

// checkWidths checks that every row has as many fields as the header.
func (t *csvTable) checkWidths() error {
	for i, row := range t.Rows {
		if len(row) != len(t.Header) {
			return fmt.Errorf("%s: line %d: %d fields, the header has %d", t.Path, t.Lines[i], len(row), len(t.Header))
		}
	}
	return nil
}

// isTabular reports whether a package's preprocessing is tabular (a
// non-empty list of standardize and one_hot ops).
func isTabular(ops []model.PreprocessOp) bool {
	if len(ops) == 0 {
		return false
	}
	for _, op := range ops {
		if !op.IsTabular() {
			return false
		}
	}
	return true
}

// encodeRows turns the rows of t into model inputs [N, features] with the
// package's tabular ops. Columns are found by name, so their order in the
// file does not matter and extra columns (such as the label) are ignored.
// A missing numeric value is replaced by the column's training mean.
func encodeRows(ops []model.PreprocessOp, t *csvTable) (*tensor.Tensor, error) {
	if err := t.checkWidths(); err != nil {
		return nil, err
	}
	width, err := model.TabularWidth(ops)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		names := op.Columns
		if op.Op == model.OpOneHot {
			names = []string{op.Column}
		}
		for _, c := range names {
			if t.column(c) < 0 {
				return nil, fmt.Errorf("%s: no column %q, which the model needs", t.Path, c)
			}
		}
	}
	means := map[string]string{}
	for _, op := range ops {
		if op.Op == model.OpStandardize {
			for i, c := range op.Columns {
				means[c] = strconv.FormatFloat(op.Mean[i], 'g', -1, 64)
			}
		}
	}
	x := make([]float32, 0, width*len(t.Rows))
	rec := make(map[string]string, len(t.Header))
	for r, row := range t.Rows {
		for j, h := range t.Header {
			v := row[j]
			if m, ok := means[h]; ok && missing(v) {
				v = m
			}
			rec[h] = v
		}
		f, err := model.Tabular(ops, rec)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %v", t.Path, t.Lines[r], err)
		}
		x = append(x, f...)
	}
	return tensor.FromSlice(x, len(t.Rows), width), nil
}

// encodeLabels returns the class index of every row's label (column label)
// among classes. A label not among the classes is an error.
func encodeLabels(t *csvTable, label string, classes []string) ([]int64, error) {
	li := t.column(label)
	if li < 0 {
		return nil, fmt.Errorf("%s: no label column %q", t.Path, label)
	}
	idx := make(map[string]int64, len(classes))
	for i, c := range classes {
		idx[c] = int64(i)
	}
	y := make([]int64, len(t.Rows))
	for r, row := range t.Rows {
		v := strings.TrimSpace(row[li])
		c, ok := idx[v]
		if !ok {
			return nil, fmt.Errorf("%s: line %d: label %q is not one of the model's classes (%s)", t.Path, t.Lines[r], v, strings.Join(classes, ", "))
		}
		y[r] = c
	}
	return y, nil
}
