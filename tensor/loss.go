package tensor

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropy is the cross entropy of int64 class targets [N] under
// the logits [N, C], as torch.nn.functional.cross_entropy without class
// weights or label smoothing: −log softmax(logits)[i, target[i]], summed
// (sum set) or averaged over the samples whose target is not ignoreIndex
// (NaN when every target is ignored, as PyTorch). It runs as one op, with
// the backward rule softmax − one-hot, which is faster and allocates far
// less than LogSoftmax followed by Gather and a reduction. It panics when
// the shapes do not fit or a target is out of range.
func SoftmaxCrossEntropy(logits, target *Tensor, ignoreIndex int64, sum bool) *Tensor {
	const op = "SoftmaxCrossEntropy"
	mustFloat(op, logits)
	if target.dtype != Int64 {
		panic(fmt.Sprintf("tensor.%s: target must be int64 class indices, got %v of shape %v", op, target.dtype, target.shape))
	}
	if len(logits.shape) != 2 || len(target.shape) != 1 || target.shape[0] != logits.shape[0] {
		panic(fmt.Sprintf("tensor.%s: logits shape %v and target shape %v do not fit (want [N, C] and [N])", op, logits.shape, target.shape))
	}
	n, c := logits.shape[0], logits.shape[1]
	tv := target.ints
	for _, t := range tv {
		if t != ignoreIndex && (t < 0 || t >= int64(c)) {
			panic(fmt.Sprintf("tensor.%s: target %d out of range for %d classes (logits shape %v)", op, t, c, logits.shape))
		}
	}
	a := arenaOf(logits)
	st := newSCEState(a, n)
	st.target, st.ignore = target, ignoreIndex
	// lse[i] = max + log Σ exp(x − max) of row i (0 for ignored rows).
	lse := st.lse
	var total float64
	count := 0
	x := logits.data
	for i := 0; i < n; i++ {
		if tv[i] == ignoreIndex {
			lse[i] = 0
			continue
		}
		row := x[i*c : (i+1)*c]
		m := float32(math.Inf(-1))
		for _, v := range row {
			m = max(m, v)
		}
		if math.IsInf(float64(m), -1) {
			m = 0 // all −Inf: keep the result +Inf rather than NaN
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v - m))
		}
		ls := math.Log(s)
		lse[i] = float64(m) + ls
		// As LogSoftmax: log p = (x − max) − log Σ, rounded to float32.
		total -= float64(float32(float64(row[tv[i]]-m) - ls))
		count++
	}
	denom := float32(1)
	if !sum {
		denom = float32(count)
	}
	st.denom = denom
	out := newOutIn(a, nil)
	out.data[0] = float32(total) / denom
	return recordFn(op, out, sceBackward, st, false, logits)
}

// sceState is what the backward rule of SoftmaxCrossEntropy needs besides
// the logits.
type sceState struct {
	target *Tensor
	ignore int64
	denom  float32
	lse    []float64
}

// newSCEState returns a state with room for n rows: from arena a (where
// it is reused after Reset) or new.
func newSCEState(a *Arena, n int) *sceState {
	var st *sceState
	if a != nil {
		if a.sceN == len(a.sces) {
			a.sces = append(a.sces, new(sceState))
		}
		st = a.sces[a.sceN]
		a.sceN++
	} else {
		st = new(sceState)
	}
	if cap(st.lse) < n {
		st.lse = make([]float64, n)
	}
	st.lse = st.lse[:n]
	return st
}

// sceBackward is the rule of SoftmaxCrossEntropy: softmax − one-hot.
func sceBackward(out, g *Tensor) []*Tensor {
	logits := out.ctx.inputs[0]
	st := out.ctx.aux.(*sceState)
	n, c := logits.shape[0], logits.shape[1]
	tv, x, ignoreIndex := st.target.ints, logits.data, st.ignore
	scale := g.data[0] / st.denom
	gx := newGrad(false, logits.shape...)
	for i := 0; i < n; i++ {
		gr := gx.data[i*c : (i+1)*c]
		if tv[i] == ignoreIndex {
			clear(gr)
			continue
		}
		row := x[i*c : (i+1)*c]
		l := st.lse[i]
		for j, v := range row {
			gr[j] = float32(math.Exp(float64(v)-l)) * scale
		}
		gr[tv[i]] -= scale
	}
	out.ctx.gin[0] = gx
	return out.ctx.gin[:1]
}
