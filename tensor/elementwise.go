package tensor

import "math"

// Add returns a+b with broadcasting.
func Add(a, b *Tensor) *Tensor {
	out := binaryK("Add", opAdd, a, b, nil)
	return record("Add", out, func(g *Tensor) []*Tensor {
		return []*Tensor{g, g}
	}, a, b)
}

// Sub returns a-b with broadcasting.
func Sub(a, b *Tensor) *Tensor {
	out := binaryK("Sub", opSub, a, b, nil)
	return record("Sub", out, func(g *Tensor) []*Tensor {
		var gb *Tensor
		if b.NeedsGrad() {
			gb = unary("Sub.backward", g, func(x float32) float32 { return -x })
		}
		return []*Tensor{g, gb}
	}, a, b)
}

// Mul returns a*b elementwise with broadcasting.
func Mul(a, b *Tensor) *Tensor {
	out := binaryK("Mul", opMul, a, b, nil)
	return record("Mul", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = binaryK("Mul.backward", opMul, g, b, nil)
		}
		if b.NeedsGrad() {
			gb = binaryK("Mul.backward", opMul, g, a, nil)
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// Div returns a/b elementwise with broadcasting.
func Div(a, b *Tensor) *Tensor {
	out := binaryK("Div", opDiv, a, b, nil)
	return record("Div", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = binaryK("Div.backward", opDiv, g, b, nil)
		}
		if b.NeedsGrad() {
			// d(a/b)/db = -a/b² = -out/b
			t := binary("Div.backward", out, b, func(o, y float32) float32 { return -o / y })
			gb = binaryK("Div.backward", opMul, g, t, nil)
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// scaled returns g*s as a new tensor (backward helper).
func scaled(g *Tensor, s float32) *Tensor {
	out := Zeros(g.shape...)
	for i, v := range g.data {
		out.data[i] = v * s
	}
	return out
}

// Neg returns -a.
func Neg(a *Tensor) *Tensor {
	mustFloat("Neg", a)
	out := scaled(a, -1)
	return record("Neg", out, func(g *Tensor) []*Tensor {
		return []*Tensor{scaled(g, -1)}
	}, a)
}

// Exp returns e^a.
func Exp(a *Tensor) *Tensor {
	mustFloat("Exp", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = float32(math.Exp(float64(v)))
	}
	return record("Exp", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			ga.data[i] = v * out.data[i]
		}
		return []*Tensor{ga}
	}, a)
}

// Log returns the natural logarithm of a.
func Log(a *Tensor) *Tensor {
	mustFloat("Log", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = float32(math.Log(float64(v)))
	}
	return record("Log", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			ga.data[i] = v / a.data[i]
		}
		return []*Tensor{ga}
	}, a)
}

// Sqrt returns the square root of a.
func Sqrt(a *Tensor) *Tensor {
	mustFloat("Sqrt", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = float32(math.Sqrt(float64(v)))
	}
	return record("Sqrt", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			ga.data[i] = v / (2 * out.data[i])
		}
		return []*Tensor{ga}
	}, a)
}

// Pow returns a raised to the scalar power p. The gradient p·a^(p-1) is zero
// for p = 0, as in PyTorch.
func Pow(a *Tensor, p float32) *Tensor {
	mustFloat("Pow", a)
	out := Zeros(a.shape...)
	switch p {
	case 1:
		copy(out.data, a.data)
	case 2:
		for i, v := range a.data {
			out.data[i] = v * v
		}
	default:
		for i, v := range a.data {
			out.data[i] = float32(math.Pow(float64(v), float64(p)))
		}
	}
	return record("Pow", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		switch p {
		case 0:
		case 1:
			copy(ga.data, g.data)
		case 2:
			for i, v := range g.data {
				ga.data[i] = 2 * v * a.data[i]
			}
		default:
			for i, v := range g.data {
				ga.data[i] = float32(float64(v) * float64(p) * math.Pow(float64(a.data[i]), float64(p)-1))
			}
		}
		return []*Tensor{ga}
	}, a)
}

// Abs returns |a|. Its gradient is sign(a), zero at 0 as in PyTorch.
func Abs(a *Tensor) *Tensor {
	mustFloat("Abs", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = float32(math.Abs(float64(v)))
	}
	return record("Abs", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			switch x := a.data[i]; {
			case x > 0:
				ga.data[i] = v
			case x < 0:
				ga.data[i] = -v
			}
		}
		return []*Tensor{ga}
	}, a)
}

// Clamp limits a to [lo, hi] (use ±Inf for a one-sided limit). When lo > hi
// every element becomes hi, as in PyTorch. The gradient passes where
// lo <= a <= hi and is zero elsewhere; NaNs propagate.
func Clamp(a *Tensor, lo, hi float32) *Tensor {
	mustFloat("Clamp", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		out.data[i] = v
	}
	return record("Clamp", out, func(g *Tensor) []*Tensor {
		ga := Zeros(g.shape...)
		for i, v := range g.data {
			if x := a.data[i]; x >= lo && x <= hi {
				ga.data[i] = v
			}
		}
		return []*Tensor{ga}
	}, a)
}

// Maximum returns the elementwise maximum of a and b with broadcasting. NaNs
// propagate; where a == b each input receives half of the gradient, as in
// PyTorch.
func Maximum(a, b *Tensor) *Tensor { return extremum("Maximum", a, b, true) }

// Minimum returns the elementwise minimum of a and b with broadcasting. NaNs
// propagate; where a == b each input receives half of the gradient, as in
// PyTorch.
func Minimum(a, b *Tensor) *Tensor { return extremum("Minimum", a, b, false) }

func extremum(op string, a, b *Tensor, isMax bool) *Tensor {
	mustFloat(op, a, b)
	shape := BroadcastShapes(op, a.shape, b.shape)
	ia, ib := broadcastIndex(a.shape, shape), broadcastIndex(b.shape, shape)
	pick := func(k int) (x, y float32) {
		i, j := k, k
		if ia != nil {
			i = int(ia[k])
		}
		if ib != nil {
			j = int(ib[k])
		}
		return a.data[i], b.data[j]
	}
	out := Zeros(shape...)
	for k := range out.data {
		x, y := pick(k)
		if x != x || (isMax && x > y) || (!isMax && x < y) {
			out.data[k] = x
		} else {
			out.data[k] = y
		}
	}
	return record(op, out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = Zeros(shape...)
		}
		if b.NeedsGrad() {
			gb = Zeros(shape...)
		}
		for k, v := range g.data {
			x, y := pick(k)
			wa := float32(0) // share of the gradient that goes to a
			switch {
			case x != x:
				wa = 1
			case x == y:
				wa = 0.5
			case (isMax && x > y) || (!isMax && x < y):
				wa = 1
			}
			if ga != nil {
				ga.data[k] = v * wa
			}
			if gb != nil {
				gb.data[k] = v * (1 - wa)
			}
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// AddScalar returns a+s.
func AddScalar(a *Tensor, s float32) *Tensor {
	mustFloat("AddScalar", a)
	out := Zeros(a.shape...)
	for i, v := range a.data {
		out.data[i] = v + s
	}
	return record("AddScalar", out, func(g *Tensor) []*Tensor {
		return []*Tensor{g}
	}, a)
}

// MulScalar returns a*s.
func MulScalar(a *Tensor, s float32) *Tensor {
	mustFloat("MulScalar", a)
	out := scaled(a, s)
	return record("MulScalar", out, func(g *Tensor) []*Tensor {
		return []*Tensor{scaled(g, s)}
	}, a)
}
