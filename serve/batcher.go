package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/text"
	"github.com/deepgo/deepgo/textmodel"
)

// errClosed is returned by submit on a version that is being unloaded or
// replaced; infer then resolves the model again.
var errClosed = errors.New("model version closed")

// modelVersion is one loaded version of a model with its batcher.
type modelVersion struct {
	s          *Server
	name       string
	version    int64
	versionStr string
	dir        string
	pkg        *model.Package

	in        model.TensorSpec
	inShape   []int // signature shape of the input
	inInt     bool  // the input is int64
	batchable bool  // the input's first dimension is the batch (-1)
	out       model.TensorSpec
	outInt    bool
	probs     bool // a derived "probabilities" output exists

	// enc encodes BYTES text inputs of a text model package (nil: the
	// model takes no raw text); every text becomes one row of textLen ids.
	enc     *textmodel.TextEncoder
	textLen int

	maxBatch  int
	delay     time.Duration
	instances int
	mm        *modelMetrics

	mu     sync.RWMutex // guards closed and sends on ch
	closed bool
	ch     chan *job
	wg     sync.WaitGroup
}

// ProbabilitiesOutput is the name of the output derived from a "logits"
// output with a softmax over its last dimension.
const ProbabilitiesOutput = "probabilities"

func newModelVersion(s *Server, name string, version int64, pkg *model.Package) (*modelVersion, error) {
	sig := pkg.Signature
	if len(sig.Inputs) != 1 {
		return nil, errorf(ErrInvalid, "serve: model %q: the server runs models with exactly one input, the signature has %d", name, len(sig.Inputs))
	}
	mv := &modelVersion{
		s: s, name: name, version: version, versionStr: strconv.FormatInt(version, 10), pkg: pkg,
		in: sig.Inputs[0], inShape: sig.Inputs[0].Shape, out: sig.Outputs[0],
		maxBatch: s.opts.MaxBatch, delay: s.opts.MaxDelay, instances: s.opts.Instances,
	}
	mv.inInt = mv.in.DType == model.DTypeInt64
	mv.outInt = mv.out.DType == model.DTypeInt64
	mv.batchable = len(mv.inShape) > 0 && mv.inShape[0] == -1
	mv.probs = !mv.outInt && strings.EqualFold(mv.out.Name, "logits") && len(mv.out.Shape) >= 1
	if textmodel.IsTextModel(pkg.Preprocess) && mv.inInt && mv.batchable && len(mv.inShape) == 2 {
		enc, err := textmodel.NewTextEncoder(pkg.Preprocess)
		if err != nil {
			return nil, errorf(ErrInvalid, "serve: model %q: %v", name, err)
		}
		if l := enc.Options.MaxLen; l > 0 && (mv.inShape[1] == -1 || mv.inShape[1] == l) {
			enc.Options.Padding = text.PadMaxLength // every request's rows are l wide
			mv.enc, mv.textLen = enc, l
		}
	}
	mv.mm = s.metrics.forModel(name, mv.versionStr)
	return mv, nil
}

// start launches the batch workers.
func (mv *modelVersion) start() {
	mv.ch = make(chan *job, mv.s.opts.QueueSize)
	for i := 0; i < mv.instances; i++ {
		mv.wg.Add(1)
		go mv.worker()
	}
}

// close stops taking requests, lets the workers finish every queued
// request and waits for them.
func (mv *modelVersion) close() {
	mv.mu.Lock()
	if !mv.closed {
		mv.closed = true
		if mv.ch != nil {
			close(mv.ch)
		}
	}
	mv.mu.Unlock()
	mv.wg.Wait()
}

func (mv *modelVersion) ready() bool {
	mv.mu.RLock()
	defer mv.mu.RUnlock()
	return !mv.closed && mv.ch != nil
}

func dtypeToOIP(dt string) string {
	if dt == model.DTypeInt64 {
		return TypeInt64
	}
	return TypeFP32
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// metadata describes the model's signature. A text model package lists its
// int64 ids input only; it also takes raw texts as a BYTES input of shape
// [N] or [N, 1] under that name or TextInput (see prepareText).
func (mv *modelVersion) metadata() ModelMetadata {
	md := ModelMetadata{
		Name: mv.name, Versions: []string{mv.versionStr}, Platform: Platform,
		Inputs:  []TensorMetadata{{Name: mv.in.Name, Datatype: dtypeToOIP(mv.in.DType), Shape: shape64(mv.in.Shape)}},
		Outputs: []TensorMetadata{{Name: mv.out.Name, Datatype: dtypeToOIP(mv.out.DType), Shape: shape64(mv.out.Shape)}},
	}
	if mv.probs {
		md.Outputs = append(md.Outputs, TensorMetadata{Name: ProbabilitiesOutput, Datatype: TypeFP32, Shape: shape64(mv.out.Shape)})
	}
	return md
}

// job is one request's input waiting in a model's queue.
type job struct {
	ctx      context.Context
	deadline time.Time // zero: none
	f        []float32 // float input data, or
	i        []int64   // int input data
	shape    []int     // full input shape
	rows     int       // rows along the batch dimension (1 when not batchable)
	enq      time.Time
	done     chan jobResult

	shapeBuf [4]int    // backing of shape for inputs of rank ≤ 4
	fbuf     []float32 // converted float input, kept with the pooled job (up to maxJobBuf values)
}

// maxJobBuf bounds the float input buffer a pooled job keeps.
const maxJobBuf = 1 << 18

// jobPool recycles jobs (with their result channel) whose result was
// received.
var jobPool = sync.Pool{New: func() any { return &job{done: make(chan jobResult, 1)} }}

// newJob returns an empty job with its result channel.
func newJob() *job { return jobPool.Get().(*job) }

// release returns j to the pool. Call it only when no worker holds j: it
// was never queued, or its result was received from done.
func (j *job) release() {
	*j = job{done: j.done, fbuf: j.fbuf[:0]}
	jobPool.Put(j)
}

// jobResult is a job's share of the batch output.
type jobResult struct {
	out     *tensor.Tensor
	err     error
	queue   time.Duration
	compute time.Duration
	batch   int
}

// submit enqueues j without blocking: ErrQueueFull when the queue is full,
// errClosed when this version no longer takes requests.
func (mv *modelVersion) submit(j *job) error {
	mv.mu.RLock()
	defer mv.mu.RUnlock()
	if mv.closed {
		return errClosed
	}
	select {
	case mv.ch <- j:
		mv.mm.queued(1)
		return nil
	default:
		return ErrQueueFull
	}
}

// sameRows reports whether a and b can share a batch (equal non-batch dims).
func sameRows(a, b *job) bool {
	if len(a.shape) != len(b.shape) {
		return false
	}
	for i := 1; i < len(a.shape); i++ {
		if a.shape[i] != b.shape[i] {
			return false
		}
	}
	return true
}

// worker collects batches from the queue and runs them until the queue is
// closed and empty.
func (mv *modelVersion) worker() {
	defer mv.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var pending *job
	var in []float32 // the batch input buffer, reused
	for {
		first := pending
		pending = nil
		if first == nil {
			j, ok := <-mv.ch
			if !ok {
				return
			}
			mv.mm.queued(-1)
			first = j
		}
		batch, rows := []*job{first}, first.rows
		if mv.batchable && rows < mv.maxBatch {
			// take returns false when the batch is complete.
			take := func(j *job, ok bool) bool {
				if !ok {
					return false
				}
				mv.mm.queued(-1)
				if rows+j.rows > mv.maxBatch || !sameRows(first, j) {
					pending = j
					return false
				}
				batch = append(batch, j)
				rows += j.rows
				return rows < mv.maxBatch
			}
			wait := time.Until(first.enq.Add(mv.delay))
			armed := false
		collect:
			for {
				select {
				case j, ok := <-mv.ch:
					if !take(j, ok) {
						break collect
					}
					continue
				default:
				}
				if wait <= 0 {
					break
				}
				if !armed {
					timer.Reset(wait)
					armed = true
				}
				select {
				case j, ok := <-mv.ch:
					if !take(j, ok) {
						break collect
					}
				case <-timer.C:
					armed = false
					break collect
				}
			}
			if armed {
				timer.Stop()
			}
		}
		in = mv.run(batch, rows, in)
	}
}

// run executes one batch and hands every job its rows of the output. A
// float batch of several jobs is gathered into buf (grown as needed),
// which it returns for the next batch.
func (mv *modelVersion) run(batch []*job, rows int, buf []float32) []float32 {
	start := time.Now()
	live := batch[:0:0]
	for _, j := range batch {
		err := j.ctx.Err()
		if err == nil && !j.deadline.IsZero() && !start.Before(j.deadline) {
			err = context.DeadlineExceeded
		}
		if err != nil {
			rows -= j.rows
			j.done <- jobResult{err: err} // last use of j: its owner may reuse it
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return buf
	}
	var x *tensor.Tensor
	shape := append([]int(nil), live[0].shape...)
	if mv.batchable {
		shape[0] = rows
	}
	switch {
	case len(live) == 1 && mv.inInt:
		x = tensor.FromInt64(live[0].i, shape...)
	case len(live) == 1:
		x = tensor.FromSlice(live[0].f, shape...)
	case mv.inInt:
		data := make([]int64, 0, rows*len(live[0].i)/live[0].rows)
		for _, j := range live {
			data = append(data, j.i...)
		}
		x = tensor.FromInt64(data, shape...)
	default:
		data := slices.Grow(buf[:0], rows*len(live[0].f)/live[0].rows)
		for _, j := range live {
			data = append(data, j.f...)
		}
		buf = data
		x = tensor.FromSlice(data, shape...)
	}
	out, err := mv.pkg.Predict(x)
	compute := time.Since(start)
	mv.mm.nvExec.Inc()
	mv.mm.nvCount.Add(float64(rows))
	mv.mm.batchSize.Observe(float64(rows))
	mv.mm.compDur.Observe(compute.Seconds())
	mv.mm.nvInferUs.Add(float64(compute.Microseconds()))
	if err == nil {
		if os := out.Shape(); len(os) == 0 || (mv.batchable && os[0] != rows) {
			err = fmt.Errorf("model %q returned shape %v for a batch of %d", mv.name, os, rows)
		}
	}
	if err != nil {
		for _, j := range live {
			j.done <- jobResult{err: fmt.Errorf("model %q version %d: %v", mv.name, mv.version, err), compute: compute, queue: start.Sub(j.enq), batch: rows}
		}
		return buf
	}
	if obs := mv.s.obs.Load(); obs != nil {
		for _, fn := range *obs {
			fn(mv.name, mv.version, x, out)
		}
	}
	if x.DType() != tensor.Int64 && out.DType() != tensor.Int64 && overlaps(out.Data(), x.Data()) {
		// The output shares the input's memory (a reshaping model): the
		// input buffers are reused, the rows handed out must not be.
		out = tensor.FromSlice(slices.Clone(out.Data()), out.Shape()...)
	}
	oshape := out.Shape()
	per := 1
	for _, d := range oshape[1:] {
		per *= d
	}
	off := 0
	for _, j := range live {
		part := oshape
		r := j.rows
		if mv.batchable {
			part = append([]int{r}, oshape[1:]...)
		} else {
			r = oshape[0]
		}
		var t *tensor.Tensor
		if out.DType() == tensor.Int64 {
			t = tensor.FromInt64(out.Int64s()[off*per:(off+r)*per], part...)
		} else {
			t = tensor.FromSlice(out.Data()[off*per:(off+r)*per], part...)
		}
		off += r
		q := start.Sub(j.enq)
		mv.mm.queueDur.Observe(q.Seconds())
		mv.mm.nvQueueUs.Add(float64(q.Microseconds()))
		j.done <- jobResult{out: t, queue: q, compute: compute, batch: rows}
	}
	return buf
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b))*4 && b0 < a0+uintptr(len(a))*4
}
