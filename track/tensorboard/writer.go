// Package tensorboard writes TensorBoard event files in pure Go, with no
// dependency on TensorFlow: scalars, histograms and PNG images that a stock
// TensorBoard (`tensorboard --logdir runs`) shows.
//
// # File format
//
// An event file is a sequence of TFRecord records: a uint64 little-endian
// length, the masked CRC-32C of those 8 bytes, the data, and the masked
// CRC-32C of the data (MaskedCRC). Each record's data is a serialized
// tensorflow.Event protocol buffer; the first one carries file_version
// "brain.Event:2". The messages are encoded by hand with protowire using
// TensorBoard's field numbers, so no generated code is needed. Values are
// written in the legacy forms (Summary.Value simple_value, histo and image),
// which TensorBoard migrates to its scalars, histograms and images plugins
// when it loads them; they need no plugin metadata.
//
// A Writer creates one file named events.out.tfevents.<unix seconds>.
// <hostname>.<pid>.<n> in its directory; TensorBoard treats a directory as a
// run, so put each run in runs/<name>/ (see RunDir). Writes are buffered,
// flushed every Options.FlushInterval (TensorBoard tails files) and by Flush
// and Close. A Writer is safe for concurrent use.
//
// RecordReader reads the framing back for tools and tests, checking both
// CRCs of every record.
//
// Callback is a train.Callback that logs a training run (batch loss, epoch
// metrics, weight and gradient histograms); ConfusionMatrixImage and
// MisclassifiedGrid render images worth logging at the end of a run.
package tensorboard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the file_version of an event file's first record.
const FileVersion = "brain.Event:2"

// ErrClosed is returned by writes on a closed Writer.
var ErrClosed = errors.New("tensorboard: writer is closed")

// Options tunes a Writer.
type Options struct {
	// FlushInterval is how often buffered events are flushed to the file
	// in the background; 0 means 2 seconds, a negative value disables the
	// background flushing (Flush and Close still flush).
	FlushInterval time.Duration
	// Suffix is appended to the file name (e.g. ".v2").
	Suffix string
}

// Writer writes one TensorBoard event file. Its methods are safe for
// concurrent use. The first write error is sticky: later writes, Flush
// and Close return it.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	bw     *bufio.Writer
	path   string
	err    error
	closed bool
	dirty  bool

	stop chan struct{}
	done chan struct{}
}

// fileCounter makes file names unique within a process.
var fileCounter atomic.Int64

// NewWriter creates dir (and its parents) if needed and a new event file in
// it, with the default Options.
func NewWriter(dir string) (*Writer, error) { return NewWriterOptions(dir, Options{}) }

// NewWriterOptions is NewWriter with options.
func NewWriterOptions(dir string, opts Options) (*Writer, error) {
	if dir == "" {
		return nil, errors.New("tensorboard.NewWriter: empty directory")
	}
	if strings.ContainsAny(opts.Suffix, `/\`) {
		return nil, fmt.Errorf("tensorboard.NewWriter: suffix %q contains a path separator", opts.Suffix)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard.NewWriter: %w", err)
	}
	now := time.Now()
	host := sanitizeHost()
	var f *os.File
	var err error
	for range 100 {
		name := fmt.Sprintf("events.out.tfevents.%010d.%s.%d.%d%s", now.Unix(), host, os.Getpid(), fileCounter.Add(1), opts.Suffix)
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard.NewWriter: %w", err)
	}
	w := &Writer{f: f, bw: bufio.NewWriterSize(f, 64<<10), path: f.Name()}
	first := appendEvent(nil, wallTime(now), 0)
	first = protowire.AppendTag(first, 3, protowire.BytesType)
	first = protowire.AppendString(first, FileVersion)
	// source_metadata {writer: "deepgo"}
	var sm []byte
	sm = protowire.AppendTag(sm, 1, protowire.BytesType)
	sm = protowire.AppendString(sm, "deepgo")
	first = protowire.AppendTag(first, 10, protowire.BytesType)
	first = protowire.AppendBytes(first, sm)
	err = w.writeRecord(first)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		os.Remove(w.path)
		return nil, fmt.Errorf("tensorboard.NewWriter: %w", err)
	}
	interval := opts.FlushInterval
	if interval == 0 {
		interval = 2 * time.Second
	}
	if interval > 0 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.flushLoop(interval)
	}
	return w, nil
}

// RunDir returns root/name, the directory of a run named name under a log
// root such as "runs". It returns an error for names that are empty, "." or
// "..", or contain path separators or control characters.
func RunDir(root, name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsFunc(name, isControl) {
		return "", fmt.Errorf("tensorboard.RunDir: bad run name %q", name)
	}
	return filepath.Join(root, name), nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sanitizeHost returns the host name with characters outside [A-Za-z0-9._-]
// replaced by '_', so that it is safe in a file name.
func sanitizeHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, h)
}

// Path returns the event file's path.
func (w *Writer) Path() string { return w.path }

// Dir returns the directory holding the event file (the run directory).
func (w *Writer) Dir() string { return filepath.Dir(w.path) }

func (w *Writer) flushLoop(d time.Duration) {
	defer close(w.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.dirty && !w.closed && w.err == nil {
				w.flushLocked()
			}
			w.mu.Unlock()
		}
	}
}

func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// writeRecord frames and buffers one event.
func (w *Writer) writeRecord(event []byte) error {
	rec := appendRecord(make([]byte, 0, len(event)+16), event)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if _, err := w.bw.Write(rec); err != nil {
		w.err = fmt.Errorf("tensorboard: writing %s: %w", w.path, err)
		return w.err
	}
	w.dirty = true
	return nil
}

func (w *Writer) flushLocked() error {
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("tensorboard: writing %s: %w", w.path, err)
		return w.err
	}
	w.dirty = false
	return nil
}

// Flush writes the buffered events to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	return w.flushLocked()
}

// Close flushes the buffered events, syncs and closes the file and stops the
// background flushing. Closing a closed Writer returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.flushLocked()
	}
	if err == nil {
		if e := w.f.Sync(); e != nil {
			err = fmt.Errorf("tensorboard: syncing %s: %w", w.path, e)
		}
	}
	if e := w.f.Close(); e != nil && err == nil {
		err = fmt.Errorf("tensorboard: closing %s: %w", w.path, e)
	}
	w.mu.Unlock()
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}
	return err
}

// checkTag validates a tag: non-empty, valid UTF-8 (protobuf strings must
// be) and without control characters.
func checkTag(op, tag string) error {
	switch {
	case tag == "":
		return fmt.Errorf("tensorboard.%s: empty tag", op)
	case !utf8.ValidString(tag):
		return fmt.Errorf("tensorboard.%s: tag %q is not valid UTF-8", op, tag)
	case strings.ContainsFunc(tag, isControl):
		return fmt.Errorf("tensorboard.%s: tag %q contains control characters", op, tag)
	}
	return nil
}

// appendEvent appends an Event's wall_time and step fields.
func appendEvent(b []byte, wall float64, step int64) []byte {
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(wall))
	if step != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(step))
	}
	return b
}

// summaryEvent encodes Event{wall_time, step, summary: Summary{value: [v]}}
// where value is an encoded Summary.Value.
func summaryEvent(step int64, value []byte) []byte {
	var sum []byte
	sum = protowire.AppendTag(sum, 1, protowire.BytesType)
	sum = protowire.AppendBytes(sum, value)
	ev := appendEvent(make([]byte, 0, len(sum)+24), wallTime(time.Now()), step)
	ev = protowire.AppendTag(ev, 5, protowire.BytesType)
	return protowire.AppendBytes(ev, sum)
}

// valueHeader starts a Summary.Value with its tag.
func valueHeader(tag string, extra int) []byte {
	b := make([]byte, 0, len(tag)+extra+8)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendString(b, tag)
}

// Scalar logs value under tag at step, as a Summary.Value simple_value (a
// float32, so value is rounded to the nearest float32; NaN and ±Inf are
// kept).
func (w *Writer) Scalar(tag string, value float64, step int64) error {
	if err := checkTag("Scalar", tag); err != nil {
		return err
	}
	v := valueHeader(tag, 5)
	v = protowire.AppendTag(v, 2, protowire.Fixed32Type)
	v = protowire.AppendFixed32(v, math.Float32bits(float32(value)))
	return w.writeRecord(summaryEvent(step, v))
}

// Histogram logs the distribution of values under tag at step, as a
// HistogramProto over TensorFlow's default buckets (see NewHistogram).
func (w *Writer) Histogram(tag string, values []float32, step int64) error {
	if err := checkTag("Histogram", tag); err != nil {
		return err
	}
	return w.HistogramStats(tag, NewHistogram(values), step)
}

// HistogramStats logs a precomputed histogram under tag at step. The bucket
// slices must have the same length.
func (w *Writer) HistogramStats(tag string, h HistogramStats, step int64) error {
	if err := checkTag("HistogramStats", tag); err != nil {
		return err
	}
	if len(h.BucketLimit) != len(h.Bucket) {
		return fmt.Errorf("tensorboard.HistogramStats: %d bucket limits and %d buckets", len(h.BucketLimit), len(h.Bucket))
	}
	var hp []byte
	for i, f := range []float64{h.Min, h.Max, h.Num, h.Sum, h.SumSquares} {
		hp = protowire.AppendTag(hp, protowire.Number(i+1), protowire.Fixed64Type)
		hp = protowire.AppendFixed64(hp, math.Float64bits(f))
	}
	hp = appendPackedDoubles(hp, 6, h.BucketLimit)
	hp = appendPackedDoubles(hp, 7, h.Bucket)
	v := valueHeader(tag, len(hp)+4)
	v = protowire.AppendTag(v, 5, protowire.BytesType)
	v = protowire.AppendBytes(v, hp)
	return w.writeRecord(summaryEvent(step, v))
}

func appendPackedDoubles(b []byte, num protowire.Number, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(8*len(vs)))
	for _, v := range vs {
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	return b
}

// Colorspace returns TensorBoard's Image colorspace for img: 1 for
// grayscale, 3 for opaque color images, 4 for images with transparency
// (what image/png encodes them as).
func Colorspace(img image.Image) int {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return 1
	}
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return 3
	}
	return 4
}

// Image logs img under tag at step, PNG encoded with its height, width and
// colorspace.
func (w *Writer) Image(tag string, img image.Image, step int64) error {
	if err := checkTag("Image", tag); err != nil {
		return err
	}
	if img == nil {
		return errors.New("tensorboard.Image: nil image")
	}
	bounds := img.Bounds()
	if bounds.Empty() {
		return fmt.Errorf("tensorboard.Image: empty image %v", bounds)
	}
	if bounds.Dx() > math.MaxInt32 || bounds.Dy() > math.MaxInt32 {
		return fmt.Errorf("tensorboard.Image: image %v is too large", bounds)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("tensorboard.Image: %w", err)
	}
	var im []byte
	im = protowire.AppendTag(im, 1, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(bounds.Dy()))
	im = protowire.AppendTag(im, 2, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(bounds.Dx()))
	im = protowire.AppendTag(im, 3, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(Colorspace(img)))
	im = protowire.AppendTag(im, 4, protowire.BytesType)
	im = protowire.AppendBytes(im, buf.Bytes())
	v := valueHeader(tag, len(im)+8)
	v = protowire.AppendTag(v, 4, protowire.BytesType)
	v = protowire.AppendBytes(v, im)
	return w.writeRecord(summaryEvent(step, v))
}
