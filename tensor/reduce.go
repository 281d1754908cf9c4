package tensor

import "fmt"

// checkAxis maps a possibly negative axis of shape to [0, rank), panicking
// with the op name and shape when it is out of range. A 0-d tensor accepts
// axis 0 or -1 (as PyTorch does) and maps it to 0.
func checkAxis(op string, axis int, shape []int) int {
	rank := len(shape)
	if rank == 0 && (axis == 0 || axis == -1) {
		return 0
	}
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		panic(fmt.Sprintf("tensor.%s: axis %d out of range for shape %v", op, axis, shape))
	}
	return a
}

// reducePlan describes a reduction of shape over a set of axes. When the
// reduced axes (ignoring size-1 axes) form one contiguous run, input index
// (o*red+r)*inner+i folds into output index o*inner+i; otherwise idx maps
// every input index to its output index.
type reducePlan struct {
	shape             []int // input shape
	out               []int // output shape
	n                 int   // input elements folded into each output element
	outer, red, inner int
	idx               []int32
}

func planReduce(op string, shape []int, keepdim bool, axes []int) *reducePlan {
	rank := len(shape)
	if rank == 0 {
		for _, ax := range axes {
			checkAxis(op, ax, shape)
		}
		return &reducePlan{shape: shape, out: []int{}, n: 1, outer: 1, red: 1, inner: 1}
	}
	reduced := make([]bool, rank)
	if len(axes) == 0 {
		for i := range reduced {
			reduced[i] = true
		}
	}
	for _, ax := range axes {
		a := checkAxis(op, ax, shape)
		if reduced[a] {
			panic(fmt.Sprintf("tensor.%s: axis %d appears twice in axes %v for shape %v", op, ax, axes, shape))
		}
		reduced[a] = true
	}
	p := &reducePlan{shape: shape, n: 1, outer: 1, red: 1, inner: 1}
	keep := make([]int, rank)
	// phase 0: kept axes before the run, 1: inside the run, 2: after it.
	phase, contiguous := 0, true
	for i, d := range shape {
		keep[i] = d
		if reduced[i] {
			keep[i] = 1
			p.n *= d
		} else {
			p.out = append(p.out, d)
		}
		if d == 1 {
			continue
		}
		switch {
		case reduced[i] && phase == 2:
			contiguous = false
		case reduced[i]:
			phase = 1
			p.red *= d
		case phase == 0:
			p.outer *= d
		default:
			phase = 2
			p.inner *= d
		}
	}
	if keepdim {
		p.out = keep
	} else if p.out == nil {
		p.out = []int{}
	}
	if !contiguous {
		p.idx = broadcastIndex(keep, shape)
	}
	return p
}

// reduceSum adds the input values x into one float64 per output element.
func reduceSum[T float32 | float64](p *reducePlan, x []T) []float64 {
	acc := make([]float64, numel(p.out))
	switch {
	case p.idx != nil:
		for k, v := range x {
			acc[p.idx[k]] += float64(v)
		}
	case p.inner == 1:
		for o := range p.outer {
			var s float64
			for _, v := range x[o*p.red : (o+1)*p.red] {
				s += float64(v)
			}
			acc[o] = s
		}
	default:
		for o := range p.outer {
			dst := acc[o*p.inner : (o+1)*p.inner]
			for r := range p.red {
				for i, v := range x[(o*p.red+r)*p.inner:][:p.inner] {
					dst[i] += float64(v)
				}
			}
		}
	}
	return acc
}

// reduceExpand broadcasts the output-shaped values v back to the input shape.
func reduceExpand[T float32 | float64](p *reducePlan, v []T) []T {
	dst := make([]T, numel(p.shape))
	if p.idx != nil {
		for k := range dst {
			dst[k] = v[p.idx[k]]
		}
		return dst
	}
	for o := range p.outer {
		src := v[o*p.inner : (o+1)*p.inner]
		for r := range p.red {
			copy(dst[(o*p.red+r)*p.inner:][:p.inner], src)
		}
	}
	return dst
}

// Sum returns the sum of all elements as a 0-d tensor.
func Sum(a *Tensor) *Tensor {
	mustFloat("Sum", a)
	var s float64
	for _, v := range a.data {
		s += float64(v)
	}
	out := Scalar(float32(s))
	return record("Sum", out, func(g *Tensor) []*Tensor {
		return []*Tensor{Full(g.data[0], a.shape...)}
	}, a)
}

// sumAxes sums a over axes and multiplies by scale (1 for a sum, 1/N for a mean).
func sumAxes(op string, a *Tensor, keepdim bool, axes []int, mean bool) *Tensor {
	mustFloat(op, a)
	p := planReduce(op, a.shape, keepdim, axes)
	scale := 1.0
	if mean {
		scale = 1 / float64(p.n)
	}
	acc := reduceSum(p, a.data)
	out := Zeros(p.out...)
	for i, s := range acc {
		out.data[i] = float32(s * scale)
	}
	return record(op, out, func(g *Tensor) []*Tensor {
		ga := &Tensor{shape: cloneShape(a.shape), data: reduceExpand(p, g.data)}
		if mean {
			s := float32(scale)
			for i := range ga.data {
				ga.data[i] *= s
			}
		}
		return []*Tensor{ga}
	}, a)
}

// SumAxes sums over the given axes (all if none), keeping them as size 1 if
// keepdim. Negative axes count from the end; repeated axes panic.
func SumAxes(a *Tensor, keepdim bool, axes ...int) *Tensor {
	return sumAxes("SumAxes", a, keepdim, axes, false)
}

// Mean returns the mean of all elements as a 0-d tensor (NaN when a is empty).
func Mean(a *Tensor) *Tensor { return sumAxes("Mean", a, false, nil, true) }

// MeanAxes averages over the given axes (all if none), keeping them as size 1
// if keepdim.
func MeanAxes(a *Tensor, keepdim bool, axes ...int) *Tensor {
	return sumAxes("MeanAxes", a, keepdim, axes, true)
}

// Var returns the variance over the given axes (all if none); unbiased divides
// by N-1 (torch.var's default), otherwise by N. Like PyTorch it yields NaN or
// Inf when the divisor is not positive.
func Var(a *Tensor, unbiased, keepdim bool, axes ...int) *Tensor {
	mustFloat("Var", a)
	p := planReduce("Var", a.shape, keepdim, axes)
	mean := reduceSum(p, a.data)
	for i := range mean {
		mean[i] /= float64(p.n)
	}
	dev := reduceExpand(p, mean) // becomes x - mean
	for k, v := range a.data {
		dev[k] = float64(v) - dev[k]
	}
	sq := make([]float64, len(dev))
	for k, d := range dev {
		sq[k] = d * d
	}
	denom := float64(p.n)
	if unbiased {
		denom--
	}
	acc := reduceSum(p, sq)
	out := Zeros(p.out...)
	for i, s := range acc {
		out.data[i] = float32(s / denom)
	}
	return record("Var", out, func(g *Tensor) []*Tensor {
		ge := reduceExpand(p, g.data)
		for k, d := range dev {
			ge[k] = float32(float64(ge[k]) * 2 * d / denom)
		}
		return []*Tensor{{shape: cloneShape(a.shape), data: ge}}
	}, a)
}

// axisSplit views shape as [outer, n, inner] around axis and returns the
// output shape of a reduction over it.
func axisSplit(op string, shape []int, axis int, keepdim bool) (outer, n, inner int, out []int) {
	ax := checkAxis(op, axis, shape)
	if len(shape) == 0 {
		return 1, 1, 1, []int{}
	}
	outer, n, inner = numel(shape[:ax]), shape[ax], numel(shape[ax+1:])
	out = make([]int, 0, len(shape))
	out = append(out, shape[:ax]...)
	if keepdim {
		out = append(out, 1)
	}
	out = append(out, shape[ax+1:]...)
	return outer, n, inner, out
}

// argExtreme finds the value and the first index of the maximum (or minimum)
// along axis. NaN counts as larger and smaller than everything, so the first
// NaN wins, as in PyTorch.
func argExtreme(op string, a *Tensor, axis int, keepdim, isMax bool) (vals []float32, idx []int64, outer, n, inner int, out []int) {
	outer, n, inner, out = axisSplit(op, a.shape, axis, keepdim)
	if n == 0 && outer*inner > 0 {
		panic(fmt.Sprintf("tensor.%s: cannot reduce over empty axis %d of shape %v", op, axis, a.shape))
	}
	vals = make([]float32, outer*inner)
	idx = make([]int64, outer*inner)
	for o := range outer {
		best := vals[o*inner : (o+1)*inner]
		bi := idx[o*inner : (o+1)*inner]
		copy(best, a.data[o*n*inner:][:inner])
		for r := 1; r < n; r++ {
			row := a.data[(o*n+r)*inner:][:inner]
			for i, v := range row {
				b := best[i]
				if b != b {
					continue
				}
				if v != v || (isMax && v > b) || (!isMax && v < b) {
					best[i], bi[i] = v, int64(r)
				}
			}
		}
	}
	return vals, idx, outer, n, inner, out
}

func maxMin(op string, a *Tensor, axis int, keepdim, isMax bool) *Tensor {
	mustFloat(op, a)
	vals, idx, outer, n, inner, shape := argExtreme(op, a, axis, keepdim, isMax)
	out := FromSlice(vals, shape...)
	return record(op, out, func(g *Tensor) []*Tensor {
		ga := Zeros(a.shape...)
		for o := range outer {
			for i := range inner {
				j := o*inner + i
				ga.data[(o*n+int(idx[j]))*inner+i] = g.data[j]
			}
		}
		return []*Tensor{ga}
	}, a)
}

// Max returns the maximum along axis (gradient flows to the first maximal
// element, as PyTorch's max(dim)). NaNs propagate.
func Max(a *Tensor, axis int, keepdim bool) *Tensor { return maxMin("Max", a, axis, keepdim, true) }

// Min returns the minimum along axis (gradient flows to the first minimal
// element, as PyTorch's min(dim)). NaNs propagate.
func Min(a *Tensor, axis int, keepdim bool) *Tensor { return maxMin("Min", a, axis, keepdim, false) }

// ArgMax returns the int64 index of the first maximum along axis.
func ArgMax(a *Tensor, axis int, keepdim bool) *Tensor {
	mustFloat("ArgMax", a)
	_, idx, _, _, _, shape := argExtreme("ArgMax", a, axis, keepdim, true)
	return FromInt64(idx, shape...)
}

// ArgMin returns the int64 index of the first minimum along axis.
func ArgMin(a *Tensor, axis int, keepdim bool) *Tensor {
	mustFloat("ArgMin", a)
	_, idx, _, _, _, shape := argExtreme("ArgMin", a, axis, keepdim, false)
	return FromInt64(idx, shape...)
}
