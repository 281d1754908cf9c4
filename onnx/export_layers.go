package onnx

import (
	"math"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// exTransposed returns the [in, out] transpose of a [out, in] weight.
func exTransposed(w *tensor.Tensor) ([]float32, []int) {
	r, c := w.Size(0), w.Size(1)
	src := w.Data()
	out := make([]float32, r*c)
	for i := range r {
		for j := range c {
			out[j*r+i] = src[i*c+j]
		}
	}
	return out, []int{c, r}
}

// linear emits y = x·Wᵀ + b: Gemm (transB=1) for 2-d inputs, MatMul + Add
// otherwise.
func (e *exBuilder) linear(path string, m any, w, b *tensor.Tensor, x exValue) exValue {
	exNeedFloat(path, m, x)
	if w == nil || w.Dim() != 2 {
		exFail(path, m, "weight is missing or not 2-d")
	}
	out, in := w.Size(0), w.Size(1)
	r := len(x.shape)
	if r == 0 || x.shape[r-1] != in {
		exFail(path, m, "input of shape %s does not end with %d features", exShapeString(x.shape), in)
	}
	if b != nil && (b.Dim() != 1 || b.Size(0) != out) {
		exFail(path, m, "bias of shape %v, want [%d]", b.Shape(), out)
	}
	shape := append(append([]int(nil), x.shape[:r-1]...), out)
	if r == 2 {
		ins := []string{x.name, e.param(exPname(path, "weight"), w)}
		if b != nil {
			ins = append(ins, e.param(exPname(path, "bias"), b))
		}
		return x.with(e.op("Gemm", path, ins, exAttrInt("transB", 1)), shape)
	}
	wt, ws := exTransposed(w)
	y := e.op("MatMul", path, []string{x.name, e.floats(exPname(path, "weight_t"), wt, ws...)})
	if b != nil {
		y = e.op("Add", path, []string{y, e.param(exPname(path, "bias"), b)})
	}
	return x.with(y, shape)
}

// exConvOut is the output length of a convolution or pooling window.
func exConvOut(in, k, s, p, d int, ceil bool) int {
	if in < 0 {
		return in
	}
	num := in + 2*p - d*(k-1) - 1
	if ceil {
		num += s - 1
	}
	out := exFloorDiv(num, s) + 1
	if ceil && (out-1)*s >= in+p {
		out--
	}
	return out
}

func exFloorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func exOrOne(v int) int { return max(v, 1) }

func (e *exBuilder) conv(path string, l *nn.Conv2D, x exValue) exValue {
	exNeedFloat(path, l, x)
	exNeedRank(path, l, x, 4)
	w := l.Weight
	if w == nil || w.Dim() != 4 {
		exFail(path, l, "weight is missing or not 4-d")
	}
	o := l.Options
	g := exOrOne(o.Groups)
	if x.shape[1] != w.Size(1)*g {
		exFail(path, l, "input of shape %s has %d channels, layer takes %d", exShapeString(x.shape), x.shape[1], w.Size(1)*g)
	}
	st := [2]int{exOrOne(o.Stride[0]), exOrOne(o.Stride[1])}
	di := [2]int{exOrOne(o.Dilation[0]), exOrOne(o.Dilation[1])}
	k := [2]int{w.Size(2), w.Size(3)}
	ins := []string{x.name, e.param(exPname(path, "weight"), w)}
	if l.Bias != nil {
		ins = append(ins, e.param(exPname(path, "bias"), l.Bias))
	}
	y := e.op("Conv", path, ins,
		exAttrInts("kernel_shape", k[0], k[1]),
		exAttrInts("pads", o.Padding[0], o.Padding[1], o.Padding[0], o.Padding[1]),
		exAttrInts("strides", st[0], st[1]),
		exAttrInts("dilations", di[0], di[1]),
		exAttrInt("group", g))
	shape := []int{x.shape[0], w.Size(0),
		exConvOut(x.shape[2], k[0], st[0], o.Padding[0], di[0], false),
		exConvOut(x.shape[3], k[1], st[1], o.Padding[1], di[1], false)}
	return x.with(y, shape)
}

func (e *exBuilder) pool(path string, m any, op string, o tensor.Pool2DOptions, x exValue) exValue {
	exNeedFloat(path, m, x)
	exNeedRank(path, m, x, 4)
	k := o.Kernel
	st := o.Stride
	for i := range st {
		if st[i] == 0 {
			st[i] = k[i]
		}
	}
	di := [2]int{exOrOne(o.Dilation[0]), exOrOne(o.Dilation[1])}
	ceil := 0
	if o.CeilMode {
		ceil = 1
	}
	attrs := []*onnxpb.AttributeProto{
		exAttrInts("kernel_shape", k[0], k[1]),
		exAttrInts("pads", o.Padding[0], o.Padding[1], o.Padding[0], o.Padding[1]),
		exAttrInts("strides", st[0], st[1]),
		exAttrInt("ceil_mode", ceil),
	}
	if op == "MaxPool" {
		if o.ExcludePad {
			exFail(path, m, "max pooling with ExcludePad has no ONNX form")
		}
		if di != [2]int{1, 1} {
			attrs = append(attrs, exAttrInts("dilations", di[0], di[1]))
		}
	} else {
		di = [2]int{1, 1}
		inc := 1
		if o.ExcludePad {
			inc = 0
		}
		attrs = append(attrs, exAttrInt("count_include_pad", inc))
	}
	y := e.op(op, path, []string{x.name}, attrs...)
	shape := []int{x.shape[0], x.shape[1],
		exConvOut(x.shape[2], k[0], st[0], o.Padding[0], di[0], o.CeilMode),
		exConvOut(x.shape[3], k[1], st[1], o.Padding[1], di[1], o.CeilMode)}
	return x.with(y, shape)
}

func (e *exBuilder) flatten(path string, l *nn.Flatten, x exValue) exValue {
	r := len(x.shape)
	if r == 0 {
		return x
	}
	s, t := exAxis(path, l, l.StartDim, r), exAxis(path, l, l.EndDim, r)
	if s > t {
		exFail(path, l, "start dim %d after end dim %d", l.StartDim, l.EndDim)
	}
	merged, dynamic := 1, false
	for _, d := range x.shape[s : t+1] {
		if d < 0 {
			dynamic = true
		} else {
			merged *= d
		}
	}
	out := append([]int(nil), x.shape[:s]...)
	switch {
	case s == t:
		return x
	case dynamic:
		out = append(out, exDimUnknown)
	default:
		out = append(out, merged)
	}
	out = append(out, x.shape[t+1:]...)
	if s == 1 && t == r-1 {
		return x.with(e.op("Flatten", path, []string{x.name}, exAttrInt("axis", 1)), out)
	}
	// Reshape: copy the leading dimensions (0), -1 for at most one unknown.
	target := make([]int64, len(out))
	unknown := 0
	for i, d := range out {
		switch {
		case i < s:
			target[i] = 0
		case d < 0:
			target[i] = -1
			unknown++
		default:
			target[i] = int64(d)
		}
	}
	if unknown > 1 {
		exFail(path, l, "cannot flatten input of shape %s: more than one dynamic dimension", exShapeString(x.shape))
	}
	shp := e.ints(exPname(path, "shape"), target, len(target))
	return x.with(e.op("Reshape", path, []string{x.name, shp}), out)
}

// gelu emits GELU: x·½·(1 + erf(x/√2)), or the tanh approximation.
func (e *exBuilder) gelu(path string, approximate bool, x exValue) exValue {
	half := e.scalar(exPname(path, "half"), 0.5)
	one := e.scalar(exPname(path, "one"), 1)
	var inner string
	if approximate {
		c := e.scalar(exPname(path, "coef"), 0.044715)
		k := e.scalar(exPname(path, "sqrt_2_over_pi"), float32(math.Sqrt(2/math.Pi)))
		x3 := e.op("Mul", path, []string{x.name, e.op("Mul", path, []string{x.name, x.name})})
		u := e.op("Add", path, []string{x.name, e.op("Mul", path, []string{x3, c})})
		inner = e.op("Tanh", path, []string{e.op("Mul", path, []string{u, k})})
	} else {
		s := e.scalar(exPname(path, "sqrt2"), float32(math.Sqrt2))
		inner = e.op("Erf", path, []string{e.op("Div", path, []string{x.name, s})})
	}
	y := e.op("Mul", path, []string{x.name, e.op("Add", path, []string{inner, one})})
	return x.with(e.op("Mul", path, []string{y, half}), x.shape)
}

func (e *exBuilder) batchNorm(path string, m any, w, b, mean, vr *tensor.Tensor, c int, eps float32, x exValue) exValue {
	exNeedFloat(path, m, x)
	if mean == nil || vr == nil {
		exFail(path, m, "batch normalization without running statistics cannot be exported (it normalizes with batch statistics)")
	}
	if x.shape[1] != c {
		exFail(path, m, "input of shape %s has %d channels, layer has %d", exShapeString(x.shape), x.shape[1], c)
	}
	scale, bias := w, b
	if scale == nil {
		scale = tensor.Ones(c)
	}
	if bias == nil {
		bias = tensor.Zeros(c)
	}
	ins := []string{x.name, e.param(exPname(path, "weight"), scale), e.param(exPname(path, "bias"), bias),
		e.param(exPname(path, "running_mean"), mean), e.param(exPname(path, "running_var"), vr)}
	return x.with(e.op("BatchNormalization", path, ins, exAttrFloat("epsilon", eps)), x.shape)
}

func (e *exBuilder) layerNorm(path string, l *nn.LayerNorm, x exValue) exValue {
	exNeedFloat(path, l, x)
	k, r := len(l.NormalizedShape), len(x.shape)
	if k == 0 || r < k {
		exFail(path, l, "input of shape %s does not end with normalized shape %v", exShapeString(x.shape), l.NormalizedShape)
	}
	for i, d := range l.NormalizedShape {
		if x.shape[r-k+i] != d {
			exFail(path, l, "input of shape %s does not end with normalized shape %v", exShapeString(x.shape), l.NormalizedShape)
		}
	}
	if e.opset >= 17 {
		scale := l.Weight
		if scale == nil {
			scale = tensor.Ones(l.NormalizedShape...)
		}
		ins := []string{x.name, e.param(exPname(path, "weight"), scale)}
		if l.Bias != nil {
			ins = append(ins, e.param(exPname(path, "bias"), l.Bias))
		}
		return x.with(e.op("LayerNormalization", path, ins, exAttrInt("axis", r-k), exAttrFloat("epsilon", l.Eps)), x.shape)
	}
	axes := make([]int, k)
	for i := range axes {
		axes[i] = r - k + i
	}
	mean := e.op("ReduceMean", path, []string{x.name}, exAttrInts("axes", axes...), exAttrInt("keepdims", 1))
	d := e.op("Sub", path, []string{x.name, mean})
	sq := e.op("Pow", path, []string{d, e.scalar(exPname(path, "two"), 2)})
	v := e.op("ReduceMean", path, []string{sq}, exAttrInts("axes", axes...), exAttrInt("keepdims", 1))
	std := e.op("Sqrt", path, []string{e.op("Add", path, []string{v, e.scalar(exPname(path, "eps"), l.Eps)})})
	y := e.op("Div", path, []string{d, std})
	if l.Weight != nil {
		y = e.op("Mul", path, []string{y, e.param(exPname(path, "weight"), l.Weight)})
		y = e.op("Add", path, []string{y, e.param(exPname(path, "bias"), l.Bias)})
	}
	return x.with(y, x.shape)
}

func (e *exBuilder) embedding(path string, l *nn.Embedding, x exValue) exValue {
	if x.dtype != "int64" {
		exFail(path, l, "input is %s, want int64 ids (set ExportOptions.InputDType to \"int64\")", x.dtype)
	}
	if l.Weight == nil || l.Weight.Dim() != 2 {
		exFail(path, l, "weight is missing or not 2-d")
	}
	y := e.op("Gather", path, []string{e.param(exPname(path, "weight"), l.Weight), x.name}, exAttrInt("axis", 0))
	return exValue{name: y, shape: append(append([]int(nil), x.shape...), l.Weight.Size(1)), dtype: "float32"}
}
