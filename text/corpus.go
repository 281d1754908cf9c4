package text

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Column names PretrainCorpus looks for, in order of preference.
var (
	corpusColumns = []string{"text", "sentence", "text_a"}
	corpusFields  = []string{"text", "body", "sentence"}
)

// PretrainCorpus reads the texts of the given files, without labels, for
// self-supervised pretraining (e.g. masked language modelling). Formats by
// extension:
//
//   - .csv: a header line and the first column named "text", "sentence" or
//     "text_a";
//   - .tsv: the same with tab-separated, unquoted fields;
//   - .jsonl: one JSON object per line, the first string field named
//     "text", "body" or "sentence" (blank lines are skipped).
//
// Texts are trimmed; empty ones are dropped. The result is the union: a
// text seen before (in any file) is not repeated, and the order is that of
// first appearance, so the corpus is deterministic. Errors name the file
// and line.
func PretrainCorpus(paths ...string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, p := range paths {
		if err := readCorpusFile(p, add); err != nil {
			return nil, fmt.Errorf("text.PretrainCorpus: %w", err)
		}
	}
	return out, nil
}

// PretrainFiles returns the standard pretraining files under a datasets
// root (such as ../shared/datasets): the training splits of
// twitter_financial_news_sentiment and twitter_financial_news_topic, all of
// financial_phrasebank (it has no official split), and the Reuters-21578
// ModApte train and test news bodies. The validation splits of the twitter
// sets are left out so that pretraining never reads the texts the
// acceptance numbers are measured on; note that a split of
// financial_phrasebank made later is included in pretraining (text only,
// no labels). Files that do not exist are left out.
func PretrainFiles(root string) []string {
	rel := []string{
		"twitter_financial_news_sentiment/sent_train.csv",
		"twitter_financial_news_topic/topic_train.csv",
		"financial_phrasebank/financial_phrasebank.csv",
		"reuters21578_modapte/train.jsonl",
		"reuters21578_modapte/test.jsonl",
	}
	var out []string
	for _, r := range rel {
		p := filepath.Join(root, filepath.FromSlash(r))
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func readCorpusFile(path string, add func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return readCorpusRecords(path, NewRecordReader(f, ',', false), add)
	case ".tsv":
		return readCorpusRecords(path, NewRecordReader(f, '\t', true), add)
	case ".jsonl":
		return readCorpusJSONL(path, f, add)
	}
	return fmt.Errorf("%s: unknown extension (want .csv, .tsv or .jsonl)", path)
}

func pickColumn(path string, header []string) (int, error) {
	for _, want := range corpusColumns {
		for i, h := range header {
			if strings.TrimSpace(h) == want {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("%s: no text column (looked for %v) in header %v", path, corpusColumns, header)
}

// readCorpusRecords adds the text column of delimited records (the first
// is the header); rows too short to have it are passed over.
func readCorpusRecords(path string, rr *RecordReader, add func(string)) error {
	header, _, err := rr.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: empty file, want a header line", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	col, err := pickColumn(path, header)
	if err != nil {
		return err
	}
	for {
		rec, _, err := rr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if col < len(rec) {
			add(rec[col])
		}
	}
}

func readCorpusJSONL(path string, r io.Reader, add func(string)) error {
	err := EachJSONLine(r, func(b []byte, _ int) error {
		var obj map[string]json.RawMessage
		if jerr := json.Unmarshal(b, &obj); jerr != nil {
			return jerr
		}
		i := slices.IndexFunc(corpusFields, func(k string) bool { _, ok := obj[k]; return ok })
		if i < 0 {
			return fmt.Errorf("no text field (looked for %v)", corpusFields)
		}
		var s string
		if jerr := json.Unmarshal(obj[corpusFields[i]], &s); jerr != nil {
			return fmt.Errorf("field %q is not a string", corpusFields[i])
		}
		add(s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %w", path, err)
	}
	return nil
}

// RecordReader reads delimited records: CSV with quoting (encoding/csv;
// blank lines are skipped and records may differ in length) or, unquoted,
// every non-blank line split verbatim at each separator (as for TSV files
// whose fields contain '"').
type RecordReader struct {
	cr   *csv.Reader
	sc   *bufio.Scanner
	sep  string
	line int
}

// NewRecordReader reads records from r separated by comma, with CSV
// quoting unless noQuotes is set.
func NewRecordReader(r io.Reader, comma rune, noQuotes bool) *RecordReader {
	if noQuotes {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		return &RecordReader{sc: sc, sep: string(comma)}
	}
	cr := csv.NewReader(bufio.NewReader(r))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	return &RecordReader{cr: cr}
}

// Read returns the next record and the 1-based line it starts on, or
// io.EOF after the last one. Errors name the line.
func (rr *RecordReader) Read() ([]string, int, error) {
	if rr.cr != nil {
		rec, err := rr.cr.Read()
		if err != nil {
			return nil, 0, err
		}
		line, _ := rr.cr.FieldPos(0)
		return rec, line, nil
	}
	for rr.sc.Scan() {
		rr.line++
		l := strings.TrimSuffix(rr.sc.Text(), "\r")
		if l == "" {
			continue
		}
		return strings.Split(l, rr.sep), rr.line, nil
	}
	if err := rr.sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", rr.line+1, err)
	}
	return nil, 0, io.EOF
}

// EachJSONLine calls fn with every non-blank line of JSON Lines input and
// its 1-based line number, and stops at fn's first error. Errors, fn's
// included, start with "line N: ".
func EachJSONLine(r io.Reader, fn func(b []byte, line int) error) error {
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if ferr := fn(b, line); ferr != nil {
				return fmt.Errorf("line %d: %w", line, ferr)
			}
		}
		if err != nil {
			return nil
		}
	}
}
