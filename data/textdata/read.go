// Package textdata reads text-classification data (CSV, TSV and JSON
// Lines) and turns it into token-id datasets for training.
//
// # Reading
//
// ReadCSV, ReadJSONL and ReadFile return Data: one Example (text, label
// string, line number) per row. The text and label are taken from named
// columns (CSV/TSV header) or fields (JSONL); Options.Keep keeps more of
// them, e.g. the agreement level of financial_phrasebank, for filtering
// with Data.Filter.
//
// Bad input is handled as follows:
//
//   - a CSV row with a different number of fields than the header (a
//     ragged row) is an error naming the file and line;
//   - a row whose label is empty or missing (JSONL: absent or null) is
//     skipped; Data.Skipped counts them and Data.SkippedLines lists their
//     lines, so callers can report "skipped 3 rows without a label";
//   - labels are trimmed of surrounding spaces ("    0" reads as "0");
//   - an empty text is kept (it encodes to an empty or [CLS] [SEP]
//     sequence); invalid UTF-8 is left for the tokenizer, which replaces it
//     with U+FFFD.
//
// # Labels and datasets
//
// Classes builds the sorted label set (numerically when every label is an
// integer, so "0".."19" keep their meaning), and NewDataset tokenizes every
// example once into int64 ids with an int64 class target. A Dataset
// satisfies data.Dataset. data.Loader stacks examples of equal shape only,
// so either set DatasetOptions.FixedLen (every example padded to MaxLen,
// which works with data.Loader and train.Fit; the attention mask is then
// ids != text.PadID) or use Dataset.Batches, which pads each batch to its
// longest example and shuffles with the same seeded order as data.Loader.
package textdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/deepgo/deepgo/text"
)

// Options selects the columns (CSV/TSV) or fields (JSONL) to read.
type Options struct {
	// TextCol names the text column or field (default "text").
	TextCol string
	// LabelCol names the label column or field (default "label").
	LabelCol string
	// Unlabeled reads texts only: LabelCol is ignored and no row is
	// skipped.
	Unlabeled bool
	// Keep names further columns or fields whose values are kept, in
	// this order, in Example.Extra.
	Keep []string
	// Comma is the CSV field separator (default ','; ReadFile uses '\t'
	// for .tsv files).
	Comma rune
	// NoQuotes reads fields verbatim, without CSV quoting: each line is
	// split at every Comma. ReadFile sets it for .tsv files, whose fields
	// may contain '"' (as in chnsenticorp).
	NoQuotes bool
}

func (o *Options) defaults() {
	if o.TextCol == "" {
		o.TextCol = "text"
	}
	if o.LabelCol == "" {
		o.LabelCol = "label"
	}
	if o.Comma == 0 {
		o.Comma = ','
	}
}

// Example is one row.
type Example struct {
	// Text is the text, as read.
	Text string
	// Label is the trimmed label ("" when reading Unlabeled).
	Label string
	// Line is the 1-based line of the row in the file (its first line
	// for a CSV record spanning lines).
	Line int
	// Extra holds the values of Options.Keep, in order ("" where a JSONL
	// field is missing).
	Extra []string
}

// Data is the content of one file.
type Data struct {
	// Examples are the rows read, in file order.
	Examples []Example
	// Skipped is the number of rows left out because their label was
	// empty or missing.
	Skipped int
	// SkippedLines are the lines of those rows.
	SkippedLines []int
}

// Texts returns the texts of the examples.
func (d *Data) Texts() []string {
	out := make([]string, len(d.Examples))
	for i, e := range d.Examples {
		out[i] = e.Text
	}
	return out
}

// Labels returns the labels of the examples.
func (d *Data) Labels() []string {
	out := make([]string, len(d.Examples))
	for i, e := range d.Examples {
		out[i] = e.Label
	}
	return out
}

// Filter returns the examples for which keep returns true (Skipped is
// carried over unchanged).
func (d *Data) Filter(keep func(Example) bool) *Data {
	out := &Data{Skipped: d.Skipped, SkippedLines: d.SkippedLines}
	for _, e := range d.Examples {
		if keep(e) {
			out.Examples = append(out.Examples, e)
		}
	}
	return out
}

// ReadFile reads a .csv, .tsv or .jsonl (also .ndjson) file; for .tsv it
// uses a tab separator and no quoting unless opt sets Comma. Errors start
// with the path.
func ReadFile(path string, opt Options) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("textdata: %w", err)
	}
	defer f.Close()
	var d *Data
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		d, err = readCSV(f, opt)
	case ".tsv":
		if opt.Comma == 0 {
			opt.Comma, opt.NoQuotes = '\t', true
		}
		d, err = readCSV(f, opt)
	case ".jsonl", ".ndjson":
		d, err = readJSONL(f, opt)
	default:
		return nil, fmt.Errorf("textdata: %s: unknown extension (want .csv, .tsv or .jsonl)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("textdata: %s: %w", path, err)
	}
	return d, nil
}

// ReadCSV reads delimited text with a header line (see Options and the
// package documentation for the handling of bad rows).
func ReadCSV(r io.Reader, opt Options) (*Data, error) {
	d, err := readCSV(r, opt)
	if err != nil {
		return nil, fmt.Errorf("textdata: %w", err)
	}
	return d, nil
}

func readCSV(r io.Reader, opt Options) (*Data, error) {
	opt.defaults()
	rows := text.NewRecordReader(r, opt.Comma, opt.NoQuotes)
	header, _, err := rows.Read()
	if err == io.EOF {
		return nil, errors.New("empty input, want a header line")
	}
	if err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("header names column %q twice", h)
		}
		col[h] = i
		header[i] = h
	}
	find := func(name, what string) (int, error) {
		i, ok := col[name]
		if !ok {
			return 0, fmt.Errorf("no %s column %q in header %q", what, name, header)
		}
		return i, nil
	}
	ti, err := find(opt.TextCol, "text")
	if err != nil {
		return nil, err
	}
	li := -1
	if !opt.Unlabeled {
		if li, err = find(opt.LabelCol, "label"); err != nil {
			return nil, err
		}
	}
	keep := make([]int, len(opt.Keep))
	for k, name := range opt.Keep {
		if keep[k], err = find(name, "kept"); err != nil {
			return nil, err
		}
	}
	d := &Data{}
	for {
		rec, line, err := rows.Read()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w", err)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("line %d: ragged row with %d fields, the header has %d", line, len(rec), len(header))
		}
		ex := Example{Text: rec[ti], Line: line}
		if li >= 0 {
			ex.Label = strings.TrimSpace(rec[li])
			if ex.Label == "" {
				d.Skipped++
				d.SkippedLines = append(d.SkippedLines, line)
				continue
			}
		}
		if len(keep) > 0 {
			ex.Extra = make([]string, len(keep))
			for k, i := range keep {
				ex.Extra[k] = rec[i]
			}
		}
		d.Examples = append(d.Examples, ex)
	}
}

// ReadJSONL reads JSON Lines: one object per line, blank lines ignored.
// The text field must be a string (a missing text field is an error naming
// the line). The label may be a string, number or boolean; an absent, null
// or empty label skips the row; arrays and objects (multi-label data) are
// an error.
func ReadJSONL(r io.Reader, opt Options) (*Data, error) {
	d, err := readJSONL(r, opt)
	if err != nil {
		return nil, fmt.Errorf("textdata: %w", err)
	}
	return d, nil
}

func readJSONL(r io.Reader, opt Options) (*Data, error) {
	opt.defaults()
	d := &Data{}
	err := text.EachJSONLine(r, func(b []byte, line int) error {
		ex, ok, err := jsonExample(b, line, opt)
		if err != nil {
			return err
		}
		if ok {
			d.Examples = append(d.Examples, ex)
		} else {
			d.Skipped++
			d.SkippedLines = append(d.SkippedLines, line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func jsonExample(b []byte, line int, opt Options) (Example, bool, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return Example{}, false, fmt.Errorf("not a JSON object: %w", err)
	}
	ex := Example{Line: line}
	raw, ok := obj[opt.TextCol]
	if !ok {
		return ex, false, fmt.Errorf("no text field %q", opt.TextCol)
	}
	if err := json.Unmarshal(raw, &ex.Text); err != nil {
		return ex, false, fmt.Errorf("text field %q is not a string", opt.TextCol)
	}
	if !opt.Unlabeled {
		lab, err := scalar(obj[opt.LabelCol])
		if err != nil {
			return ex, false, fmt.Errorf("label field %q: %w", opt.LabelCol, err)
		}
		ex.Label = strings.TrimSpace(lab)
		if ex.Label == "" {
			return ex, false, nil
		}
	}
	if len(opt.Keep) > 0 {
		ex.Extra = make([]string, len(opt.Keep))
		for k, name := range opt.Keep {
			v, err := scalar(obj[name])
			if err != nil {
				return ex, false, fmt.Errorf("field %q: %w", name, err)
			}
			ex.Extra[k] = v
		}
	}
	return ex, true, nil
}

// scalar renders a JSON string, number or boolean as a string; absent and
// null give "".
func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '[', '{':
		return "", errors.New("is an array or object; want a string, number or boolean (multi-label data is not supported)")
	}
	return string(raw), nil
}
