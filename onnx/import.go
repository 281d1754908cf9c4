package onnx

// ONNX import: Import turns an ONNX graph into a GraphModule, an ordinary
// nn.Module whose weights are trainable *tensor.Tensor parameters and whose
// Forward runs the graph's nodes in topological order with differentiable
// deepgo tensor ops, so that an imported model can be evaluated, fine-tuned,
// saved as a model package and served.
//
// Parameters are named by graph position, never by initializer name
// (exporters rename tensors they transform): the float initializer first
// consumed by node 7, a Gemm, becomes "node.7.weight" (its bias
// "node.7.bias"); Conv, MatMul, Gather (embeddings), BatchNormalization and
// LayerNormalization use weight/bias too, BatchNormalization keeps its
// statistics as the buffers running_mean/running_var, LSTM and GRU keep
// their ONNX-layout tensors (gate order i,o,f,c and z,r,h) as w, r and b, and
// any other float initializer with more than one value is "node.N.input.K"
// (K its input slot). Scalar initializers and Constant nodes stay constants.
//
// Integer tensors (shapes, indices, masks) are computed on the host as plain
// int64 slices, so the Shape/Gather/Unsqueeze/Concat/Reshape wrappers that
// exporters emit follow the actual input sizes.
//
// In a model package (model.Save) the module is the layer type "ONNXGraph":
// its config holds the ONNX file without initializer data (base64), and the
// weights live in weights.safetensors under the names above, so model.Load
// rebuilds it once package onnx is linked into the program.

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/onnx/onnxpb"
	"github.com/deepgo/deepgo/tensor"
)

// ImportOptions limits what Import accepts.
type ImportOptions struct {
	// MaxValues caps the number of tensor values (initializers, constants
	// and attribute tensors together) the file may hold; zero means
	// DefaultMaxValues. Import checks every size before allocating.
	MaxValues int64
	// MaxNodes caps the number of graph nodes; zero means DefaultMaxNodes.
	MaxNodes int
	// MaxRuntimeValues caps the size of any tensor a node creates from
	// data-dependent sizes at run time (ConstantOfShape, Expand, Pad,
	// Tile-like broadcasts); zero means DefaultMaxRuntimeValues.
	MaxRuntimeValues int64
	// Seed seeds the generator used by Dropout in training mode.
	Seed uint64
}

// Default limits of ImportOptions.
const (
	DefaultMaxValues        = 1 << 28 // 1 GiB of float32
	DefaultMaxNodes         = 1 << 16
	DefaultMaxRuntimeValues = 1 << 26
)

// MinOpset and MaxOpset bound the default-domain opset versions Import
// accepts.
const (
	MinOpset = 7
	MaxOpset = 17
)

// Imported is the result of Import.
type Imported struct {
	// Module is the graph as a trainable module, in eval mode.
	Module *GraphModule
	// Inputs and Outputs describe the graph's (non-initializer) inputs and
	// its outputs; a dimension is -1 when symbolic or unknown.
	Inputs, Outputs []IOInfo
	// Opset is the default-domain opset version of the file.
	Opset int64
	// Producer is the producer name and version recorded in the file.
	Producer string
}

// IOInfo describes one graph input or output.
type IOInfo struct {
	// Name is the value name in the graph.
	Name string
	// DType is "float32" or "int64" (other integer and bool types are
	// reported as "int64", other float types as "float32").
	DType string
	// Shape has -1 for symbolic or unknown dimensions; nil when unknown.
	Shape []int
}

// GraphModule is an imported ONNX graph as an nn.Module. Node holds one
// entry per graph node (nil for nodes without weights), so parameter names
// are "node.<position>.<slot>".
type GraphModule struct {
	nn.Mode
	// Node holds the weights of each node, by position in the graph.
	Node []*NodeParams `nn:"node"`

	g *impGraph `nn:"-"`
}

// NodeParams holds the weights of one node of a GraphModule. Only the
// fields the node uses are set.
type NodeParams struct {
	// Weight is the main weight (Gemm/MatMul/Conv matrix, norm scale,
	// embedding table).
	Weight *tensor.Tensor
	// Bias is the additive bias.
	Bias *tensor.Tensor
	// W, R and B are the LSTM/GRU input weights, recurrent weights and
	// biases in ONNX layout.
	W *tensor.Tensor `nn:"w"`
	R *tensor.Tensor `nn:"r"`
	B *tensor.Tensor `nn:"b"`
	// RunningMean and RunningVar are BatchNormalization statistics.
	RunningMean *tensor.Tensor `nn:",buffer"`
	RunningVar  *tensor.Tensor `nn:",buffer"`
	// Input holds other float initializers by input slot (nil elsewhere).
	Input []*tensor.Tensor
}

// Forward panics: a NodeParams is only a holder of weights, run the
// GraphModule that owns it.
func (p *NodeParams) Forward(*tensor.Tensor) *tensor.Tensor {
	panic("onnx.NodeParams.Forward: a node's weights are not a layer; call the GraphModule's Forward")
}

// impGraph is the validated, topologically sorted graph.
type impGraph struct {
	opset      int64
	nodes      []impNode // topological order
	inputs     []string  // graph inputs (not initializers)
	inputInt   []bool    // input is an integer type
	outputs    []string
	consts     map[string]impVal // constants: non-parameter initializers
	params     map[string]*tensor.Tensor
	skeleton   []byte // the file without parameter data, for model packages
	maxRuntime int64
	rng        *tensor.RNG
}

// impNode is one node with its decoded attributes.
type impNode struct {
	pos     int // position in the file
	op      string
	name    string
	inputs  []string
	outputs []string
	attrs   map[string]*onnxpb.AttributeProto
	consts  map[string]impVal // decoded Constant value
}

// Import reads an ONNX model (the bytes of a .onnx file) and builds a
// trainable GraphModule from it. Unsupported operators are errors naming
// the op, the node and the opset; malformed or hostile files (truncated,
// cyclic, bad references, sizes that do not match or exceed the limits) are
// errors, never panics.
func Import(data []byte, opt ImportOptions) (imp *Imported, err error) {
	defer func() {
		if r := recover(); r != nil {
			imp, err = nil, fmt.Errorf("onnx: import: %v", r)
		}
	}()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("onnx: not an ONNX model: %v", err)
	}
	return importModel(&mp, opt, false)
}

func impLimits(opt ImportOptions) ImportOptions {
	if opt.MaxValues <= 0 {
		opt.MaxValues = DefaultMaxValues
	}
	if opt.MaxNodes <= 0 {
		opt.MaxNodes = DefaultMaxNodes
	}
	if opt.MaxRuntimeValues <= 0 {
		opt.MaxRuntimeValues = DefaultMaxRuntimeValues
	}
	return opt
}

// impWeightSlots names the input slots of ops that hold weights.
var impWeightSlots = map[string][]string{
	"Gemm":               {"", "weight", "bias"},
	"MatMul":             {"weight", "weight"},
	"Conv":               {"", "weight", "bias"},
	"BatchNormalization": {"", "weight", "bias", "running_mean", "running_var"},
	"LayerNormalization": {"", "weight", "bias"},
	"Gather":             {"weight", ""},
	"LSTM":               {"", "w", "r", "b"},
	"GRU":                {"", "w", "r", "b"},
}

func importModel(mp *onnxpb.ModelProto, opt ImportOptions, skeleton bool) (*Imported, error) {
	opt = impLimits(opt)
	g := mp.GetGraph()
	if g == nil {
		return nil, errors.New("onnx: model has no graph")
	}
	opset := int64(-1)
	for _, os := range mp.GetOpsetImport() {
		if d := os.GetDomain(); d == "" || d == "ai.onnx" {
			opset = os.GetVersion()
		}
	}
	if opset < 0 {
		return nil, errors.New("onnx: model imports no default-domain opset")
	}
	if opset < MinOpset || opset > MaxOpset {
		return nil, fmt.Errorf("onnx: opset %d is not supported (deepgo imports opsets %d to %d)", opset, MinOpset, MaxOpset)
	}
	if len(g.GetNode()) > opt.MaxNodes {
		return nil, fmt.Errorf("onnx: graph has %d nodes, over the limit of %d", len(g.GetNode()), opt.MaxNodes)
	}
	if len(g.GetSparseInitializer()) > 0 {
		return nil, errors.New("onnx: sparse initializers are not supported")
	}
	budget := opt.MaxValues
	ig := &impGraph{opset: opset, consts: map[string]impVal{}, params: map[string]*tensor.Tensor{},
		maxRuntime: opt.MaxRuntimeValues, rng: tensor.NewRNG(opt.Seed)}

	// Initializers.
	inits := map[string]*onnxpb.TensorProto{}
	for i, t := range g.GetInitializer() {
		name := t.GetName()
		if name == "" {
			return nil, fmt.Errorf("onnx: initializer %d has no name", i)
		}
		if _, dup := inits[name]; dup {
			return nil, fmt.Errorf("onnx: initializer %q defined twice", name)
		}
		inits[name] = t
	}

	// Nodes: decode, check ops and references.
	produced := map[string]int{}
	for name := range inits {
		produced[name] = -1
	}
	var graphInputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if _, ok := inits[in.GetName()]; ok {
			continue
		}
		if in.GetName() == "" {
			return nil, errors.New("onnx: graph input without a name")
		}
		if _, dup := produced[in.GetName()]; dup {
			return nil, fmt.Errorf("onnx: graph input %q defined twice", in.GetName())
		}
		produced[in.GetName()] = -1
		graphInputs = append(graphInputs, in)
	}
	nodes := make([]impNode, len(g.GetNode()))
	for i, n := range g.GetNode() {
		nd := impNode{pos: i, op: n.GetOpType(), name: n.GetName(), inputs: n.GetInput(), outputs: n.GetOutput(),
			attrs: map[string]*onnxpb.AttributeProto{}}
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("onnx: node %d %q: unsupported op %q in domain %q (opset %d)", i, nd.name, nd.op, d, opset)
		}
		if _, ok := impOps[nd.op]; !ok {
			return nil, fmt.Errorf("onnx: node %d %q: unsupported op %q at opset %d", i, nd.name, nd.op, opset)
		}
		for _, a := range n.GetAttribute() {
			if a.GetRefAttrName() != "" {
				return nil, fmt.Errorf("onnx: node %d %q (%s): attribute references are not supported", i, nd.name, nd.op)
			}
			nd.attrs[a.GetName()] = a
			if t := a.GetT(); t != nil {
				v, err := impDecode(t, &budget)
				if err != nil {
					return nil, fmt.Errorf("onnx: node %d %q (%s) attribute %s: %v", i, nd.name, nd.op, a.GetName(), err)
				}
				if nd.consts == nil {
					nd.consts = map[string]impVal{}
				}
				nd.consts[a.GetName()] = v
			}
			if len(a.GetGraphs()) > 0 || a.GetG() != nil {
				return nil, fmt.Errorf("onnx: node %d %q: unsupported op %q with subgraphs at opset %d", i, nd.name, nd.op, opset)
			}
		}
		if len(nd.outputs) == 0 {
			return nil, fmt.Errorf("onnx: node %d %q (%s) has no outputs", i, nd.name, nd.op)
		}
		if err := impCheckArity(&nd); err != nil {
			return nil, err
		}
		for _, o := range nd.outputs {
			if o == "" {
				continue
			}
			if _, dup := produced[o]; dup {
				return nil, fmt.Errorf("onnx: node %d %q (%s): value %q is defined twice", i, nd.name, nd.op, o)
			}
			produced[o] = i
		}
		nodes[i] = nd
	}
	for i := range nodes {
		for _, in := range nodes[i].inputs {
			if _, ok := produced[in]; !ok && in != "" {
				return nil, fmt.Errorf("onnx: node %d %q (%s): input %q is never defined", i, nodes[i].name, nodes[i].op, in)
			}
		}
	}
	order, err := impTopo(nodes, produced)
	if err != nil {
		return nil, err
	}
	for _, o := range g.GetOutput() {
		if _, ok := produced[o.GetName()]; !ok {
			return nil, fmt.Errorf("onnx: graph output %q is never defined", o.GetName())
		}
		ig.outputs = append(ig.outputs, o.GetName())
	}
	if len(ig.outputs) == 0 {
		return nil, errors.New("onnx: graph has no outputs")
	}

	// Parameters: float initializers with more than one value or in a
	// weight slot; the first consumer (by file position) names them.
	gm := &GraphModule{Node: make([]*NodeParams, len(nodes)), g: ig}
	names := make([]string, 0, len(inits))
	for n := range inits {
		names = append(names, n)
	}
	sort.Strings(names)
	assigned := map[string]bool{}
	// Identity nodes on initializers (the exporter's way of sharing one
	// deduplicated tensor): their consumers name the parameter.
	alias := map[string]string{}
	for _, i := range order {
		nd := &nodes[i]
		if nd.op != "Identity" || len(nd.inputs) != 1 || len(nd.outputs) != 1 {
			continue
		}
		src := nd.inputs[0]
		if a, ok := alias[src]; ok {
			src = a
		}
		if _, ok := inits[src]; ok {
			alias[nd.outputs[0]] = src
		}
	}
	for i := range nodes {
		nd := &nodes[i]
		if nd.op == "Identity" && alias[nd.outputs[0]] != "" {
			continue
		}
		for slot, in := range nd.inputs {
			if a, ok := alias[in]; ok {
				in = a
			}
			t, ok := inits[in]
			if !ok || assigned[in] {
				continue
			}
			if !impIsFloat(t.GetDataType()) {
				continue
			}
			slotName := ""
			if s := impWeightSlots[nd.op]; slot < len(s) {
				slotName = s[slot]
			}
			if slotName == "" && impNumelProto(t) <= 1 {
				continue
			}
			v, err := impDecodeMaybeEmpty(t, &budget, skeleton)
			if err != nil {
				return nil, fmt.Errorf("onnx: initializer %q: %v", in, err)
			}
			p := v.f
			buffer := slotName == "running_mean" || slotName == "running_var"
			p.SetRequiresGrad(!buffer)
			assigned[in] = true
			ig.params[in] = p
			owner := i
			// MatMul + Add(bias) is a Linear: the bias joins the MatMul's
			// weight as node.<MatMul>.bias.
			if nd.op == "Add" && len(nd.inputs) == 2 && p.Dim() == 1 {
				if j, ok := produced[nd.inputs[1-slot]]; ok && j >= 0 && nodes[j].op == "MatMul" &&
					gm.Node[j] != nil && gm.Node[j].Weight != nil && gm.Node[j].Bias == nil {
					gm.Node[j].Bias = p
					continue
				}
			}
			np := gm.Node[owner]
			if np == nil {
				np = &NodeParams{}
				gm.Node[owner] = np
			}
			switch slotName {
			case "weight":
				if np.Weight != nil { // MatMul of two initializers
					slotName = ""
				} else {
					np.Weight = p
				}
			case "bias":
				np.Bias = p
			case "w":
				np.W = p
			case "r":
				np.R = p
			case "b":
				np.B = p
			case "running_mean":
				np.RunningMean = p
			case "running_var":
				np.RunningVar = p
			}
			if slotName == "" {
				for len(np.Input) <= slot {
					np.Input = append(np.Input, nil)
				}
				np.Input[slot] = p
			}
		}
	}
	for _, n := range names {
		if assigned[n] {
			continue
		}
		v, err := impDecodeMaybeEmpty(inits[n], &budget, false)
		if err != nil {
			return nil, fmt.Errorf("onnx: initializer %q: %v", n, err)
		}
		ig.consts[n] = v
	}
	sorted := make([]impNode, len(order))
	for k, i := range order {
		sorted[k] = nodes[i]
	}
	ig.nodes = sorted

	imp := &Imported{Module: gm, Opset: opset, Producer: strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion())}
	for _, in := range graphInputs {
		info := impInfo(in)
		ig.inputs = append(ig.inputs, in.GetName())
		ig.inputInt = append(ig.inputInt, info.DType == "int64")
		imp.Inputs = append(imp.Inputs, info)
	}
	if len(ig.inputs) == 0 {
		return nil, errors.New("onnx: graph has no inputs")
	}
	for _, o := range g.GetOutput() {
		imp.Outputs = append(imp.Outputs, impInfo(o))
	}

	// The skeleton: the same model without the parameters' data.
	sk := proto.Clone(mp).(*onnxpb.ModelProto)
	for _, t := range sk.GetGraph().GetInitializer() {
		if assigned[t.GetName()] {
			t.RawData, t.FloatData, t.DoubleData = nil, nil, nil
		}
	}
	if ig.skeleton, err = proto.Marshal(sk); err != nil {
		return nil, fmt.Errorf("onnx: %v", err)
	}
	nn.Eval(gm)
	return imp, nil
}

// impCheckArity checks the number of inputs of a node against its op.
func impCheckArity(nd *impNode) error {
	a := impOps[nd.op]
	n := len(nd.inputs)
	for n > 0 && nd.inputs[n-1] == "" {
		n--
	}
	if n < a.min || (a.max >= 0 && n > a.max) {
		return fmt.Errorf("onnx: node %d %q (%s) has %d inputs, want %d to %d", nd.pos, nd.name, nd.op, n, a.min, a.max)
	}
	for k := 0; k < a.min; k++ {
		if nd.inputs[k] == "" {
			return fmt.Errorf("onnx: node %d %q (%s): required input %d is empty", nd.pos, nd.name, nd.op, k)
		}
	}
	return nil
}

// impTopo orders the nodes so that every value is produced before it is
// used, and rejects cycles.
func impTopo(nodes []impNode, produced map[string]int) ([]int, error) {
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i := range nodes {
		seen := map[int]bool{}
		for _, in := range nodes[i].inputs {
			if in == "" {
				continue
			}
			if p := produced[in]; p >= 0 && !seen[p] {
				seen[p] = true
				indeg[i]++
				users[p] = append(users[p], i)
			}
		}
	}
	var queue, order []int
	for i := range nodes {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		order = append(order, i)
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	if len(order) != len(nodes) {
		for i := range nodes {
			if indeg[i] > 0 {
				return nil, fmt.Errorf("onnx: graph has a cycle through node %d %q (%s)", i, nodes[i].name, nodes[i].op)
			}
		}
	}
	return order, nil
}

func impInfo(v *onnxpb.ValueInfoProto) IOInfo {
	info := IOInfo{Name: v.GetName(), DType: "float32"}
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return info
	}
	if !impIsFloat(tt.GetElemType()) {
		info.DType = "int64"
	}
	if sh := tt.GetShape(); sh != nil {
		info.Shape = make([]int, len(sh.GetDim()))
		for i, d := range sh.GetDim() {
			info.Shape[i] = -1
			if d.GetDimParam() == "" && d.GetDimValue() > 0 && d.GetDimValue() < 1<<31 {
				info.Shape[i] = int(d.GetDimValue())
			}
		}
	}
	return info
}

func impIsFloat(dt int32) bool {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		return true
	}
	return false
}

// impNumelProto is the number of values a tensor's dims describe, or -1 when
// they are negative or overflow.
func impNumelProto(t *onnxpb.TensorProto) int64 {
	n := int64(1)
	for _, d := range t.GetDims() {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return -1
		}
		n *= d
	}
	return n
}

func impDecodeMaybeEmpty(t *onnxpb.TensorProto, budget *int64, skeleton bool) (impVal, error) {
	if skeleton && len(t.GetRawData()) == 0 && len(t.GetFloatData()) == 0 && len(t.GetDoubleData()) == 0 {
		n := impNumelProto(t)
		if n < 0 || n > *budget {
			return impVal{}, fmt.Errorf("dims %v are negative or over the size limit", t.GetDims())
		}
		*budget -= n
		return impVal{f: tensor.Zeros(impDims(t)...)}, nil
	}
	return impDecode(t, budget)
}

func impDims(t *onnxpb.TensorProto) []int {
	s := make([]int, len(t.GetDims()))
	for i, d := range t.GetDims() {
		s[i] = int(d)
	}
	return s
}

// impDecode turns a TensorProto into a value, checking its size against the
// budget before allocating anything.
func impDecode(t *onnxpb.TensorProto, budget *int64) (impVal, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return impVal{}, errors.New("external data is not supported")
	}
	if len(t.GetDims()) > 8 {
		return impVal{}, fmt.Errorf("rank %d is over 8", len(t.GetDims()))
	}
	n := impNumelProto(t)
	if n < 0 {
		return impVal{}, fmt.Errorf("bad dims %v", t.GetDims())
	}
	if n > *budget {
		return impVal{}, fmt.Errorf("dims %v need %d values, over the limit (%d left)", t.GetDims(), n, *budget)
	}
	*budget -= n
	shape := impDims(t)
	raw := t.GetRawData()
	dt := onnxpb.TensorProto_DataType(t.GetDataType())
	mismatch := func(got int) error {
		return fmt.Errorf("%s tensor with dims %v has %d values of data, want %d", dt, t.GetDims(), got, n)
	}
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		out := make([]float32, n)
		switch {
		case raw != nil:
			if int64(len(raw)) != 4*n {
				return impVal{}, mismatch(len(raw) / 4)
			}
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		default:
			if int64(len(t.GetFloatData())) != n {
				return impVal{}, mismatch(len(t.GetFloatData()))
			}
			copy(out, t.GetFloatData())
		}
		return impVal{f: tensor.FromSlice(out, shape...)}, nil
	case onnxpb.TensorProto_DOUBLE:
		out := make([]float32, n)
		switch {
		case raw != nil:
			if int64(len(raw)) != 8*n {
				return impVal{}, mismatch(len(raw) / 8)
			}
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		default:
			if int64(len(t.GetDoubleData())) != n {
				return impVal{}, mismatch(len(t.GetDoubleData()))
			}
			for i, v := range t.GetDoubleData() {
				out[i] = float32(v)
			}
		}
		return impVal{f: tensor.FromSlice(out, shape...)}, nil
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32, onnxpb.TensorProto_BOOL, onnxpb.TensorProto_INT8,
		onnxpb.TensorProto_UINT8, onnxpb.TensorProto_INT16, onnxpb.TensorProto_UINT16, onnxpb.TensorProto_UINT32:
		size := map[onnxpb.TensorProto_DataType]int64{onnxpb.TensorProto_INT64: 8, onnxpb.TensorProto_INT32: 4,
			onnxpb.TensorProto_BOOL: 1, onnxpb.TensorProto_INT8: 1, onnxpb.TensorProto_UINT8: 1,
			onnxpb.TensorProto_INT16: 2, onnxpb.TensorProto_UINT16: 2, onnxpb.TensorProto_UINT32: 4}[dt]
		out := make([]int64, n)
		switch {
		case raw != nil:
			if int64(len(raw)) != size*n {
				return impVal{}, mismatch(len(raw) / int(size))
			}
			for i := range out {
				b := raw[int64(i)*size:]
				switch dt {
				case onnxpb.TensorProto_INT64:
					out[i] = int64(binary.LittleEndian.Uint64(b))
				case onnxpb.TensorProto_INT32:
					out[i] = int64(int32(binary.LittleEndian.Uint32(b)))
				case onnxpb.TensorProto_UINT32:
					out[i] = int64(binary.LittleEndian.Uint32(b))
				case onnxpb.TensorProto_INT16:
					out[i] = int64(int16(binary.LittleEndian.Uint16(b)))
				case onnxpb.TensorProto_UINT16:
					out[i] = int64(binary.LittleEndian.Uint16(b))
				case onnxpb.TensorProto_INT8:
					out[i] = int64(int8(b[0]))
				default:
					out[i] = int64(b[0])
				}
			}
		case dt == onnxpb.TensorProto_INT64:
			if int64(len(t.GetInt64Data())) != n {
				return impVal{}, mismatch(len(t.GetInt64Data()))
			}
			copy(out, t.GetInt64Data())
		default:
			if int64(len(t.GetInt32Data())) != n {
				return impVal{}, mismatch(len(t.GetInt32Data()))
			}
			for i, v := range t.GetInt32Data() {
				out[i] = int64(v)
			}
		}
		return impVal{i: out, shape: shape}, nil
	}
	return impVal{}, fmt.Errorf("data type %s is not supported", dt)
}

// Forward runs the graph on its single input x and returns its first
// output. Integer graph inputs (token ids) take an int64 tensor (a float32
// tensor is truncated). It panics, naming the node, when the input does not
// fit the graph; Run returns an error instead.
func (m *GraphModule) Forward(x *tensor.Tensor) *tensor.Tensor {
	return m.ForwardAll(x)[0]
}

// ForwardAll runs the graph on its inputs, in graph order, and returns all
// of its outputs. It panics when an input does not fit the graph.
func (m *GraphModule) ForwardAll(inputs ...*tensor.Tensor) []*tensor.Tensor {
	if m == nil || m.g == nil {
		panic("onnx.GraphModule.Forward: module was not made by Import")
	}
	return m.g.run(inputs, m.Training())
}

// Run is ForwardAll that returns an error instead of panicking.
func (m *GraphModule) Run(inputs ...*tensor.Tensor) (out []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return m.ForwardAll(inputs...), nil
}

// ONNX returns the graph as an ONNX file with the module's current weights,
// so that a fine-tuned import can be exported again.
func (m *GraphModule) ONNX() ([]byte, error) {
	if m == nil || m.g == nil {
		return nil, errors.New("onnx: module was not made by Import")
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(m.g.skeleton, &mp); err != nil {
		return nil, fmt.Errorf("onnx: %v", err)
	}
	for _, t := range mp.GetGraph().GetInitializer() {
		p, ok := m.g.params[t.GetName()]
		if !ok {
			continue
		}
		data := p.Data()
		raw := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		t.DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
		t.RawData, t.FloatData, t.DoubleData = raw, nil, nil
	}
	return proto.Marshal(&mp)
}

// LayerType is the model-registry type name of an imported graph.
const LayerType = "ONNXGraph"

type impSpecConfig struct {
	// ONNX is the base64 of the ONNX file without the parameters' data.
	ONNX string `json:"onnx"`
}

func init() {
	model.Register(LayerType, func(spec model.LayerSpec, ctx *model.BuildContext) (nn.Module, error) {
		var c impSpecConfig
		if err := spec.DecodeConfig(&c); err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(c.ONNX)
		if err != nil {
			return nil, fmt.Errorf("onnx config: %v", err)
		}
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(raw, &mp); err != nil {
			return nil, fmt.Errorf("onnx config: not an ONNX model: %v", err)
		}
		var n int64
		for _, t := range mp.GetGraph().GetInitializer() {
			if k := impNumelProto(t); k > 0 {
				n += k
			}
		}
		if err := ctx.Reserve(n); err != nil {
			return nil, err
		}
		imp, err := importModel(&mp, ImportOptions{}, true)
		if err != nil {
			return nil, err
		}
		return imp.Module, nil
	})
	model.RegisterEncoder((*GraphModule)(nil), func(m nn.Module) (model.LayerSpec, error) {
		g := m.(*GraphModule)
		if g.g == nil {
			return model.LayerSpec{}, errors.New("onnx: GraphModule was not made by Import")
		}
		return model.NewLayerSpec(LayerType, impSpecConfig{ONNX: base64.StdEncoding.EncodeToString(g.g.skeleton)})
	})
}

// Signature returns the model-package signature of an imported graph: its
// first input and output with their dtypes and shapes (-1 for symbolic
// dimensions). An output whose shape the file does not record is measured
// by running the module once on zeros, which needs an input shape that is
// known but for its first (batch) dimension.
func (imp *Imported) Signature() (model.Signature, error) {
	var sig model.Signature
	if imp == nil || imp.Module == nil || len(imp.Inputs) == 0 || len(imp.Outputs) == 0 {
		return sig, errors.New("onnx: nothing imported")
	}
	in, out := imp.Inputs[0], imp.Outputs[0]
	if len(in.Shape) == 0 {
		return sig, fmt.Errorf("onnx: input %q has no recorded shape", in.Name)
	}
	if len(out.Shape) == 0 {
		shape := append([]int(nil), in.Shape...)
		for i, d := range shape {
			if d == -1 {
				if i > 0 {
					return sig, fmt.Errorf("onnx: output %q has no recorded shape and input %q has symbolic dimensions", out.Name, in.Name)
				}
				shape[i] = 1
			}
		}
		if impNumel(shape) > DefaultMaxRuntimeValues {
			return sig, fmt.Errorf("onnx: input shape %v is too large to measure the output", shape)
		}
		x := tensor.Zeros(shape...)
		if in.DType == "int64" {
			x = tensor.ZerosInt64(shape...)
		}
		var ys []*tensor.Tensor
		var err error
		tensor.NoGrad(func() { ys, err = imp.Module.Run(x) })
		if err != nil {
			return sig, fmt.Errorf("onnx: measuring output %q: %v", out.Name, err)
		}
		out.Shape = ys[0].Shape()
		if len(out.Shape) > 0 && in.Shape[0] == -1 {
			out.Shape[0] = -1
		}
		if ys[0].DType() == tensor.Int64 {
			out.DType = "int64"
		}
	}
	sig.Inputs = []model.TensorSpec{{Name: in.Name, DType: in.DType, Shape: in.Shape}}
	sig.Outputs = []model.TensorSpec{{Name: out.Name, DType: out.DType, Shape: out.Shape}}
	return sig, sig.Validate()
}
