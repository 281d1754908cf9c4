package train

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
)

// openLog opens path for the loggers: truncated for a fresh run, appended to
// for a resumed one or when appendMode is set. It reports whether the file
// is empty.
func openLog(op, path string, appendMode bool) (*os.File, bool, error) {
	if path == "" {
		return nil, false, fmt.Errorf("train.%s: Path is empty", op)
	}
	flag := os.O_WRONLY | os.O_CREATE
	if appendMode {
		flag |= os.O_APPEND
	} else {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("train.%s: %w", op, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("train.%s: %w", op, err)
	}
	return f, st.Size() == 0, nil
}

// CSVLogger writes one CSV row per epoch to Path: the columns are epoch
// (0-based), every log key in History.Names order, lr and seconds; a value
// missing from an epoch is an empty cell. Rows are written as each epoch
// ends. A resumed run appends to the file.
type CSVLogger struct {
	// Path is the CSV file.
	Path string
	// Append keeps existing rows on a fresh run too.
	Append bool

	BaseCallback
	f *os.File
	w *csv.Writer
}

// NewCSVLogger returns a CSVLogger writing to path.
func NewCSVLogger(path string) *CSVLogger { return &CSVLogger{Path: path} }

// OnTrainBegin opens the file and writes the header if it is empty.
func (c *CSVLogger) OnTrainBegin(s *State) error {
	f, empty, err := openLog("CSVLogger", c.Path, c.Append || s.Resumed)
	if err != nil {
		return err
	}
	c.f, c.w = f, csv.NewWriter(f)
	if empty {
		head := append(append([]string{"epoch"}, s.Names()...), "lr", "seconds")
		c.w.Write(head)
		c.w.Flush()
		if err := c.w.Error(); err != nil {
			return fmt.Errorf("train.CSVLogger: %s: %w", c.Path, err)
		}
	}
	return nil
}

// OnEpochEnd writes the epoch's row.
func (c *CSVLogger) OnEpochEnd(s *State) error {
	e := s.History.Epochs[len(s.History.Epochs)-1]
	row := []string{strconv.Itoa(e.Epoch)}
	for _, n := range s.Names() {
		v, ok := e.Logs[n]
		cell := ""
		if ok {
			cell = strconv.FormatFloat(v, 'g', -1, 64)
		}
		row = append(row, cell)
	}
	row = append(row, strconv.FormatFloat(e.LR, 'g', -1, 64), strconv.FormatFloat(e.Seconds, 'f', 3, 64))
	c.w.Write(row)
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("train.CSVLogger: %s: %w", c.Path, err)
	}
	return nil
}

// OnTrainEnd closes the file.
func (c *CSVLogger) OnTrainEnd(*State) error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	if err != nil {
		return fmt.Errorf("train.CSVLogger: %w", err)
	}
	return nil
}

// JSONLLogger writes one JSON object per epoch (JSON Lines) to Path:
// {"epoch":0,"loss":...,"val_loss":...,"lr":...,"seconds":...}, keys in
// History.Names order; NaN and infinite values are written as null. A
// resumed run appends to the file.
type JSONLLogger struct {
	// Path is the JSONL file.
	Path string
	// Append keeps existing lines on a fresh run too.
	Append bool

	BaseCallback
	f *os.File
}

// NewJSONLLogger returns a JSONLLogger writing to path.
func NewJSONLLogger(path string) *JSONLLogger { return &JSONLLogger{Path: path} }

// OnTrainBegin opens the file.
func (j *JSONLLogger) OnTrainBegin(s *State) error {
	f, _, err := openLog("JSONLLogger", j.Path, j.Append || s.Resumed)
	if err != nil {
		return err
	}
	j.f = f
	return nil
}

func jsonNumber(b *bytes.Buffer, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		b.WriteString("null")
		return
	}
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
}

// OnEpochEnd writes the epoch's line.
func (j *JSONLLogger) OnEpochEnd(s *State) error {
	e := s.History.Epochs[len(s.History.Epochs)-1]
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"epoch":%d`, e.Epoch)
	for _, n := range s.Names() {
		v, ok := e.Logs[n]
		if !ok {
			continue
		}
		key, _ := json.Marshal(n)
		b.WriteByte(',')
		b.Write(key)
		b.WriteByte(':')
		jsonNumber(&b, v)
	}
	b.WriteString(`,"lr":`)
	jsonNumber(&b, e.LR)
	b.WriteString(`,"seconds":`)
	jsonNumber(&b, e.Seconds)
	b.WriteString("}\n")
	if _, err := j.f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("train.JSONLLogger: %w", err)
	}
	return nil
}

// OnTrainEnd closes the file.
func (j *JSONLLogger) OnTrainEnd(*State) error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if err != nil {
		return fmt.Errorf("train.JSONLLogger: %w", err)
	}
	return nil
}
