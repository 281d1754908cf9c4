package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/tensor"
)

// CSVOptions configures ReadCSV.
type CSVOptions struct {
	// Label names the label column; empty means the last column.
	Label string
	// Features names the feature columns, in the order they go into the
	// input vector; empty means every column except the label.
	Features []string
	// StringLabels maps label values to class indices in sorted order of the
	// distinct values (e.g. "negative" 0, "neutral" 1, "positive" 2) instead
	// of parsing them as integers.
	StringLabels bool
	// Comma is the field separator (default ',').
	Comma rune
}

// CSVData is a dataset read by ReadCSV.
type CSVData struct {
	// TensorDataset holds float32 inputs [N, F] and int64 labels [N].
	*TensorDataset
	// Features are the names of the feature columns in input order.
	Features []string
	// Label is the name of the label column.
	Label string
	// Classes are the distinct label strings (StringLabels only); class i
	// is Classes[i].
	Classes []string
}

// ReadCSV reads a CSV file with a header line into a dataset: the numeric
// feature columns become a float32 input vector per row and the label column
// an int64 target. Errors name the line, the column and the bad value.
func ReadCSV(r io.Reader, opt CSVOptions) (*CSVData, error) {
	cr := csv.NewReader(r)
	if opt.Comma != 0 {
		cr.Comma = opt.Comma
	}
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("csv: empty input, want a header line")
	}
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("csv: header names column %q twice", h)
		}
		col[h] = i
	}
	label := opt.Label
	if label == "" {
		label = header[len(header)-1]
	}
	li, ok := col[label]
	if !ok {
		return nil, fmt.Errorf("csv: no label column %q in header %v", label, header)
	}
	feats := opt.Features
	if len(feats) == 0 {
		for i, h := range header {
			if i != li {
				feats = append(feats, h)
			}
		}
	}
	if len(feats) == 0 {
		return nil, fmt.Errorf("csv: no feature columns besides label %q", label)
	}
	fi := make([]int, len(feats))
	for k, f := range feats {
		i, ok := col[f]
		if !ok {
			return nil, fmt.Errorf("csv: no feature column %q in header %v", f, header)
		}
		if i == li {
			return nil, fmt.Errorf("csv: column %q is both a feature and the label", f)
		}
		fi[k] = i
	}
	var xs []float32
	var ys []int64
	var raw []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for k, i := range fi {
			s := strings.TrimSpace(rec[i])
			v, err := strconv.ParseFloat(s, 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("csv: line %d, column %d %q: %q is not a finite number", line, i+1, feats[k], s)
			}
			xs = append(xs, float32(v))
		}
		s := strings.TrimSpace(rec[li])
		if opt.StringLabels {
			raw = append(raw, s)
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("csv: line %d, column %d %q: label %q is not a non-negative integer (set StringLabels for named classes)", line, li+1, label, s)
		}
		ys = append(ys, v)
	}
	out := &CSVData{Features: feats, Label: label}
	n := len(xs) / len(feats)
	if n == 0 {
		return nil, errors.New("csv: no data rows after the header")
	}
	if opt.StringLabels {
		classes := slices.Clone(raw)
		slices.Sort(classes)
		classes = slices.Compact(classes)
		idx := map[string]int64{}
		for i, c := range classes {
			idx[c] = int64(i)
		}
		for _, s := range raw {
			ys = append(ys, idx[s])
		}
		out.Classes = classes
	}
	out.TensorDataset = NewTensorDataset(tensor.FromSlice(xs, n, len(feats)), tensor.FromInt64(ys, n))
	return out, nil
}

// ReadCSVFile reads a CSV file from disk; see ReadCSV. Errors name the file.
func ReadCSVFile(path string, opt CSVOptions) (*CSVData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := ReadCSV(f, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
