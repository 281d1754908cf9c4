package onnx

import (
	"fmt"
	"math"
	"sort"

	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// impVal is a runtime value: a float32 tensor (f non-nil, differentiable) or
// an integer/bool tensor held on the host (i with shape).
type impVal struct {
	f     *tensor.Tensor
	i     []int64
	shape []int
}

func (v impVal) isInt() bool { return v.f == nil }

func (v impVal) dims() []int {
	if v.f != nil {
		return v.f.Shape()
	}
	return v.shape
}

// impArity is the number of inputs an op takes (max -1: unbounded).
type impArity struct{ min, max int }

// impOps lists the supported ops.
var impOps = map[string]impArity{
	"Add": {2, 2}, "Sub": {2, 2}, "Mul": {2, 2}, "Div": {2, 2}, "Pow": {2, 2},
	"Relu": {1, 1}, "Sigmoid": {1, 1}, "Tanh": {1, 1}, "Sqrt": {1, 1}, "Erf": {1, 1}, "Neg": {1, 1},
	"Exp": {1, 1}, "Log": {1, 1}, "Abs": {1, 1}, "Softmax": {1, 1}, "LogSoftmax": {1, 1},
	"MatMul": {2, 2}, "Gemm": {2, 3}, "Conv": {2, 3}, "MaxPool": {1, 1}, "AveragePool": {1, 1},
	"GlobalAveragePool": {1, 1}, "Flatten": {1, 1}, "Reshape": {2, 2}, "Transpose": {1, 1},
	"Squeeze": {1, 2}, "Unsqueeze": {1, 2}, "Concat": {1, -1}, "Slice": {3, 5}, "Gather": {2, 2},
	"Shape": {1, 1}, "Cast": {1, 1}, "Constant": {0, 0}, "ConstantOfShape": {1, 1}, "Equal": {2, 2},
	"Not": {1, 1}, "Where": {3, 3}, "Expand": {2, 2}, "ReduceMean": {1, 2}, "ReduceSum": {1, 2},
	"Identity": {1, 1}, "Dropout": {1, 3}, "BatchNormalization": {5, 5}, "LayerNormalization": {2, 3},
	"LSTM": {3, 8}, "GRU": {3, 6}, "Pad": {1, 3}, "Split": {1, 2},
}

// impFail panics with an error message; run turns it into one naming the node.
func impFail(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func impNumel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			impFail("negative dimension in %v", shape)
		}
		if d > 0 && n > math.MaxInt32/int64(d) {
			impFail("shape %v is too large", shape)
		}
		n *= int64(d)
	}
	return n
}

// run executes the graph.
func (g *impGraph) run(inputs []*tensor.Tensor, training bool) []*tensor.Tensor {
	if len(inputs) != len(g.inputs) {
		panic(fmt.Sprintf("onnx.GraphModule.Forward: got %d inputs, the graph takes %d (%v)", len(inputs), len(g.inputs), g.inputs))
	}
	env := make(map[string]impVal, len(g.nodes)*2)
	for k, v := range g.consts {
		env[k] = v
	}
	for k, p := range g.params {
		env[k] = impVal{f: p}
	}
	for k, x := range inputs {
		if x == nil {
			panic(fmt.Sprintf("onnx.GraphModule.Forward: input %q is nil", g.inputs[k]))
		}
		switch {
		case g.inputInt[k] && x.DType() == tensor.Int64:
			env[g.inputs[k]] = impVal{i: x.Int64s(), shape: x.Shape()}
		case g.inputInt[k]:
			d := x.Data()
			iv := make([]int64, len(d))
			for j, v := range d {
				iv[j] = int64(v)
			}
			env[g.inputs[k]] = impVal{i: iv, shape: x.Shape()}
		case x.DType() == tensor.Int64:
			env[g.inputs[k]] = impVal{f: x.Float()}
		default:
			env[g.inputs[k]] = impVal{f: x}
		}
	}
	for k := range g.nodes {
		nd := &g.nodes[k]
		ins := make([]impVal, len(nd.inputs))
		present := make([]bool, len(nd.inputs))
		for j, name := range nd.inputs {
			if name == "" {
				continue
			}
			v, ok := env[name]
			if !ok {
				panic(fmt.Sprintf("onnx: node %d %q (%s): input %q has no value", nd.pos, nd.name, nd.op, name))
			}
			ins[j], present[j] = v, true
		}
		outs := g.exec(nd, ins, present, training)
		for j, name := range nd.outputs {
			if name != "" && j < len(outs) {
				env[name] = outs[j]
			}
		}
	}
	res := make([]*tensor.Tensor, len(g.outputs))
	for k, name := range g.outputs {
		v, ok := env[name]
		if !ok {
			panic(fmt.Sprintf("onnx: graph output %q has no value", name))
		}
		if v.isInt() {
			res[k] = tensor.FromInt64(append([]int64(nil), v.i...), v.shape...)
		} else {
			res[k] = v.f
		}
	}
	return res
}

func (g *impGraph) exec(nd *impNode, ins []impVal, present []bool, training bool) (outs []impVal) {
	defer func() {
		if r := recover(); r != nil {
			panic(fmt.Sprintf("onnx: node %d %q (%s, opset %d): %v", nd.pos, nd.name, nd.op, g.opset, r))
		}
	}()
	e := &impExec{g: g, nd: nd, ins: ins, present: present, training: training}
	return e.do()
}

// impExec is one node's execution context.
type impExec struct {
	g        *impGraph
	nd       *impNode
	ins      []impVal
	present  []bool
	training bool
}

func (e *impExec) has(k int) bool { return k < len(e.present) && e.present[k] }

func (e *impExec) attr(name string) *onnxpb.AttributeProto { return e.nd.attrs[name] }

func (e *impExec) attrInt(name string, def int64) int64 {
	if a := e.attr(name); a != nil {
		return a.GetI()
	}
	return def
}

func (e *impExec) attrFloat(name string, def float32) float32 {
	if a := e.attr(name); a != nil {
		return a.GetF()
	}
	return def
}

func (e *impExec) attrInts(name string) ([]int64, bool) {
	if a := e.attr(name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

func (e *impExec) attrString(name, def string) string {
	if a := e.attr(name); a != nil {
		return string(a.GetS())
	}
	return def
}

// f returns input k as a float tensor.
func (e *impExec) f(k int) *tensor.Tensor { return impToFloat(e.ins[k]) }

// ints returns input k as host integers (a float input must hold no gradient).
func (e *impExec) ints(k int) []int64 {
	v := e.ins[k]
	if v.isInt() {
		return v.i
	}
	d := v.f.Data()
	out := make([]int64, len(d))
	for j, x := range d {
		out[j] = int64(x)
	}
	return out
}

func impToFloat(v impVal) *tensor.Tensor {
	if !v.isInt() {
		return v.f
	}
	d := make([]float32, len(v.i))
	for j, x := range v.i {
		d[j] = float32(x)
	}
	return tensor.FromSlice(d, v.shape...)
}

func impAxis(a int64, rank int) int {
	if a < -int64(rank) || a >= int64(rank) {
		impFail("axis %d out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

func impShapeInts(s []int64, limit int64) []int {
	if len(s) > 8 {
		impFail("shape %v has rank over 8", s)
	}
	out := make([]int, len(s))
	for j, d := range s {
		if d < -1 || d > limit {
			impFail("bad dimension %d in shape %v", d, s)
		}
		out[j] = int(d)
	}
	return out
}

func (e *impExec) checkSize(shape []int) {
	if n := impNumel(shape); n > e.g.maxRuntime {
		impFail("shape %v needs %d values, over the limit of %d", shape, n, e.g.maxRuntime)
	}
}

func (e *impExec) do() []impVal {
	nd := e.nd
	one := func(v impVal) []impVal { return []impVal{v} }
	fl := func(t *tensor.Tensor) []impVal { return []impVal{{f: t}} }
	switch nd.op {
	case "Identity":
		return one(e.ins[0])
	case "Dropout":
		x := e.ins[0]
		ratio := float32(0.5)
		if e.g.opset < 12 {
			ratio = e.attrFloat("ratio", 0.5)
		} else if e.has(1) {
			ratio = float32(impToFloat(e.ins[1]).Data()[0])
		}
		trainMode := e.training
		if e.has(2) {
			trainMode = trainMode && e.ints(2)[0] != 0
		}
		if trainMode && !x.isInt() && ratio > 0 {
			if ratio >= 1 {
				impFail("dropout ratio %v", ratio)
			}
			x = impVal{f: tensor.Dropout(x.f, ratio, true, e.g.rng)}
		}
		mask := make([]int64, impNumel(x.dims()))
		for j := range mask {
			mask[j] = 1
		}
		return []impVal{x, {i: mask, shape: x.dims()}}
	case "Constant":
		return one(e.constant())
	case "Add", "Sub", "Mul", "Div":
		return one(e.binary(nd.op))
	case "Pow":
		p := impToFloat(e.ins[1])
		if p.Numel() != 1 || p.RequiresGrad() {
			impFail("exponent must be a constant scalar, got shape %v", p.Shape())
		}
		return fl(tensor.Pow(e.f(0), p.Data()[0]))
	case "Relu":
		return fl(tensor.ReLU(e.f(0)))
	case "Sigmoid":
		return fl(tensor.Sigmoid(e.f(0)))
	case "Tanh":
		return fl(tensor.Tanh(e.f(0)))
	case "Sqrt":
		return fl(tensor.Sqrt(e.f(0)))
	case "Neg":
		if e.ins[0].isInt() {
			return one(impMapInt(e.ins[0], func(a int64) int64 { return -a }))
		}
		return fl(tensor.Neg(e.f(0)))
	case "Exp":
		return fl(tensor.Exp(e.f(0)))
	case "Log":
		return fl(tensor.Log(e.f(0)))
	case "Abs":
		return fl(tensor.Abs(e.f(0)))
	case "Erf":
		return fl(impErf(e.f(0)))
	case "Softmax", "LogSoftmax":
		x := e.f(0)
		def := int64(-1)
		if e.g.opset < 13 {
			def = 1
		}
		ax := impAxis(e.attrInt("axis", def), x.Dim())
		if e.g.opset < 13 && ax != x.Dim()-1 {
			impFail("axis %d of a rank-%d input (opset < 13 flattens; only the last axis is supported)", ax, x.Dim())
		}
		if nd.op == "Softmax" {
			return fl(tensor.Softmax(x, ax))
		}
		return fl(tensor.LogSoftmax(x, ax))
	case "MatMul":
		a, b := e.f(0), e.f(1)
		if a.Dim() >= 2 && b.Dim() >= 2 {
			sa, sb := a.Shape(), b.Shape()
			out := append(tensor.BroadcastShapes("MatMul", sa[:len(sa)-2], sb[:len(sb)-2]), sa[len(sa)-2], sb[len(sb)-1])
			e.checkSize(out)
		}
		return fl(tensor.MatMul(a, b))
	case "Gemm":
		return fl(e.gemm())
	case "Conv":
		return fl(e.conv())
	case "MaxPool", "AveragePool":
		return fl(e.pool())
	case "GlobalAveragePool":
		x := e.f(0)
		if x.Dim() < 3 {
			impFail("input rank %d < 3", x.Dim())
		}
		axes := make([]int, 0, x.Dim()-2)
		for a := 2; a < x.Dim(); a++ {
			axes = append(axes, a)
		}
		return fl(tensor.MeanAxes(x, true, axes...))
	case "Flatten":
		s := e.ins[0].dims()
		ax := e.attrInt("axis", 1)
		if ax < 0 {
			ax += int64(len(s))
		}
		if ax < 0 || ax > int64(len(s)) {
			impFail("axis %d out of range for shape %v", e.attrInt("axis", 1), s)
		}
		a := int(impNumel(s[:ax]))
		b := int(impNumel(s[ax:]))
		return one(e.reshape(e.ins[0], []int{a, b}))
	case "Reshape":
		return one(e.reshapeOp())
	case "Transpose":
		return one(e.transpose())
	case "Squeeze", "Unsqueeze":
		return one(e.squeeze(nd.op == "Unsqueeze"))
	case "Concat":
		return one(e.concat())
	case "Slice":
		return one(e.slice())
	case "Gather":
		return one(e.gather())
	case "Shape":
		s := e.ins[0].dims()
		start, end := e.attrInt("start", 0), e.attrInt("end", int64(len(s)))
		r := int64(len(s))
		if start < 0 {
			start += r
		}
		if end < 0 {
			end += r
		}
		start = max(0, min(start, r))
		end = max(start, min(end, r))
		out := make([]int64, 0, len(s))
		for _, d := range s[start:end] {
			out = append(out, int64(d))
		}
		return one(impVal{i: out, shape: []int{len(out)}})
	case "Cast":
		to := e.attrInt("to", 1)
		if impIsFloat(int32(to)) {
			return fl(e.f(0))
		}
		switch onnxpb.TensorProto_DataType(to) {
		case onnxpb.TensorProto_BOOL:
			return one(impMapInt(impVal{i: e.ints(0), shape: e.ins[0].dims()}, func(a int64) int64 { return impB(a != 0) }))
		case onnxpb.TensorProto_STRING, onnxpb.TensorProto_COMPLEX64, onnxpb.TensorProto_COMPLEX128, onnxpb.TensorProto_UNDEFINED:
			impFail("cast to %v is not supported", onnxpb.TensorProto_DataType(to))
		}
		if !e.ins[0].isInt() {
			d := e.ins[0].f.Data()
			out := make([]int64, len(d))
			for j, x := range d {
				if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 9e18 {
					impFail("cannot cast %v to an integer", x)
				}
				out[j] = int64(x)
			}
			return one(impVal{i: out, shape: e.ins[0].dims()})
		}
		return one(e.ins[0])
	case "ConstantOfShape":
		shape := impShapeInts(e.ints(0), math.MaxInt32)
		for _, d := range shape {
			if d < 0 {
				impFail("negative dimension in %v", shape)
			}
		}
		e.checkSize(shape)
		n := impNumel(shape)
		v, ok := e.nd.consts["value"]
		if !ok {
			return fl(tensor.Zeros(shape...))
		}
		if impNumel(v.dims()) != 1 {
			impFail("value must hold one element, has shape %v", v.dims())
		}
		if v.isInt() {
			out := make([]int64, n)
			for j := range out {
				out[j] = v.i[0]
			}
			return one(impVal{i: out, shape: shape})
		}
		return fl(tensor.Full(v.f.Data()[0], shape...))
	case "Equal":
		a, b := e.ins[0], e.ins[1]
		if a.isInt() && b.isInt() {
			return one(impBroadcastInt("Equal", a, b, func(x, y int64) int64 { return impB(x == y) }))
		}
		af, bf := impToFloat(a), impToFloat(b)
		return one(impBroadcastInt("Equal", impVal{i: impF2I(af), shape: af.Shape()}, impVal{i: impF2I(bf), shape: bf.Shape()},
			func(x, y int64) int64 {
				return impB(math.Float64frombits(uint64(x)) == math.Float64frombits(uint64(y)))
			}))
	case "Not":
		return one(impMapInt(impVal{i: e.ints(0), shape: e.ins[0].dims()}, func(a int64) int64 { return impB(a == 0) }))
	case "Where":
		c := impVal{i: e.ints(0), shape: e.ins[0].dims()}
		if e.ins[1].isInt() && e.ins[2].isInt() {
			return one(impWhereInt(c, e.ins[1], e.ins[2]))
		}
		e.checkSize(tensor.BroadcastShapes("Where", tensor.BroadcastShapes("Where", c.shape, e.ins[1].dims()), e.ins[2].dims()))
		return fl(tensor.Where(tensor.FromInt64(append([]int64(nil), c.i...), c.shape...), e.f(1), e.f(2)))
	case "Expand":
		return one(e.expand())
	case "ReduceMean", "ReduceSum":
		return one(e.reduce())
	case "BatchNormalization":
		return fl(e.batchNorm())
	case "LayerNormalization":
		return fl(e.layerNorm())
	case "LSTM":
		return e.lstm()
	case "GRU":
		return e.gru()
	case "Pad":
		return fl(e.pad())
	case "Split":
		return e.split()
	}
	impFail("unsupported op")
	return nil
}

func impB(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// impF2I stores float64 bits of each value so Equal can compare them.
func impF2I(t *tensor.Tensor) []int64 {
	d := t.Data()
	out := make([]int64, len(d))
	for j, x := range d {
		out[j] = int64(math.Float64bits(float64(x)))
	}
	return out
}

func (e *impExec) constant() impVal {
	a := e.nd.attrs
	if v, ok := e.nd.consts["value"]; ok {
		return v
	}
	switch {
	case a["value_float"] != nil:
		return impVal{f: tensor.Scalar(a["value_float"].GetF())}
	case a["value_int"] != nil:
		return impVal{i: []int64{a["value_int"].GetI()}, shape: []int{}}
	case a["value_floats"] != nil:
		d := append([]float32(nil), a["value_floats"].GetFloats()...)
		return impVal{f: tensor.FromSlice(d, len(d))}
	case a["value_ints"] != nil:
		d := append([]int64(nil), a["value_ints"].GetInts()...)
		return impVal{i: d, shape: []int{len(d)}}
	}
	impFail("no supported value attribute")
	return impVal{}
}

// impErf is erf(x) with the gradient 2/√π·exp(-x²): the value is computed
// on the host and the gradient attached with a straight-through term
// d·(x − detach(x)), which is exactly zero forward.
func impErf(x *tensor.Tensor) *tensor.Tensor {
	d := x.Data()
	val := make([]float32, len(d))
	der := make([]float32, len(d))
	for j, v := range d {
		val[j] = float32(math.Erf(float64(v)))
		der[j] = float32(2 / math.Sqrt(math.Pi) * math.Exp(-float64(v)*float64(v)))
	}
	out := tensor.FromSlice(val, x.Shape()...)
	if !x.RequiresGrad() || !tensor.IsGradEnabled() {
		return out
	}
	return tensor.Add(out, tensor.Mul(tensor.FromSlice(der, x.Shape()...), tensor.Sub(x, x.Detach())))
}

func (e *impExec) binary(op string) impVal {
	a, b := e.ins[0], e.ins[1]
	if a.isInt() && b.isInt() {
		var f func(x, y int64) int64
		switch op {
		case "Add":
			f = func(x, y int64) int64 { return x + y }
		case "Sub":
			f = func(x, y int64) int64 { return x - y }
		case "Mul":
			f = func(x, y int64) int64 { return x * y }
		default:
			f = func(x, y int64) int64 {
				if y == 0 {
					impFail("integer division by zero")
				}
				return x / y
			}
		}
		return impBroadcastInt(op, a, b, f)
	}
	x, y := impToFloat(a), impToFloat(b)
	e.checkSize(tensor.BroadcastShapes(op, x.Shape(), y.Shape()))
	switch op {
	case "Add":
		return impVal{f: tensor.Add(x, y)}
	case "Sub":
		return impVal{f: tensor.Sub(x, y)}
	case "Mul":
		return impVal{f: tensor.Mul(x, y)}
	}
	return impVal{f: tensor.Div(x, y)}
}

// impBroadcastIndex maps each flat index of shape out to the flat index into
// a tensor of shape in broadcast to out.
func impBroadcastIndex(in, out []int) []int {
	strides := make([]int, len(out))
	s := 1
	for k := len(in) - 1; k >= 0; k-- {
		j := len(out) - len(in) + k
		if in[k] != 1 {
			strides[j] = s
		}
		s *= in[k]
	}
	return impStridedIndex(out, strides)
}

// impStridedIndex walks the coordinates of shape out in row-major order and
// gives, for each, the flat offset sum(coord[k]*strides[k]).
func impStridedIndex(out, strides []int) []int {
	n := int(impNumel(out))
	idx := make([]int, n)
	coord := make([]int, len(out))
	for f := 0; f < n; f++ {
		off := 0
		for k := range coord {
			off += coord[k] * strides[k]
		}
		idx[f] = off
		for k := len(out) - 1; k >= 0; k-- {
			coord[k]++
			if coord[k] < out[k] {
				break
			}
			coord[k] = 0
		}
	}
	return idx
}

func impBroadcastInt(op string, a, b impVal, f func(x, y int64) int64) impVal {
	shape := tensor.BroadcastShapes(op, a.shape, b.shape)
	if impNumel(shape) > impMaxHostInts {
		impFail("shape %v is too large", shape)
	}
	ia, ib := impBroadcastIndex(a.shape, shape), impBroadcastIndex(b.shape, shape)
	out := make([]int64, len(ia))
	for j := range out {
		out[j] = f(a.i[ia[j]], b.i[ib[j]])
	}
	return impVal{i: out, shape: shape}
}

func impWhereInt(c, a, b impVal) impVal {
	shape := tensor.BroadcastShapes("Where", tensor.BroadcastShapes("Where", c.shape, a.shape), b.shape)
	if impNumel(shape) > impMaxHostInts {
		impFail("shape %v is too large", shape)
	}
	ic, ia, ib := impBroadcastIndex(c.shape, shape), impBroadcastIndex(a.shape, shape), impBroadcastIndex(b.shape, shape)
	out := make([]int64, len(ic))
	for j := range out {
		if c.i[ic[j]] != 0 {
			out[j] = a.i[ia[j]]
		} else {
			out[j] = b.i[ib[j]]
		}
	}
	return impVal{i: out, shape: shape}
}

func impMapInt(a impVal, f func(int64) int64) impVal {
	out := make([]int64, len(a.i))
	for j, x := range a.i {
		out[j] = f(x)
	}
	return impVal{i: out, shape: append([]int(nil), a.shape...)}
}

func (e *impExec) gemm() *tensor.Tensor {
	a, b := e.f(0), e.f(1)
	if a.Dim() != 2 || b.Dim() != 2 {
		impFail("A %v and B %v must be matrices", a.Shape(), b.Shape())
	}
	alpha, beta := e.attrFloat("alpha", 1), e.attrFloat("beta", 1)
	ta, tb := e.attrInt("transA", 0) != 0, e.attrInt("transB", 0) != 0
	var c *tensor.Tensor
	if e.has(2) {
		c = e.f(2)
	}
	if !ta && tb && alpha == 1 && beta == 1 && (c == nil || c.Dim() == 1) {
		return tensor.Linear(a, b, c)
	}
	if ta {
		a = tensor.Transpose(a, 0, 1)
	}
	if tb {
		b = tensor.Transpose(b, 0, 1)
	}
	e.checkSize([]int{a.Size(0), b.Size(1)})
	y := tensor.MatMul(a, b)
	if alpha != 1 {
		y = tensor.MulScalar(y, alpha)
	}
	if c != nil && beta != 0 {
		if beta != 1 {
			c = tensor.MulScalar(c, beta)
		}
		y = tensor.Add(y, c)
	}
	return y
}

// pads2 reads symmetric 2-D pads from the pads attribute.
func (e *impExec) pads2() [2]int {
	switch ap := e.attrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "VALID", "":
	default:
		impFail("auto_pad %s is not supported", ap)
	}
	p, ok := e.attrInts("pads")
	if !ok {
		return [2]int{}
	}
	if len(p) != 4 || p[0] != p[2] || p[1] != p[3] || p[0] < 0 || p[1] < 0 || p[0] > 1<<20 || p[1] > 1<<20 {
		impFail("pads %v: only symmetric 2-D pads are supported", p)
	}
	return [2]int{int(p[0]), int(p[1])}
}

func (e *impExec) pair(name string, def int) [2]int {
	p, ok := e.attrInts(name)
	if !ok {
		return [2]int{def, def}
	}
	if len(p) != 2 || p[0] < 1 || p[1] < 1 || p[0] > 1<<20 || p[1] > 1<<20 {
		impFail("%s %v: want two positive values (2-D only)", name, p)
	}
	return [2]int{int(p[0]), int(p[1])}
}

func (e *impExec) conv() *tensor.Tensor {
	x, w := e.f(0), e.f(1)
	if x.Dim() != 4 || w.Dim() != 4 {
		impFail("only 2-D convolution is supported, got input %v and weight %v", x.Shape(), w.Shape())
	}
	var b *tensor.Tensor
	if e.has(2) {
		b = e.f(2)
	}
	g := e.attrInt("group", 1)
	if g < 1 || g > 1<<20 {
		impFail("group %d", g)
	}
	opt := tensor.Conv2DOptions{Stride: e.pair("strides", 1), Padding: e.pads2(), Dilation: e.pair("dilations", 1), Groups: int(g)}
	e.checkSize([]int{x.Size(0), w.Size(0), x.Size(2) + 2*opt.Padding[0], x.Size(3) + 2*opt.Padding[1]})
	return tensor.Conv2D(x, w, b, opt)
}

func (e *impExec) pool() *tensor.Tensor {
	x := e.f(0)
	if x.Dim() != 4 {
		impFail("only 2-D pooling is supported, got input %v", x.Shape())
	}
	if _, ok := e.attrInts("kernel_shape"); !ok {
		impFail("kernel_shape is required")
	}
	opt := tensor.Pool2DOptions{Kernel: e.pair("kernel_shape", 1), Stride: e.pair("strides", 1), Padding: e.pads2(),
		CeilMode: e.attrInt("ceil_mode", 0) != 0}
	e.checkSize([]int{x.Size(0), x.Size(1), x.Size(2) + 2*opt.Padding[0] + 1, x.Size(3) + 2*opt.Padding[1] + 1})
	if e.nd.op == "MaxPool" {
		if e.attrInt("storage_order", 0) != 0 || len(e.nd.outputs) > 1 && e.nd.outputs[1] != "" {
			impFail("indices output and storage_order are not supported")
		}
		opt.Dilation = e.pair("dilations", 1)
		return tensor.MaxPool2D(x, opt)
	}
	opt.ExcludePad = e.attrInt("count_include_pad", 0) == 0
	return tensor.AvgPool2D(x, opt)
}

func (e *impExec) reshape(v impVal, shape []int) impVal {
	if v.isInt() {
		if impNumel(shape) != int64(len(v.i)) {
			impFail("cannot reshape %v to %v", v.shape, shape)
		}
		return impVal{i: v.i, shape: shape}
	}
	return impVal{f: tensor.Reshape(v.f, shape...)}
}

func (e *impExec) reshapeOp() impVal {
	in := e.ins[0].dims()
	s := impShapeInts(e.ints(1), math.MaxInt32)
	allowZero := e.attrInt("allowzero", 0) != 0
	neg := -1
	known := int64(1)
	for j, d := range s {
		switch {
		case d == 0 && !allowZero:
			if j >= len(in) {
				impFail("shape %v copies dimension %d of %v", s, j, in)
			}
			s[j] = in[j]
		case d == -1:
			if neg >= 0 {
				impFail("shape %v has two -1", s)
			}
			neg = j
			continue
		}
		known *= int64(max(s[j], 1))
		if known > math.MaxInt32 {
			impFail("shape %v is too large", s)
		}
	}
	total := impNumel(in)
	if neg >= 0 {
		if known == 0 || total%known != 0 {
			impFail("cannot reshape %v to %v", in, s)
		}
		s[neg] = int(total / known)
	}
	if impNumel(s) != total {
		impFail("cannot reshape %v to %v", in, s)
	}
	return e.reshape(e.ins[0], s)
}

func (e *impExec) transpose() impVal {
	v := e.ins[0]
	s := v.dims()
	perm := make([]int, len(s))
	if p, ok := e.attrInts("perm"); ok {
		if len(p) != len(s) {
			impFail("perm %v for rank %d", p, len(s))
		}
		seen := make([]bool, len(s))
		for j, a := range p {
			if a < 0 || a >= int64(len(s)) || seen[a] {
				impFail("bad perm %v", p)
			}
			seen[a] = true
			perm[j] = int(a)
		}
	} else {
		for j := range perm {
			perm[j] = len(s) - 1 - j
		}
	}
	if !v.isInt() {
		return impVal{f: tensor.Permute(v.f, perm...)}
	}
	out := make([]int, len(s))
	for j, p := range perm {
		out[j] = s[p]
	}
	idx := impPermuteIndex(s, perm)
	res := make([]int64, len(idx))
	for j, k := range idx {
		res[j] = v.i[k]
	}
	return impVal{i: res, shape: out}
}

// impPermuteIndex gives, for each flat position of the permuted tensor, the
// flat index into the original.
func impPermuteIndex(s, perm []int) []int {
	strides := make([]int, len(s))
	st := 1
	for k := len(s) - 1; k >= 0; k-- {
		strides[k] = st
		st *= s[k]
	}
	out := make([]int, len(s))
	ps := make([]int, len(s))
	for j, p := range perm {
		out[j] = s[p]
		ps[j] = strides[p]
	}
	return impStridedIndex(out, ps)
}

func (e *impExec) axesArg(k int) ([]int64, bool) {
	if e.g.opset >= 13 && e.nd.op != "ReduceMean" {
		if e.has(k) {
			return e.ints(k), true
		}
		return nil, false
	}
	return e.attrInts("axes")
}

func (e *impExec) squeeze(unsq bool) impVal {
	v := e.ins[0]
	s := v.dims()
	axes, ok := e.axesArg(1)
	var out []int
	if unsq {
		if !ok {
			impFail("axes are required")
		}
		r := len(s) + len(axes)
		if r > 8 {
			impFail("rank %d over 8", r)
		}
		ins := make([]bool, r)
		for _, a := range axes {
			ax := impAxis(a, r)
			if ins[ax] {
				impFail("repeated axis in %v", axes)
			}
			ins[ax] = true
		}
		k := 0
		for j := 0; j < r; j++ {
			if ins[j] {
				out = append(out, 1)
			} else {
				out = append(out, s[k])
				k++
			}
		}
	} else {
		drop := make([]bool, len(s))
		if !ok {
			for j, d := range s {
				drop[j] = d == 1
			}
		}
		for _, a := range axes {
			ax := impAxis(a, len(s))
			if s[ax] != 1 {
				impFail("cannot squeeze axis %d of shape %v", ax, s)
			}
			drop[ax] = true
		}
		out = []int{}
		for j, d := range s {
			if !drop[j] {
				out = append(out, d)
			}
		}
	}
	return e.reshape(v, out)
}

func (e *impExec) concat() impVal {
	allInt := true
	var rank int
	for j := range e.ins {
		if !e.has(j) {
			impFail("empty input %d", j)
		}
		allInt = allInt && e.ins[j].isInt()
		rank = len(e.ins[j].dims())
	}
	ax := impAxis(e.attrInt("axis", 0), max(rank, 1))
	if !allInt {
		ts := make([]*tensor.Tensor, len(e.ins))
		for j := range e.ins {
			ts[j] = e.f(j)
		}
		return impVal{f: tensor.Concat(ts, ax)}
	}
	// Host concat: view each input as [outer, len_j*inner].
	base := e.ins[0].shape
	if len(base) == 0 {
		impFail("cannot concatenate scalars")
	}
	outShape := append([]int(nil), base...)
	outShape[ax] = 0
	for _, v := range e.ins {
		if len(v.shape) != len(base) {
			impFail("ranks differ: %v and %v", base, v.shape)
		}
		for k := range base {
			if k != ax && v.shape[k] != base[k] {
				impFail("shapes %v and %v differ outside axis %d", base, v.shape, ax)
			}
		}
		outShape[ax] += v.shape[ax]
	}
	e.checkSize(outShape)
	outer := int(impNumel(base[:ax]))
	inner := int(impNumel(base[ax+1:]))
	out := make([]int64, 0, impNumel(outShape))
	for o := 0; o < outer; o++ {
		for _, v := range e.ins {
			w := v.shape[ax] * inner
			out = append(out, v.i[o*w:(o+1)*w]...)
		}
	}
	return impVal{i: out, shape: outShape}
}

func (e *impExec) slice() impVal {
	v := e.ins[0]
	s := v.dims()
	starts, ends := e.ints(1), e.ints(2)
	if len(starts) != len(ends) {
		impFail("starts %v and ends %v differ in length", starts, ends)
	}
	axes := make([]int64, len(starts))
	for j := range axes {
		axes[j] = int64(j)
	}
	if e.has(3) {
		axes = e.ints(3)
	}
	steps := make([]int64, len(starts))
	for j := range steps {
		steps[j] = 1
	}
	if e.has(4) {
		steps = e.ints(4)
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		impFail("starts, ends, axes and steps differ in length")
	}
	for j := range starts {
		ax := impAxis(axes[j], len(s))
		d := int64(s[ax])
		st, en, step := starts[j], ends[j], steps[j]
		if step <= 0 {
			impFail("step %d: only positive steps are supported", step)
		}
		if st < 0 {
			st += d
		}
		if en < 0 {
			en += d
		}
		st = max(0, min(st, d))
		en = max(0, min(en, d))
		if en < st {
			en = st
		}
		if v.isInt() {
			v = impSliceInt(v, ax, int(st), int(en), int(step))
		} else {
			v = impVal{f: tensor.Slice(v.f, ax, int(st), int(en), int(step))}
		}
		s = v.dims()
	}
	return v
}

func impSliceInt(v impVal, ax, st, en, step int) impVal {
	outer := int(impNumel(v.shape[:ax]))
	inner := int(impNumel(v.shape[ax+1:]))
	d := v.shape[ax]
	n := 0
	if en > st {
		n = (en - st + step - 1) / step
	}
	out := make([]int64, 0, outer*n*inner)
	for o := 0; o < outer; o++ {
		for k := st; k < en; k += step {
			base := (o*d + k) * inner
			out = append(out, v.i[base:base+inner]...)
		}
	}
	shape := append([]int(nil), v.shape...)
	shape[ax] = n
	return impVal{i: out, shape: shape}
}

func (e *impExec) gather() impVal {
	data := e.ins[0]
	s := data.dims()
	if len(s) == 0 {
		impFail("data is a scalar")
	}
	ax := impAxis(e.attrInt("axis", 0), len(s))
	idx := e.ints(1)
	ishape := e.ins[1].dims()
	d := int64(s[ax])
	norm := make([]int64, len(idx))
	for j, k := range idx {
		if k < -d || k >= d {
			impFail("index %d out of range for axis %d of size %d", k, ax, d)
		}
		if k < 0 {
			k += d
		}
		norm[j] = k
	}
	outShape := append(append(append([]int(nil), s[:ax]...), ishape...), s[ax+1:]...)
	if data.isInt() {
		outer := int(impNumel(s[:ax]))
		inner := int(impNumel(s[ax+1:]))
		out := make([]int64, 0, outer*len(norm)*inner)
		for o := 0; o < outer; o++ {
			for _, k := range norm {
				base := (o*int(d) + int(k)) * inner
				out = append(out, data.i[base:base+inner]...)
			}
		}
		return impVal{i: out, shape: outShape}
	}
	sel := tensor.IndexSelect(data.f, ax, tensor.FromInt64(norm, len(norm)))
	return impVal{f: tensor.Reshape(sel, outShape...)}
}

func (e *impExec) expand() impVal {
	v := e.ins[0]
	want := impShapeInts(e.ints(1), math.MaxInt32)
	for _, d := range want {
		if d < 0 {
			impFail("negative dimension in %v", want)
		}
	}
	shape := tensor.BroadcastShapes("Expand", v.dims(), want)
	e.checkSize(shape)
	if v.isInt() {
		idx := impBroadcastIndex(v.shape, shape)
		out := make([]int64, len(idx))
		for j, k := range idx {
			out[j] = v.i[k]
		}
		return impVal{i: out, shape: shape}
	}
	if tensor.SameShape(shape, v.f.Shape()) {
		return v
	}
	return impVal{f: tensor.BroadcastTo(v.f, shape)}
}

func (e *impExec) reduce() impVal {
	x := e.f(0)
	axes, ok := e.axesArg(1)
	keep := e.attrInt("keepdims", 1) != 0
	if !ok || len(axes) == 0 {
		if e.attrInt("noop_with_empty_axes", 0) != 0 {
			return impVal{f: x}
		}
		axes = make([]int64, x.Dim())
		for j := range axes {
			axes[j] = int64(j)
		}
	}
	ax := make([]int, len(axes))
	for j, a := range axes {
		ax[j] = impAxis(a, x.Dim())
	}
	sort.Ints(ax)
	if e.nd.op == "ReduceMean" {
		return impVal{f: tensor.MeanAxes(x, keep, ax...)}
	}
	return impVal{f: tensor.SumAxes(x, keep, ax...)}
}

func (e *impExec) batchNorm() *tensor.Tensor {
	x, scale, bias, mean, vr := e.f(0), e.f(1), e.f(2), e.f(3), e.f(4)
	if x.Dim() < 2 {
		impFail("input rank %d < 2", x.Dim())
	}
	c := x.Size(1)
	for _, t := range []*tensor.Tensor{scale, bias, mean, vr} {
		if t.Dim() != 1 || t.Size(0) != c {
			impFail("parameter shape %v for %d channels", t.Shape(), c)
		}
	}
	eps := e.attrFloat("epsilon", 1e-5)
	bshape := make([]int, x.Dim())
	for j := range bshape {
		bshape[j] = 1
	}
	bshape[1] = c
	axes := []int{0}
	for a := 2; a < x.Dim(); a++ {
		axes = append(axes, a)
	}
	if e.training && e.attrInt("training_mode", 0) == 0 && mean.IsLeaf() && !mean.RequiresGrad() && vr.IsLeaf() && !vr.RequiresGrad() {
		// Fine-tuning: batch statistics, running statistics updated as in
		// PyTorch (momentum m here is ONNX's: running = m·running + (1−m)·batch).
		mom := e.attrFloat("momentum", 0.9)
		bm := tensor.MeanAxes(x, true, axes...)
		bv := tensor.MeanAxes(tensor.Pow(tensor.Sub(x, bm), 2), true, axes...)
		n := float32(x.Numel() / c)
		tensor.NoGrad(func() {
			md, vd := mean.Data(), vr.Data()
			bmd, bvd := bm.Data(), bv.Data()
			for j := 0; j < c; j++ {
				md[j] = mom*md[j] + (1-mom)*bmd[j]
				unb := bvd[j]
				if n > 1 {
					unb = bvd[j] * n / (n - 1)
				}
				vd[j] = mom*vd[j] + (1-mom)*unb
			}
		})
		y := tensor.Div(tensor.Sub(x, bm), tensor.Sqrt(tensor.AddScalar(bv, eps)))
		return tensor.Add(tensor.Mul(y, scale.Reshape(bshape...)), bias.Reshape(bshape...))
	}
	inv := tensor.Div(scale, tensor.Sqrt(tensor.AddScalar(vr, eps)))
	shift := tensor.Sub(bias, tensor.Mul(mean, inv))
	return tensor.Add(tensor.Mul(x, inv.Reshape(bshape...)), shift.Reshape(bshape...))
}

func (e *impExec) layerNorm() *tensor.Tensor {
	x, w := e.f(0), e.f(1)
	ax := impAxis(e.attrInt("axis", -1), x.Dim())
	eps := e.attrFloat("epsilon", 1e-5)
	if len(e.nd.outputs) > 1 {
		for _, o := range e.nd.outputs[1:] {
			if o != "" {
				impFail("mean and inverse std outputs are not supported")
			}
		}
	}
	axes := make([]int, 0, x.Dim()-ax)
	for a := ax; a < x.Dim(); a++ {
		axes = append(axes, a)
	}
	mu := tensor.MeanAxes(x, true, axes...)
	xc := tensor.Sub(x, mu)
	v := tensor.MeanAxes(tensor.Mul(xc, xc), true, axes...)
	y := tensor.Mul(tensor.Div(xc, tensor.Sqrt(tensor.AddScalar(v, eps))), w)
	if e.has(2) {
		y = tensor.Add(y, e.f(2))
	}
	return y
}

func (e *impExec) pad() *tensor.Tensor {
	x := e.f(0)
	if m := e.attrString("mode", "constant"); m != "constant" {
		impFail("mode %s is not supported", m)
	}
	var pads []int64
	if e.g.opset >= 11 {
		if !e.has(1) {
			impFail("pads input is required")
		}
		pads = e.ints(1)
	} else {
		pads, _ = e.attrInts("pads")
	}
	var value float32
	if e.has(2) {
		value = impToFloat(e.ins[2]).Data()[0]
	} else if e.g.opset < 11 {
		value = e.attrFloat("value", 0)
	}
	r := x.Dim()
	if len(pads) != 2*r {
		impFail("pads %v for rank %d", pads, r)
	}
	out := x
	for ax := 0; ax < r; ax++ {
		lo, hi := pads[ax], pads[ax+r]
		if lo < 0 || hi < 0 || lo > 1<<20 || hi > 1<<20 {
			impFail("pads %v: only non-negative pads are supported", pads)
		}
		if lo == 0 && hi == 0 {
			continue
		}
		s := out.Shape()
		s[ax] += int(lo + hi)
		e.checkSize(s)
		parts := []*tensor.Tensor{}
		if lo > 0 {
			ps := out.Shape()
			ps[ax] = int(lo)
			parts = append(parts, tensor.Full(value, ps...))
		}
		parts = append(parts, out)
		if hi > 0 {
			ps := out.Shape()
			ps[ax] = int(hi)
			parts = append(parts, tensor.Full(value, ps...))
		}
		out = tensor.Concat(parts, ax)
	}
	return out
}

func (e *impExec) split() []impVal {
	x := e.f(0)
	ax := impAxis(e.attrInt("axis", 0), x.Dim())
	n := len(e.nd.outputs)
	var sizes []int64
	if e.g.opset >= 13 {
		if e.has(1) {
			sizes = e.ints(1)
		}
	} else {
		sizes, _ = e.attrInts("split")
	}
	d := x.Size(ax)
	if sizes == nil {
		if d%n != 0 {
			impFail("axis size %d does not split into %d equal parts", d, n)
		}
		sizes = make([]int64, n)
		for j := range sizes {
			sizes[j] = int64(d / n)
		}
	}
	if len(sizes) != n {
		impFail("%d split sizes for %d outputs", len(sizes), n)
	}
	is := make([]int, n)
	total := int64(0)
	for j, s := range sizes {
		if s < 0 || s > int64(d) {
			impFail("bad split sizes %v", sizes)
		}
		is[j] = int(s)
		total += s
	}
	if total != int64(d) {
		impFail("split sizes %v do not add up to %d", sizes, d)
	}
	out := make([]impVal, n)
	start := 0
	for j, s := range is {
		out[j] = impVal{f: tensor.Slice(x, ax, start, start+s, 1)}
		start += s
	}
	return out
}

// impMaxHostInts caps integer tensors computed on the host (shapes, masks).
const impMaxHostInts = 1 << 24
