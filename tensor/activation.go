package tensor

import (
	"math"
	"sync"

	"github.com/deepgo/deepgo/internal/kernels"
)

// ReLU returns max(a, 0). Its gradient is 1 where a > 0 and 0 elsewhere
// (including at 0), as in PyTorch.
func ReLU(a *Tensor) *Tensor {
	mustFloat("ReLU", a)
	out := newOutIn(a.arena, a.shape)
	j := reluJobs.Get().(*reluJob)
	j.dst, j.src = out.data, a.data
	n := len(a.data)
	parallelForWork(n, n, j.forward)
	j.dst, j.src = nil, nil
	reluJobs.Put(j)
	return recordFn("ReLU", out, reluBackward, nil, false, a)
}

// reluBackward is the rule of ReLU.
func reluBackward(out, g *Tensor) []*Tensor {
	ga := newGrad(false, g.shape...)
	j := reluJobs.Get().(*reluJob)
	j.dst, j.src, j.out = ga.data, g.data, out.data
	n := len(g.data)
	parallelForWork(n, n, j.backward)
	j.dst, j.src, j.out = nil, nil, nil
	reluJobs.Put(j)
	out.ctx.gin[0] = ga
	return out.ctx.gin[:1]
}

// reluJob is the work of one ReLU call for parallelForWork, with its chunk
// functions bound once (jobs are reused through reluJobs).
type reluJob struct {
	dst, src, out     []float32
	forward, backward func(lo, hi int)
}

var reluJobs = sync.Pool{New: func() any {
	j := new(reluJob)
	j.forward = func(lo, hi int) { kernels.ReLU(j.dst[lo:hi], j.src[lo:hi]) }
	j.backward = func(lo, hi int) { kernels.ReLUGrad(j.dst[lo:hi], j.src[lo:hi], j.out[lo:hi]) }
	return j
}}

// LeakyReLU returns a where a > 0 and slope*a elsewhere.
func LeakyReLU(a *Tensor, slope float32) *Tensor {
	mustFloat("LeakyReLU", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		if v > 0 {
			out.data[i] = v
		} else {
			out.data[i] = v * slope
		}
	}
	return record("LeakyReLU", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			if a.data[i] > 0 {
				ga.data[i] = v
			} else {
				ga.data[i] = v * slope
			}
		}
		return []*Tensor{ga}
	}, a)
}

// Sigmoid returns 1/(1+e^-a), computed without overflow for large |a|
// (kernels.Sigmoid: vectorised, within 2 ulp, where the CPU allows).
func Sigmoid(a *Tensor) *Tensor {
	mustFloat("Sigmoid", a)
	out := Zeros(a.shape...)
	kernels.Sigmoid(out.data, a.data)
	return record("Sigmoid", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			y := out.data[i]
			ga.data[i] = v * y * (1 - y)
		}
		return []*Tensor{ga}
	}, a)
}

// Tanh returns tanh(a) (kernels.Tanh: vectorised, within 1 ulp, where the
// CPU allows).
func Tanh(a *Tensor) *Tensor {
	mustFloat("Tanh", a)
	out := Zeros(a.shape...)
	kernels.Tanh(out.data, a.data)
	return record("Tanh", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			y := out.data[i]
			ga.data[i] = v * (1 - y*y)
		}
		return []*Tensor{ga}
	}, a)
}

// GELU returns a*Φ(a) where Φ is the standard normal CDF (exact, erf-based,
// PyTorch's default approximate="none"; kernels.GELU, vectorised where the
// CPU allows).
func GELU(a *Tensor) *Tensor {
	mustFloat("GELU", a)
	out := Zeros(a.shape...)
	kernels.GELU(out.data, a.data)
	return record("GELU", out, func(g *Tensor) []*Tensor {
		// d/dx x·Φ(x) = Φ(x) + x·φ(x)
		ga := Zeros(g.shape...)
		kernels.GELUGrad(ga.data, g.data, a.data)
		return []*Tensor{ga}
	}, a)
}

// GELUTanh returns the tanh approximation of GELU, 0.5·a·(1+tanh(√(2/π)·(a+0.044715·a³)))
// (PyTorch approximate="tanh").
func GELUTanh(a *Tensor) *Tensor {
	const (
		beta  = 0.7978845608028654 // √(2/π)
		kappa = 0.044715
	)
	mustFloat("GELUTanh", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		x := float64(v)
		out.data[i] = float32(0.5 * x * (1 + math.Tanh(beta*(x+kappa*x*x*x))))
	}
	return record("GELUTanh", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			x := float64(a.data[i])
			t := math.Tanh(beta * (x + kappa*x*x*x))
			d := 0.5*(1+t) + 0.5*x*(1-t*t)*beta*(1+3*kappa*x*x)
			ga.data[i] = float32(float64(v) * d)
		}
		return []*Tensor{ga}
	}, a)
}

// Softmax normalises exp(a) along axis (negative counts from the end). It
// subtracts the maximum first, so large inputs do not overflow.
func Softmax(a *Tensor, axis int) *Tensor {
	mustFloat("Softmax", a)
	outer, n, inner, _ := axisSplit("Softmax", a.shape, axis, true)
	out := Zeros(a.shape...)
	x, y := a.data, out.data
	for o := range outer {
		for i := range inner {
			base := o*n*inner + i
			m := float32(math.Inf(-1))
			for r := range n {
				m = max(m, x[base+r*inner])
			}
			var s float64
			for r := range n {
				e := math.Exp(float64(x[base+r*inner] - m))
				y[base+r*inner] = float32(e)
				s += e
			}
			inv := 1 / s
			for r := range n {
				y[base+r*inner] = float32(float64(y[base+r*inner]) * inv)
			}
		}
	}
	return record("Softmax", out, func(g *Tensor) []*Tensor {
		// dx = y·(g − Σ g·y)
		ga := Zeros(a.shape...)
		for o := range outer {
			for i := range inner {
				base := o*n*inner + i
				var dot float64
				for r := range n {
					j := base + r*inner
					dot += float64(g.data[j]) * float64(y[j])
				}
				d := float32(dot)
				for r := range n {
					j := base + r*inner
					ga.data[j] = y[j] * (g.data[j] - d)
				}
			}
		}
		return []*Tensor{ga}
	}, a)
}

// LogSoftmax returns log(Softmax(a, axis)) computed stably as
// a − max − log Σ exp(a − max).
func LogSoftmax(a *Tensor, axis int) *Tensor {
	mustFloat("LogSoftmax", a)
	outer, n, inner, _ := axisSplit("LogSoftmax", a.shape, axis, true)
	out := Zeros(a.shape...)
	x, y := a.data, out.data
	for o := range outer {
		for i := range inner {
			base := o*n*inner + i
			m := float32(math.Inf(-1))
			for r := range n {
				m = max(m, x[base+r*inner])
			}
			if math.IsInf(float64(m), -1) {
				m = 0 // all −Inf: keep the result −Inf rather than NaN
			}
			var s float64
			for r := range n {
				s += math.Exp(float64(x[base+r*inner] - m))
			}
			ls := math.Log(s)
			for r := range n {
				j := base + r*inner
				y[j] = float32(float64(x[j]-m) - ls)
			}
		}
	}
	return record("LogSoftmax", out, func(g *Tensor) []*Tensor {
		// dx = g − softmax·Σ g
		ga := Zeros(a.shape...)
		for o := range outer {
			for i := range inner {
				base := o*n*inner + i
				var sg float64
				for r := range n {
					sg += float64(g.data[base+r*inner])
				}
				for r := range n {
					j := base + r*inner
					ga.data[j] = float32(float64(g.data[j]) - math.Exp(float64(y[j]))*sg)
				}
			}
		}
		return []*Tensor{ga}
	}, a)
}
