// Package onnx converts deepgo models to and from ONNX files.
//
// Export writes a model built from the registry layers (Sequential, Linear,
// Conv2D, pooling, Flatten, the activations, BatchNorm, LayerNorm, Dropout,
// Embedding, LSTM, GRU, MultiheadAttention and the Transformer encoder) as an
// ONNX graph with named inputs and outputs, a symbolic batch dimension and
// FLOAT initializers. The graph computes the model's inference behaviour (as
// after nn.Eval): dropout is the identity and batch normalization uses the
// running statistics.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// BatchDim is the dim_param Export gives every -1 dimension of the input
// shape (and the outputs' batch dimension).
const BatchDim = "batch"

// ExportOptions configure Export.
type ExportOptions struct {
	// InputName and OutputName name the graph's input and output; empty
	// means "input" and "output".
	InputName, OutputName string
	// InputShape is the shape of one input, -1 for the batch dimension
	// (written as the symbolic dimension "batch"). Every other dimension
	// must be fixed. Required.
	InputShape []int
	// InputDType is "float32" or "int64"; empty picks int64 when the model
	// starts with an Embedding and float32 otherwise.
	InputDType string
	// Opset is the ONNX default-domain opset: 13 (the default when zero) or
	// 17 (LayerNorm becomes LayerNormalization).
	Opset int
	// ProducerName is written as the model's producer_name; empty means
	// "deepgo".
	ProducerName string
}

// Export converts m to a serialized ONNX ModelProto. Unsupported layers are
// an error naming the layer's type and path in the module tree.
func Export(m nn.Module, opt ExportOptions) ([]byte, error) {
	mp, err := ExportModel(m, opt)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("onnx.Export: %v", err)
	}
	return b, nil
}

// ExportFile writes Export's bytes to path atomically: to a temporary file
// in the same directory that is synced and then renamed over path.
func ExportFile(path string, m nn.Module, opt ExportOptions) (err error) {
	b, err := Export(m, opt)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("onnx.ExportFile: %v", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("onnx.ExportFile: %v", err)
	}
	return nil
}

// ExportModel is Export without the serialization: it returns the ModelProto.
func ExportModel(m nn.Module, opt ExportOptions) (mp *onnxpb.ModelProto, err error) {
	if m == nil {
		return nil, errors.New("onnx.Export: nil module")
	}
	if opt.Opset == 0 {
		opt.Opset = 13
	}
	if opt.Opset != 13 && opt.Opset != 17 {
		return nil, fmt.Errorf("onnx.Export: opset %d is not supported (use 13 or 17)", opt.Opset)
	}
	if opt.InputName == "" {
		opt.InputName = "input"
	}
	if opt.OutputName == "" {
		opt.OutputName = "output"
	}
	if opt.InputName == opt.OutputName {
		return nil, fmt.Errorf("onnx.Export: input and output are both named %q", opt.InputName)
	}
	if len(opt.InputShape) == 0 {
		return nil, errors.New("onnx.Export: InputShape is required")
	}
	for _, d := range opt.InputShape {
		if d != -1 && d <= 0 {
			return nil, fmt.Errorf("onnx.Export: input shape %v: dimensions must be positive or -1 (batch)", opt.InputShape)
		}
	}
	dtype := opt.InputDType
	if dtype == "" {
		dtype = "float32"
		if _, ok := exFirstLeaf(m).(*nn.Embedding); ok {
			dtype = "int64"
		}
	}
	var elem onnxpb.TensorProto_DataType
	switch dtype {
	case "float32":
		elem = onnxpb.TensorProto_FLOAT
	case "int64":
		elem = onnxpb.TensorProto_INT64
	default:
		return nil, fmt.Errorf("onnx.Export: input dtype %q, want \"float32\" or \"int64\"", dtype)
	}
	defer func() {
		// Layer code panics on shapes it cannot take (as deepgo's forward
		// would); report it as an error.
		if r := recover(); r != nil {
			if e, ok := r.(exError); ok {
				mp, err = nil, e
				return
			}
			panic(r)
		}
	}()
	e := &exBuilder{opset: opt.Opset, graph: &onnxpb.GraphProto{Name: proto.String("deepgo")}, used: map[string]bool{}, dtype: dtype}
	e.used[opt.InputName] = true
	e.used[opt.OutputName] = true
	x := exValue{name: opt.InputName, shape: append([]int(nil), opt.InputShape...), dtype: dtype}
	y := e.emit(m, "", x)
	if y.dtype != "float32" {
		return nil, errors.New("onnx.Export: the model's output is not float32")
	}
	// Name the output: rename the last node's output, or add an Identity
	// when the model is the identity.
	if n := len(e.graph.Node); n > 0 && y.name != opt.InputName && e.producedBy(y.name) == n-1 {
		outs := e.graph.Node[n-1].Output
		for i := range outs {
			if outs[i] == y.name {
				outs[i] = opt.OutputName
			}
		}
	} else {
		e.node("Identity", "", []string{y.name}, []string{opt.OutputName})
	}
	e.graph.Input = []*onnxpb.ValueInfoProto{exValueInfo(opt.InputName, elem, x.shape)}
	e.graph.Output = []*onnxpb.ValueInfoProto{exValueInfo(opt.OutputName, onnxpb.TensorProto_FLOAT, y.shape)}
	ir := int64(7)
	if opt.Opset >= 15 {
		ir = 8
	}
	producer := opt.ProducerName
	if producer == "" {
		producer = "deepgo"
	}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(ir),
		ProducerName: proto.String(producer),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(int64(opt.Opset))}},
		Graph:        e.graph,
	}, nil
}

// exFirstLeaf is the first layer m applies (descending into Sequentials).
func exFirstLeaf(m nn.Module) nn.Module {
	for {
		s, ok := m.(*nn.Sequential)
		if !ok || len(s.Layers) == 0 {
			return m
		}
		m = s.Layers[0]
	}
}

// exError is an error raised inside the exporter by exFail.
type exError struct{ msg string }

func (e exError) Error() string { return e.msg }

// exFail aborts the export with an error naming the layer at path.
func exFail(path string, m any, format string, args ...any) {
	if path == "" {
		path = "(root)"
	}
	panic(exError{fmt.Sprintf("onnx.Export: layer %s (%T): %s", path, m, fmt.Sprintf(format, args...))})
}

// Dimension markers in value shapes.
const (
	exDimBatch   = -1 // the symbolic batch dimension
	exDimUnknown = -2 // a dimension that depends on the batch but is not it
)

// exValue is a tensor in the graph being built, with its static shape.
type exValue struct {
	name  string
	shape []int
	dtype string
}

// exBuilder accumulates the graph.
type exBuilder struct {
	opset int
	graph *onnxpb.GraphProto
	used  map[string]bool
	dtype string
	n     int
}

// fresh returns an unused value name derived from base.
func (e *exBuilder) fresh(base string) string {
	if base == "" {
		base = "v"
	}
	name := base
	for i := 1; e.used[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	e.used[name] = true
	return name
}

// producedBy is the index of the node producing name, -1 if none.
func (e *exBuilder) producedBy(name string) int {
	for i := len(e.graph.Node) - 1; i >= 0; i-- {
		for _, o := range e.graph.Node[i].Output {
			if o == name {
				return i
			}
		}
	}
	return -1
}

// node appends a node and returns its outputs.
func (e *exBuilder) node(op, path string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) []string {
	e.n++
	e.graph.Node = append(e.graph.Node, &onnxpb.NodeProto{
		OpType:    proto.String(op),
		Name:      proto.String(fmt.Sprintf("%s_%d", op, e.n)),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
		DocString: exDocOf(path),
	})
	return outputs
}

func exDocOf(path string) *string {
	if path == "" {
		return nil
	}
	return proto.String(path)
}

// op appends a node with one fresh output named after path and op.
func (e *exBuilder) op(op, path string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	base := op
	if path != "" {
		base = path + "/" + op
	}
	return e.node(op, path, inputs, []string{e.fresh(base)}, attrs...)[0]
}

// floats adds a FLOAT initializer with raw_data and returns its name.
func (e *exBuilder) floats(name string, data []float32, shape ...int) string {
	if n := exProd(shape); n != len(data) {
		panic(fmt.Sprintf("onnx.Export: initializer %s has %d values for shape %v", name, len(data), shape))
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	name = e.fresh(name)
	e.graph.Initializer = append(e.graph.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		Dims: exInt64s(shape), RawData: raw,
	})
	return name
}

// ints adds an INT64 initializer with raw_data and returns its name.
func (e *exBuilder) ints(name string, data []int64, shape ...int) string {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	name = e.fresh(name)
	e.graph.Initializer = append(e.graph.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: exInt64s(shape), RawData: raw,
	})
	return name
}

// param adds t (float32) as an initializer named name.
func (e *exBuilder) param(name string, t *tensor.Tensor) string {
	return e.floats(name, t.Data(), t.Shape()...)
}

// scalar adds a 0-d FLOAT constant.
func (e *exBuilder) scalar(name string, v float32) string { return e.floats(name, []float32{v}) }

func exInt64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

func exProd(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

func exAttrInt(name string, v int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(v))}
}

func exAttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func exAttrInts(name string, v ...int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: exInt64s(v)}
}

func exAttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// exValueInfo describes a graph input or output.
func exValueInfo(name string, elem onnxpb.TensorProto_DataType, shape []int) *onnxpb.ValueInfoProto {
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(shape))
	for i, d := range shape {
		switch {
		case d == exDimBatch:
			dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: BatchDim}}
		case d < 0:
			dims[i] = &onnxpb.TensorShapeProto_Dimension{}
		default:
			dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}}
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}

// exJoin builds a module path like nn.NamedParameters does.
func exJoin(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// exPname is the initializer name of parameter name of the layer at path.
func exPname(path, name string) string { return exJoin(path, name) }

// with returns a value of the same dtype with a new name and shape.
func (v exValue) with(name string, shape []int) exValue {
	return exValue{name: name, shape: shape, dtype: v.dtype}
}

// exAxis normalizes a possibly negative axis for a rank-r value.
func exAxis(path string, m any, a, r int) int {
	if a < 0 {
		a += r
	}
	if a < 0 || a >= r {
		exFail(path, m, "axis out of range for a %d-d input", r)
	}
	return a
}

// exNeedFloat fails unless x is float32.
func exNeedFloat(path string, m any, x exValue) {
	if x.dtype != "float32" {
		exFail(path, m, "input is %s, want float32", x.dtype)
	}
}

// exNeedRank fails unless x has rank r.
func exNeedRank(path string, m any, x exValue, ranks ...int) {
	for _, r := range ranks {
		if len(x.shape) == r {
			return
		}
	}
	exFail(path, m, "input of shape %s, want rank %v", exShapeString(x.shape), ranks)
}

// exShapeString prints a value shape with "batch" for the batch dimension.
func exShapeString(s []int) string {
	out := "["
	for i, d := range s {
		if i > 0 {
			out += " "
		}
		switch {
		case d == exDimBatch:
			out += BatchDim
		case d < 0:
			out += "?"
		default:
			out += strconv.Itoa(d)
		}
	}
	return out + "]"
}

// emit appends the nodes computing m on x and returns the result.
func (e *exBuilder) emit(m nn.Module, path string, x exValue) exValue {
	switch l := m.(type) {
	case *nn.Sequential:
		for i, c := range l.Layers {
			x = e.emit(c, exJoin(path, strconv.Itoa(i)), x)
		}
		return x
	case *nn.Dropout:
		return x
	case *nn.Linear:
		return e.linear(path, l, l.Weight, l.Bias, x)
	case *nn.Conv2D:
		return e.conv(path, l, x)
	case *nn.MaxPool2D:
		return e.pool(path, l, "MaxPool", l.Options, x)
	case *nn.AvgPool2D:
		return e.pool(path, l, "AveragePool", l.Options, x)
	case *nn.Flatten:
		return e.flatten(path, l, x)
	case *nn.ReLU:
		exNeedFloat(path, l, x)
		return x.with(e.op("Relu", path, []string{x.name}), x.shape)
	case *nn.LeakyReLU:
		exNeedFloat(path, l, x)
		return x.with(e.op("LeakyRelu", path, []string{x.name}, exAttrFloat("alpha", l.Slope)), x.shape)
	case *nn.Sigmoid:
		exNeedFloat(path, l, x)
		return x.with(e.op("Sigmoid", path, []string{x.name}), x.shape)
	case *nn.Tanh:
		exNeedFloat(path, l, x)
		return x.with(e.op("Tanh", path, []string{x.name}), x.shape)
	case *nn.GELU:
		exNeedFloat(path, l, x)
		return e.gelu(path, l.Approximate, x)
	case *nn.Softmax:
		exNeedFloat(path, l, x)
		a := exAxis(path, l, l.Dim, len(x.shape))
		return x.with(e.op("Softmax", path, []string{x.name}, exAttrInt("axis", a)), x.shape)
	case *nn.LogSoftmax:
		exNeedFloat(path, l, x)
		a := exAxis(path, l, l.Dim, len(x.shape))
		return x.with(e.op("LogSoftmax", path, []string{x.name}, exAttrInt("axis", a)), x.shape)
	case *nn.BatchNorm1D:
		exNeedRank(path, l, x, 2, 3)
		return e.batchNorm(path, l, l.Weight, l.Bias, l.RunningMean, l.RunningVar, l.NumFeatures, l.Eps, x)
	case *nn.BatchNorm2D:
		exNeedRank(path, l, x, 4)
		return e.batchNorm(path, l, l.Weight, l.Bias, l.RunningMean, l.RunningVar, l.NumFeatures, l.Eps, x)
	case *nn.LayerNorm:
		return e.layerNorm(path, l, x)
	case *nn.Embedding:
		return e.embedding(path, l, x)
	case *nn.LSTM:
		return e.rnn(path, l, "LSTM", &l.RNNWeights, l.InputSize, l.HiddenSize, l.Options, x)
	case *nn.GRU:
		return e.rnn(path, l, "GRU", &l.RNNWeights, l.InputSize, l.HiddenSize, l.Options, x)
	case *nn.MultiheadAttention:
		return e.attention(path, l, x)
	case *nn.TransformerEncoderLayer:
		return e.encoderLayer(path, l, x)
	case *nn.TransformerEncoder:
		return e.encoder(path, l, x)
	case *nn.SinusoidalPositionalEncoding:
		return e.sinusoidal(path, l, x)
	case *nn.LearnedPositionalEmbedding:
		return e.learnedPositions(path, l, x)
	}
	exFail(path, m, "layer type %T is not supported by the ONNX exporter", m)
	return exValue{}
}
