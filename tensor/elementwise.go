package tensor

// Add returns a+b with broadcasting.
func Add(a, b *Tensor) *Tensor {
	out := binary("Add", a, b, func(x, y float32) float32 { return x + y })
	return record("Add", out, func(g *Tensor) []*Tensor {
		return []*Tensor{g, g}
	}, a, b)
}

// Sub returns a-b with broadcasting.
func Sub(a, b *Tensor) *Tensor {
	out := binary("Sub", a, b, func(x, y float32) float32 { return x - y })
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
	out := binary("Mul", a, b, func(x, y float32) float32 { return x * y })
	return record("Mul", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = binary("Mul.backward", g, b, func(x, y float32) float32 { return x * y })
		}
		if b.NeedsGrad() {
			gb = binary("Mul.backward", g, a, func(x, y float32) float32 { return x * y })
		}
		return []*Tensor{ga, gb}
	}, a, b)
}

// Div returns a/b elementwise with broadcasting.
func Div(a, b *Tensor) *Tensor {
	out := binary("Div", a, b, func(x, y float32) float32 { return x / y })
	return record("Div", out, func(g *Tensor) []*Tensor {
		var ga, gb *Tensor
		if a.NeedsGrad() {
			ga = binary("Div.backward", g, b, func(x, y float32) float32 { return x / y })
		}
		if b.NeedsGrad() {
			// d(a/b)/db = -a/b² = -out/b
			t := binary("Div.backward", out, b, func(o, y float32) float32 { return -o / y })
			gb = binary("Div.backward", g, t, func(x, y float32) float32 { return x * y })
		}
		return []*Tensor{ga, gb}
	}, a, b)
}
