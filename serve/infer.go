package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/textmodel"
)

// MaxElements bounds the number of elements of one request tensor.
const MaxElements = 1 << 28

// TextInput is the input name under which a text model package (one
// tokenize preprocessing op, as `deepgo train text` saves) also takes raw
// texts, besides its signature's input name: a BYTES tensor of shape [N]
// or [N, 1] holding N UTF-8 texts.
const TextInput = "text"

// infer validates req, queues it on the model's batcher and builds the
// response.
func (s *Server) infer(ctx context.Context, req *InferRequest) (InferResponse, error) {
	start := time.Now()
	if s.closed.Load() {
		return InferResponse{}, errorf(ErrUnavailable, "server is shutting down")
	}
	mv, err := s.repo.get(req.Model, req.Version)
	if err != nil {
		s.metrics.unknown.Inc()
		return InferResponse{}, err
	}
	// Options.RequestTimeout is a deadline carried by the job (the worker
	// drops an expired job) and a pooled timer on the wait below, rather
	// than a context per request.
	var deadline time.Time
	if s.opts.RequestTimeout > 0 {
		deadline = start.Add(s.opts.RequestTimeout)
	}
	var j *job
	for attempt := 0; ; attempt++ {
		j, err = mv.prepare(ctx, req, deadline)
		if err != nil {
			mv.mm.done(OutcomeInvalid, 0)
			return InferResponse{}, err
		}
		if err = mv.submit(j); !errors.Is(err, errClosed) {
			break
		}
		j.release() // not queued
		// The version was replaced or unloaded between lookup and submit:
		// resolve again (a reload swaps the new version in first).
		if mv, err = s.repo.get(req.Model, req.Version); err != nil {
			return InferResponse{}, err
		}
		if attempt > 100 {
			return InferResponse{}, errorf(ErrUnavailable, "model %q is being reloaded", req.Model)
		}
	}
	mm := mv.mm
	if err != nil {
		j.release() // not queued
		mm.done(OutcomeUnavailable, 0)
		return InferResponse{}, fmt.Errorf("model %q: %w", req.Model, err)
	}
	mm.inflight.Inc()
	defer mm.inflight.Dec()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := getTimer(time.Until(deadline))
		defer putTimer(t)
		timeout = t.C
	}
	var res jobResult
	select {
	case res = <-j.done:
		// The worker sent the job's only result and no longer holds it.
		j.release()
	case <-ctx.Done():
		// The worker may still answer this job: it is not reused.
		mm.done(OutcomeTimeout, 0)
		return InferResponse{}, fmt.Errorf("model %q: request not answered in time: %w", req.Model, ctx.Err())
	case <-timeout:
		// Likewise.
		mm.done(OutcomeTimeout, 0)
		return InferResponse{}, fmt.Errorf("model %q: request not answered in time: %w", req.Model, context.DeadlineExceeded)
	}
	if res.err != nil {
		ce := ctx.Err()
		if ce == nil && errors.Is(res.err, context.DeadlineExceeded) {
			ce = context.DeadlineExceeded
		}
		if ce != nil {
			mm.done(OutcomeTimeout, 0)
			return InferResponse{}, fmt.Errorf("model %q: request not answered in time: %w", req.Model, ce)
		}
		mm.done(OutcomeError, 0)
		return InferResponse{}, res.err
	}
	resp := InferResponse{Model: mv.name, Version: mv.versionStr, ID: req.ID}
	resp.Outputs, err = mv.outputs(req, res.out)
	if err != nil {
		mm.done(OutcomeInvalid, 0)
		return InferResponse{}, err
	}
	mm.done(OutcomeSuccess, time.Since(start))
	return resp, nil
}

// prepare validates the request's input against the signature and converts
// it into a job.
// The job carries ctx and deadline (zero: none); the worker drops it when
// either has passed before its batch runs.
func (mv *modelVersion) prepare(ctx context.Context, req *InferRequest, deadline time.Time) (*job, error) {
	if len(req.Inputs) != 1 {
		return nil, errorf(ErrInvalid, "model %q takes 1 input (%q), got %d", mv.name, mv.in.Name, len(req.Inputs))
	}
	in := &req.Inputs[0]
	if mv.enc != nil && in.Datatype == TypeBytes && (in.Name == mv.in.Name || in.Name == TextInput) {
		return mv.prepareText(ctx, req, in, deadline)
	}
	if in.Name != mv.in.Name {
		return nil, errorf(ErrInvalid, "model %q has no input %q (its input is %q)", mv.name, in.Name, mv.in.Name)
	}
	n, err := checkShape(in.Shape)
	if err != nil {
		return nil, errorf(ErrInvalid, "input %q: %v", in.Name, err)
	}
	j := newJob()
	shape := j.shapeBuf[:0]
	for _, d := range in.Shape {
		shape = append(shape, int(d))
	}
	if !mv.in.Matches(shape) {
		j.release()
		return nil, errorf(ErrInvalid, "input %q: shape %v does not match the model's %v", in.Name, in.Shape, mv.in.Shape)
	}
	j.ctx, j.deadline, j.shape, j.rows, j.enq = ctx, deadline, shape, 1, time.Now()
	if mv.batchable {
		j.rows = shape[0]
		if j.rows == 0 {
			j.release()
			return nil, errorf(ErrInvalid, "input %q: shape %v has an empty batch", in.Name, in.Shape)
		}
	}
	if mv.inInt {
		j.i, err = toInt64s(in, n)
	} else {
		j.f, err = toFloat32s(in, n, j.fbuf)
		if err == nil && in.FP32 == nil && cap(j.f) <= maxJobBuf {
			j.fbuf = j.f[:0] // converted into a buffer the pooled job keeps
		}
	}
	if err != nil {
		j.release()
		return nil, errorf(ErrInvalid, "input %q: %v", in.Name, err)
	}
	if err := mv.checkOutputs(req); err != nil {
		j.release()
		return nil, err
	}
	return j, nil
}

// checkOutputs checks the requested outputs against the model's.
func (mv *modelVersion) checkOutputs(req *InferRequest) error {
	for _, o := range req.Outputs {
		if o.Name != mv.out.Name && !(mv.probs && o.Name == ProbabilitiesOutput) {
			return errorf(ErrInvalid, "model %q has no output %q", mv.name, o.Name)
		}
		if o.Classification < 0 {
			return errorf(ErrInvalid, "output %q: classification count must be positive, got %d", o.Name, o.Classification)
		}
	}
	return nil
}

// prepareText encodes the BYTES texts of in (shape [N] or [N, 1], valid
// UTF-8 each) with the model's text encoder, as `deepgo predict` does
// (texts longer than textmodel.MaxTextBytes are cut, an empty text is all
// padding), padded to max_len (text.PadMaxLength), into a job of ids int64
// [N, textLen]: every text request has rows of the same width, so the
// batcher joins them like any other.
func (mv *modelVersion) prepareText(ctx context.Context, req *InferRequest, in *Tensor, deadline time.Time) (*job, error) {
	if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) {
		return nil, errorf(ErrInvalid, "input %q: texts (BYTES) take shape [N] or [N, 1], got %v", in.Name, in.Shape)
	}
	n := in.Shape[0]
	switch {
	case n <= 0:
		return nil, errorf(ErrInvalid, "input %q: shape %v has an empty batch", in.Name, in.Shape)
	case n > int64(MaxElements/mv.textLen):
		return nil, errorf(ErrInvalid, "input %q: %d texts are too many (at most %d)", in.Name, n, MaxElements/mv.textLen)
	}
	elems, err := in.textElements(int(n))
	if err != nil {
		return nil, errorf(ErrInvalid, "input %q: %v", in.Name, err)
	}
	if err := mv.checkOutputs(req); err != nil {
		return nil, err
	}
	texts := make([]string, n)
	for i, b := range elems {
		if !utf8.Valid(b) {
			return nil, errorf(ErrInvalid, "input %q: text %d is not valid UTF-8", in.Name, i)
		}
		// The encoder reads at most MaxTextBytes of a text; one more byte
		// lets it find the same rune boundary without copying the rest.
		texts[i] = string(b[:min(len(b), textmodel.MaxTextBytes+1)])
	}
	ids, err := mv.enc.Encode(texts)
	if err != nil {
		return nil, errorf(ErrInvalid, "input %q: %v", in.Name, err)
	}
	if l := ids.Size(1); l != mv.textLen {
		return nil, fmt.Errorf("model %q: the text encoder gave %d ids per text, not its max_len %d", mv.name, l, mv.textLen)
	}
	j := newJob()
	j.ctx, j.deadline, j.enq = ctx, deadline, time.Now()
	j.shape, j.rows, j.i = append(j.shapeBuf[:0], int(n), mv.textLen), int(n), ids.Int64s()
	return j, nil
}

// timerPool recycles the request timers of infer.
var timerPool sync.Pool

// getTimer returns a running timer that fires after d.
func getTimer(d time.Duration) *time.Timer {
	if t, ok := timerPool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t and recycles it (since Go 1.23 a stopped timer's
// channel holds no stale value).
func putTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

// checkShape checks that every dimension is non-negative and the element
// count stays under MaxElements, and returns the element count.
func checkShape(shape []int64) (int, error) {
	if len(shape) > 32 {
		return 0, fmt.Errorf("shape has %d dimensions, at most 32 are allowed", len(shape))
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d > MaxElements {
			return 0, fmt.Errorf("shape %v is too large (at most %d elements)", shape, MaxElements)
		}
		n *= d
		if n > MaxElements {
			return 0, fmt.Errorf("shape %v is too large (at most %d elements)", shape, MaxElements)
		}
	}
	return int(n), nil
}

// outputs builds the requested outputs from the job's output rows.
func (mv *modelVersion) outputs(req *InferRequest, out *tensor.Tensor) ([]Tensor, error) {
	wanted := req.Outputs
	if len(wanted) == 0 {
		var def [2]RequestedOutput
		def[0].Name = mv.out.Name
		wanted = def[:1]
		if mv.probs {
			def[1].Name = ProbabilitiesOutput
			wanted = def[:2]
		}
	}
	res := make([]Tensor, 0, len(wanted))
	os := out.Shape()
	shapes := make([]int64, len(os)*len(wanted)) // every output owns its shape, one allocation
	for i, w := range wanted {
		shape := shapes[i*len(os) : (i+1)*len(os) : (i+1)*len(os)]
		for k, d := range os {
			shape[k] = int64(d)
		}
		t := Tensor{Name: w.Name, Shape: shape}
		switch {
		case out.DType() == tensor.Int64:
			t.Datatype, t.Ints = TypeInt64, out.Int64s()
		case w.Name == ProbabilitiesOutput:
			t.Datatype, t.FP32 = TypeFP32, softmaxRows(out.Data(), lastDim(out.Shape()))
		default:
			t.Datatype, t.FP32 = TypeFP32, out.Data()
		}
		if w.Classification > 0 {
			c, err := mv.classify(t, w.Classification)
			if err != nil {
				return nil, err
			}
			t = c
		}
		if w.Binary {
			t.Parameters = map[string]any{"binary_data": true}
		}
		res = append(res, t)
	}
	return res, nil
}

func lastDim(shape []int) int {
	if len(shape) == 0 {
		return 1
	}
	return shape[len(shape)-1]
}

// softmaxRows applies a softmax to every run of k values.
func softmaxRows(x []float32, k int) []float32 {
	out := make([]float32, len(x))
	if k <= 0 {
		return out
	}
	for r := 0; r+k <= len(x); r += k {
		row := x[r : r+k]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		sum := 0.0
		for i, v := range row {
			e := math.Exp(float64(v) - m)
			out[r+i] = float32(e)
			sum += e
		}
		for i := range row {
			out[r+i] = float32(float64(out[r+i]) / sum)
		}
	}
	return out
}

// classify turns t into its top k classes per row as BYTES
// "value:index[:label]", Triton's classification extension.
func (mv *modelVersion) classify(t Tensor, k int) (Tensor, error) {
	if len(t.Shape) == 0 {
		return Tensor{}, errorf(ErrInvalid, "output %q: cannot classify a scalar", t.Name)
	}
	cls := int(t.Shape[len(t.Shape)-1])
	if k > cls {
		k = cls
	}
	vals := t.FP32
	if vals == nil {
		vals = make([]float32, len(t.Ints))
		for i, v := range t.Ints {
			vals[i] = float32(v)
		}
	}
	rows := 1
	if cls > 0 {
		rows = len(vals) / cls
	}
	labels := mv.pkg.Labels
	res := Tensor{Name: t.Name, Datatype: TypeBytes, Shape: append(append([]int64(nil), t.Shape[:len(t.Shape)-1]...), int64(k))}
	idx := make([]int, cls)
	for r := 0; r < rows; r++ {
		row := vals[r*cls : (r+1)*cls]
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		for _, c := range idx[:k] {
			s := strconv.FormatFloat(float64(row[c]), 'f', 6, 32) + ":" + strconv.Itoa(c)
			if c < len(labels) {
				s += ":" + labels[c]
			}
			res.Bytes = append(res.Bytes, []byte(s))
		}
	}
	return res, nil
}
