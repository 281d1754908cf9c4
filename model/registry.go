package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"sync"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// LayerSpec describes one layer of an architecture: its registered type name,
// its configuration (a JSON object whose fields depend on the type), and for
// containers such as Sequential the specs of its children, in order.
type LayerSpec struct {
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config,omitempty"`
	Layers []LayerSpec     `json:"layers,omitempty"`
}

// DecodeConfig decodes s.Config into v strictly: unknown fields and trailing
// data are errors. Fields absent from the config keep the values v already
// holds, so fill v with the defaults first. An empty or null config leaves v
// unchanged.
func (s LayerSpec) DecodeConfig(v any) error {
	raw := bytes.TrimSpace(s.Config)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("config: unexpected data after the JSON object")
	}
	return nil
}

// NewLayerSpec makes a leaf LayerSpec of the given type whose config is the
// JSON encoding of config (nil for none).
func NewLayerSpec(typeName string, config any) (LayerSpec, error) {
	s := LayerSpec{Type: typeName}
	if config == nil {
		return s, nil
	}
	raw, err := json.Marshal(config)
	if err != nil {
		return LayerSpec{}, fmt.Errorf("model: %s config: %v", typeName, err)
	}
	s.Config = raw
	return s, nil
}

// Builder makes a module from its spec. Builders of containers make their
// children with ctx.Child. A builder returns an error for a bad config; if it
// panics (as nn constructors do on bad sizes), the panic becomes an error
// naming the layer.
type Builder func(spec LayerSpec, ctx *BuildContext) (nn.Module, error)

// Encoder describes a module as a LayerSpec, the inverse of a Builder.
// Encoders of containers describe their children with Spec.
type Encoder func(m nn.Module) (LayerSpec, error)

var registry = struct {
	sync.RWMutex
	builders map[string]Builder
	encoders map[reflect.Type]Encoder
}{builders: map[string]Builder{}, encoders: map[reflect.Type]Encoder{}}

// Register makes typeName buildable from a spec. It panics if the name is
// empty or already registered, or if build is nil; call it from an init
// function.
func Register(typeName string, build Builder) {
	if typeName == "" || build == nil {
		panic("model.Register: empty type name or nil builder")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.builders[typeName]; dup {
		panic(fmt.Sprintf("model.Register: layer type %q registered twice", typeName))
	}
	registry.builders[typeName] = build
}

// RegisterEncoder makes Spec describe modules of prototype's dynamic type
// (for example (*MyLayer)(nil)) with encode. It panics if prototype is nil,
// encode is nil or the type already has an encoder.
func RegisterEncoder(prototype nn.Module, encode Encoder) {
	if prototype == nil || encode == nil {
		panic("model.RegisterEncoder: nil prototype or encoder")
	}
	t := reflect.TypeOf(prototype)
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.encoders[t]; dup {
		panic(fmt.Sprintf("model.RegisterEncoder: type %v registered twice", t))
	}
	registry.encoders[t] = encode
}

// LayerTypes lists the registered layer type names, sorted.
func LayerTypes() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.builders))
	for k := range registry.builders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookupBuilder(typeName string) (Builder, bool) {
	registry.RLock()
	defer registry.RUnlock()
	b, ok := registry.builders[typeName]
	return b, ok
}

// BuildOptions configures Build.
type BuildOptions struct {
	// RNG initialises the new parameters; nil means tensor.NewRNG(0). The
	// initial values do not matter when weights are loaded afterwards.
	RNG *tensor.RNG
	// MaxValues, when positive, caps the number of parameter and buffer
	// values the built-in layers may allocate, so that a hostile or mistyped
	// spec is refused before it exhausts memory. Load allows the number of
	// values in weights.safetensors plus LoadSlack.
	MaxValues int64
}

// LoadSlack is how many parameter values Load lets an architecture ask for
// beyond those in weights.safetensors (64 Mi values, 256 MiB of float32):
// enough to report a mis-shaped weight by name, small enough that a
// mistyped size cannot exhaust memory.
const LoadSlack = 1 << 26

// BuildContext is what a Builder gets besides its spec: the RNG for
// initialisation, the way to build children, and the value budget.
type BuildContext struct {
	rng    *tensor.RNG
	path   string
	budget *int64 // nil: unlimited
}

// RNG returns the generator to initialise parameters with.
func (c *BuildContext) RNG() *tensor.RNG { return c.rng }

// Path returns the position of the layer being built, such as
// "architecture.layers[2]", for error messages.
func (c *BuildContext) Path() string { return c.path }

// Reserve claims n parameter or buffer values from the budget and fails when
// the spec needs more values than allowed (see BuildOptions.MaxValues).
// Builders call it before allocating.
func (c *BuildContext) Reserve(n int64) error {
	if n < 0 {
		return fmt.Errorf("layer needs a negative or overflowing number of values")
	}
	if c.budget == nil {
		return nil
	}
	if n > *c.budget {
		return fmt.Errorf("layer needs %d parameter values, over the limit (%d left)", n, *c.budget)
	}
	*c.budget -= n
	return nil
}

// Child builds the child spec named name (such as "layers[3]") below the
// current layer.
func (c *BuildContext) Child(name string, spec LayerSpec) (nn.Module, error) {
	sub := &BuildContext{rng: c.rng, path: c.path + "." + name, budget: c.budget}
	return sub.build(spec)
}

// Build makes a module from spec with the registered builders. Errors name
// the layer's position in the spec ("architecture.layers[2] (Linear): ...");
// Build never panics on a bad spec.
func Build(spec LayerSpec, opt BuildOptions) (nn.Module, error) {
	ctx := &BuildContext{rng: opt.RNG, path: "architecture"}
	if ctx.rng == nil {
		ctx.rng = tensor.NewRNG(0)
	}
	if opt.MaxValues > 0 {
		b := opt.MaxValues
		ctx.budget = &b
	}
	return ctx.build(spec)
}

func (c *BuildContext) build(spec LayerSpec) (m nn.Module, err error) {
	if spec.Type == "" {
		return nil, &layerError{fmt.Errorf("%s: layer has no \"type\"", c.path)}
	}
	b, ok := lookupBuilder(spec.Type)
	if !ok {
		return nil, &layerError{fmt.Errorf("%s: unknown layer type %q", c.path, spec.Type)}
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, &layerError{fmt.Errorf("%s (%s): %v", c.path, spec.Type, r)}
		}
	}()
	m, err = b(spec, c)
	if err != nil {
		var le *layerError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, &layerError{fmt.Errorf("%s (%s): %w", c.path, spec.Type, err)}
	}
	if m == nil || (reflect.ValueOf(m).Kind() == reflect.Pointer && reflect.ValueOf(m).IsNil()) {
		return nil, &layerError{fmt.Errorf("%s (%s): builder returned no module", c.path, spec.Type)}
	}
	return m, nil
}

// layerError marks an error already prefixed with a layer path, so that
// containers do not prefix it again.
type layerError struct{ err error }

func (e *layerError) Error() string { return e.err.Error() }
func (e *layerError) Unwrap() error { return e.err }

// Spec describes m as a LayerSpec: the built-in nn layers and Sequential
// directly, other types through the encoders added with RegisterEncoder. It
// fails for a module type it cannot describe, naming the Go type.
func Spec(m nn.Module) (LayerSpec, error) {
	if m == nil || (reflect.ValueOf(m).Kind() == reflect.Pointer && reflect.ValueOf(m).IsNil()) {
		return LayerSpec{}, errors.New("model.Spec: nil module")
	}
	if s, ok, err := builtinSpec(m); ok {
		return s, err
	}
	registry.RLock()
	enc, ok := registry.encoders[reflect.TypeOf(m)]
	registry.RUnlock()
	if !ok {
		return LayerSpec{}, fmt.Errorf("model.Spec: no encoder for module type %T (register one with model.RegisterEncoder)", m)
	}
	return enc(m)
}

// ---- built-in layers ----

// pair is an int or [int, int] in JSON, as PyTorch's kernel_size, stride, …
type pair [2]int

func (p *pair) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*p = pair{n, n}
		return nil
	}
	var a []int
	if err := json.Unmarshal(b, &a); err != nil || len(a) != 2 {
		return fmt.Errorf("want an integer or a pair of integers, got %s", b)
	}
	*p = pair{a[0], a[1]}
	return nil
}

func (p pair) MarshalJSON() ([]byte, error) {
	if p[0] == p[1] {
		return []byte(strconv.Itoa(p[0])), nil
	}
	return []byte(fmt.Sprintf("[%d,%d]", p[0], p[1])), nil
}

// dims is an int or a list of ints in JSON (LayerNorm's normalized_shape).
type dims []int

func (d *dims) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*d = dims{n}
		return nil
	}
	var a []int
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("want an integer or a list of integers, got %s", b)
	}
	*d = a
	return nil
}

// maxGeom bounds kernel sizes, strides, padding and dilation, far above any
// real network, so that a bad spec cannot ask for absurd allocations.
const maxGeom = 1 << 16

func checkPair(name string, p pair, lo int) error {
	for _, v := range p {
		if v < lo || v > maxGeom {
			return fmt.Errorf("%s %v out of range [%d, %d]", name, p, lo, maxGeom)
		}
	}
	return nil
}

// mul multiplies positive sizes, returning -1 on overflow or a non-positive factor.
func mul(xs ...int) int64 {
	n := int64(1)
	for _, x := range xs {
		if x <= 0 {
			return -1
		}
		if n > math.MaxInt64/int64(x) {
			return -1
		}
		n *= int64(x)
	}
	return n
}

func leaf(f func(spec LayerSpec, ctx *BuildContext) (nn.Module, error)) Builder {
	return func(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
		if len(spec.Layers) > 0 {
			return nil, errors.New("this layer type takes no \"layers\"")
		}
		return f(spec, ctx)
	}
}

// noConfig builds a parameter-free layer without options.
func noConfig(mk func() nn.Module) Builder {
	return leaf(func(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
		var cfg struct{}
		if err := spec.DecodeConfig(&cfg); err != nil {
			return nil, err
		}
		return mk(), nil
	})
}

type linearConfig struct {
	InFeatures  int  `json:"in_features"`
	OutFeatures int  `json:"out_features"`
	Bias        bool `json:"bias"`
}

type conv2DConfig struct {
	InChannels  int  `json:"in_channels"`
	OutChannels int  `json:"out_channels"`
	KernelSize  pair `json:"kernel_size"`
	Stride      pair `json:"stride"`
	Padding     pair `json:"padding"`
	Dilation    pair `json:"dilation"`
	Groups      int  `json:"groups"`
	Bias        bool `json:"bias"`
}

type maxPoolConfig struct {
	KernelSize pair  `json:"kernel_size"`
	Stride     *pair `json:"stride"`
	Padding    pair  `json:"padding"`
	Dilation   pair  `json:"dilation"`
	CeilMode   bool  `json:"ceil_mode"`
}

type avgPoolConfig struct {
	KernelSize      pair  `json:"kernel_size"`
	Stride          *pair `json:"stride"`
	Padding         pair  `json:"padding"`
	CeilMode        bool  `json:"ceil_mode"`
	CountIncludePad bool  `json:"count_include_pad"`
}

type flattenConfig struct {
	StartDim int `json:"start_dim"`
	EndDim   int `json:"end_dim"`
}

type dropoutConfig struct {
	P float32 `json:"p"`
}

type batchNormConfig struct {
	NumFeatures       int     `json:"num_features"`
	Eps               float32 `json:"eps"`
	Momentum          float32 `json:"momentum"`
	Affine            bool    `json:"affine"`
	TrackRunningStats bool    `json:"track_running_stats"`
}

type layerNormConfig struct {
	NormalizedShape   dims    `json:"normalized_shape"`
	Eps               float32 `json:"eps"`
	ElementwiseAffine bool    `json:"elementwise_affine"`
}

type embeddingConfig struct {
	NumEmbeddings int  `json:"num_embeddings"`
	EmbeddingDim  int  `json:"embedding_dim"`
	PaddingIdx    *int `json:"padding_idx"`
}

type leakyReLUConfig struct {
	NegativeSlope float32 `json:"negative_slope"`
}

type geluConfig struct {
	Approximate string `json:"approximate"`
}

type dimConfig struct {
	Dim *int `json:"dim"`
}

func buildLinear(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := linearConfig{Bias: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.InFeatures <= 0 || cfg.OutFeatures <= 0 {
		return nil, fmt.Errorf("in_features %d and out_features %d must be positive", cfg.InFeatures, cfg.OutFeatures)
	}
	n := mul(cfg.InFeatures, cfg.OutFeatures)
	if cfg.Bias && n >= 0 {
		n += int64(cfg.OutFeatures)
	}
	if err := ctx.Reserve(n); err != nil {
		return nil, err
	}
	return nn.NewLinear(ctx.RNG(), cfg.InFeatures, cfg.OutFeatures, cfg.Bias), nil
}

func buildConv2D(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := conv2DConfig{Stride: pair{1, 1}, Dilation: pair{1, 1}, Groups: 1, Bias: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	g := cfg.Groups
	if cfg.InChannels <= 0 || cfg.OutChannels <= 0 || g <= 0 || cfg.InChannels%g != 0 || cfg.OutChannels%g != 0 {
		return nil, fmt.Errorf("in_channels %d and out_channels %d must be positive multiples of groups %d", cfg.InChannels, cfg.OutChannels, g)
	}
	for _, c := range []struct {
		name string
		p    pair
		lo   int
	}{{"kernel_size", cfg.KernelSize, 1}, {"stride", cfg.Stride, 1}, {"padding", cfg.Padding, 0}, {"dilation", cfg.Dilation, 1}} {
		if err := checkPair(c.name, c.p, c.lo); err != nil {
			return nil, err
		}
	}
	kh, kw := cfg.KernelSize[0], cfg.KernelSize[1]
	n := mul(cfg.OutChannels, cfg.InChannels/g, kh, kw)
	if cfg.Bias && n >= 0 {
		n += int64(cfg.OutChannels)
	}
	if err := ctx.Reserve(n); err != nil {
		return nil, err
	}
	opt := tensor.Conv2DOptions{Stride: cfg.Stride, Padding: cfg.Padding, Dilation: cfg.Dilation, Groups: g}
	if kh == kw {
		return nn.NewConv2D(ctx.RNG(), cfg.InChannels, cfg.OutChannels, kh, opt, cfg.Bias), nil
	}
	// Non-square kernel: the same initialisation as nn.NewConv2D.
	c := &nn.Conv2D{Options: opt}
	c.Weight = nn.KaimingUniform(tensor.Zeros(cfg.OutChannels, cfg.InChannels/g, kh, kw), math.Sqrt(5), ctx.RNG()).SetRequiresGrad(true)
	if cfg.Bias {
		b := 1 / math.Sqrt(float64(cfg.InChannels/g*kh*kw))
		c.Bias = nn.Uniform(tensor.Zeros(cfg.OutChannels), -b, b, ctx.RNG()).SetRequiresGrad(true)
	}
	return c, nil
}

func buildMaxPool2D(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
	cfg := maxPoolConfig{Dilation: pair{1, 1}}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	stride := cfg.KernelSize
	if cfg.Stride != nil {
		stride = *cfg.Stride
	}
	if err := checkPools(cfg.KernelSize, stride, cfg.Padding); err != nil {
		return nil, err
	}
	if err := checkPair("dilation", cfg.Dilation, 1); err != nil {
		return nil, err
	}
	return &nn.MaxPool2D{Options: tensor.Pool2DOptions{Kernel: cfg.KernelSize, Stride: stride,
		Padding: cfg.Padding, Dilation: cfg.Dilation, CeilMode: cfg.CeilMode}}, nil
}

func checkPools(kernel, stride, padding pair) error {
	if err := checkPair("kernel_size", kernel, 1); err != nil {
		return err
	}
	if err := checkPair("stride", stride, 1); err != nil {
		return err
	}
	if err := checkPair("padding", padding, 0); err != nil {
		return err
	}
	if padding[0] > kernel[0]/2 || padding[1] > kernel[1]/2 {
		return fmt.Errorf("padding %v must be at most half of kernel_size %v", padding, kernel)
	}
	return nil
}

func buildAvgPool2D(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
	cfg := avgPoolConfig{CountIncludePad: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	stride := cfg.KernelSize
	if cfg.Stride != nil {
		stride = *cfg.Stride
	}
	if err := checkPools(cfg.KernelSize, stride, cfg.Padding); err != nil {
		return nil, err
	}
	return &nn.AvgPool2D{Options: tensor.Pool2DOptions{Kernel: cfg.KernelSize, Stride: stride,
		Padding: cfg.Padding, CeilMode: cfg.CeilMode, ExcludePad: !cfg.CountIncludePad}}, nil
}

func buildFlatten(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
	cfg := flattenConfig{StartDim: 1, EndDim: -1}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	return &nn.Flatten{StartDim: cfg.StartDim, EndDim: cfg.EndDim}, nil
}

func buildDropout(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := dropoutConfig{P: 0.5}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if !(cfg.P >= 0 && cfg.P <= 1) {
		return nil, fmt.Errorf("p %v not in [0, 1]", cfg.P)
	}
	return nn.NewDropout(ctx.RNG(), cfg.P), nil
}

func batchNormOptions(spec LayerSpec, ctx *BuildContext) (int, nn.BatchNormOptions, error) {
	cfg := batchNormConfig{Eps: 1e-5, Momentum: 0.1, Affine: true, TrackRunningStats: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return 0, nn.BatchNormOptions{}, err
	}
	if cfg.NumFeatures <= 0 {
		return 0, nn.BatchNormOptions{}, fmt.Errorf("num_features %d must be positive", cfg.NumFeatures)
	}
	n := int64(0)
	if cfg.Affine {
		n += 2 * int64(cfg.NumFeatures)
	}
	if cfg.TrackRunningStats {
		n += 2*int64(cfg.NumFeatures) + 1
	}
	if err := ctx.Reserve(n); err != nil {
		return 0, nn.BatchNormOptions{}, err
	}
	return cfg.NumFeatures, nn.BatchNormOptions{Eps: cfg.Eps, Momentum: cfg.Momentum, Affine: cfg.Affine, TrackRunningStats: cfg.TrackRunningStats}, nil
}

func buildBatchNorm1D(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	c, opt, err := batchNormOptions(spec, ctx)
	if err != nil {
		return nil, err
	}
	return nn.NewBatchNorm1D(c, opt), nil
}

func buildBatchNorm2D(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	c, opt, err := batchNormOptions(spec, ctx)
	if err != nil {
		return nil, err
	}
	return nn.NewBatchNorm2D(c, opt), nil
}

func buildLayerNorm(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg := layerNormConfig{Eps: 1e-5, ElementwiseAffine: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	n := mul(cfg.NormalizedShape...)
	if len(cfg.NormalizedShape) == 0 || n < 0 {
		return nil, fmt.Errorf("normalized_shape %v must be a non-empty list of positive sizes", []int(cfg.NormalizedShape))
	}
	if !cfg.ElementwiseAffine {
		n = 0
	}
	if err := ctx.Reserve(2 * n); err != nil {
		return nil, err
	}
	l := nn.NewLayerNorm(cfg.NormalizedShape, cfg.ElementwiseAffine)
	l.Eps = cfg.Eps
	return l, nil
}

func buildEmbedding(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	var cfg embeddingConfig
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	n := mul(cfg.NumEmbeddings, cfg.EmbeddingDim)
	if n < 0 {
		return nil, fmt.Errorf("num_embeddings %d and embedding_dim %d must be positive", cfg.NumEmbeddings, cfg.EmbeddingDim)
	}
	pad := -1
	if cfg.PaddingIdx != nil {
		pad = *cfg.PaddingIdx
		if pad < 0 {
			pad += cfg.NumEmbeddings // PyTorch's negative padding_idx
		}
		if pad < 0 || pad >= cfg.NumEmbeddings {
			return nil, fmt.Errorf("padding_idx %d out of range for %d embeddings", *cfg.PaddingIdx, cfg.NumEmbeddings)
		}
	}
	if err := ctx.Reserve(n); err != nil {
		return nil, err
	}
	return nn.NewEmbedding(ctx.RNG(), cfg.NumEmbeddings, cfg.EmbeddingDim, pad), nil
}

func buildLeakyReLU(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
	cfg := leakyReLUConfig{NegativeSlope: 0.01}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	return &nn.LeakyReLU{Slope: cfg.NegativeSlope}, nil
}

func buildGELU(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
	cfg := geluConfig{Approximate: "none"}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	switch cfg.Approximate {
	case "none":
		return &nn.GELU{}, nil
	case "tanh":
		return &nn.GELU{Approximate: true}, nil
	}
	return nil, fmt.Errorf("approximate must be \"none\" or \"tanh\", got %q", cfg.Approximate)
}

func dimOf(spec LayerSpec) (int, error) {
	var cfg dimConfig
	if err := spec.DecodeConfig(&cfg); err != nil {
		return 0, err
	}
	if cfg.Dim == nil {
		return 0, errors.New("config needs \"dim\"")
	}
	return *cfg.Dim, nil
}

func buildSequential(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	if err := spec.DecodeConfig(&struct{}{}); err != nil {
		return nil, err
	}
	s := nn.NewSequential()
	for i, l := range spec.Layers {
		m, err := ctx.Child("layers["+strconv.Itoa(i)+"]", l)
		if err != nil {
			return nil, err
		}
		s.Append(m)
	}
	return s, nil
}

func init() {
	builtins := map[string]Builder{
		"Sequential":  buildSequential,
		"Linear":      leaf(buildLinear),
		"Conv2D":      leaf(buildConv2D),
		"MaxPool2D":   leaf(buildMaxPool2D),
		"AvgPool2D":   leaf(buildAvgPool2D),
		"Flatten":     leaf(buildFlatten),
		"Dropout":     leaf(buildDropout),
		"BatchNorm1D": leaf(buildBatchNorm1D),
		"BatchNorm2D": leaf(buildBatchNorm2D),
		"LayerNorm":   leaf(buildLayerNorm),
		"Embedding":   leaf(buildEmbedding),
		"ReLU":        noConfig(func() nn.Module { return &nn.ReLU{} }),
		"Sigmoid":     noConfig(func() nn.Module { return &nn.Sigmoid{} }),
		"Tanh":        noConfig(func() nn.Module { return &nn.Tanh{} }),
		"LeakyReLU":   leaf(buildLeakyReLU),
		"GELU":        leaf(buildGELU),
		"Softmax": leaf(func(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
			d, err := dimOf(spec)
			return &nn.Softmax{Dim: d}, err
		}),
		"LogSoftmax": leaf(func(spec LayerSpec, _ *BuildContext) (nn.Module, error) {
			d, err := dimOf(spec)
			return &nn.LogSoftmax{Dim: d}, err
		}),
	}
	for name, b := range builtins {
		Register(name, b)
	}
	// PyTorch's spellings, accepted when reading; Spec writes the names above.
	for alias, name := range map[string]string{
		"Conv2d": "Conv2D", "MaxPool2d": "MaxPool2D", "AvgPool2d": "AvgPool2D",
		"BatchNorm1d": "BatchNorm1D", "BatchNorm2d": "BatchNorm2D",
	} {
		Register(alias, builtins[name])
	}
}

// orOne maps PyTorch's implicit zero options to their meaning.
func orOne(p pair) pair {
	for i := range p {
		if p[i] == 0 {
			p[i] = 1
		}
	}
	return p
}

func orKernel(stride, kernel pair) pair {
	for i := range stride {
		if stride[i] == 0 {
			stride[i] = kernel[i]
		}
	}
	return stride
}

// builtinSpec describes the nn layers; ok is false for other types.
func builtinSpec(m nn.Module) (s LayerSpec, ok bool, err error) {
	var cfg any
	var typ string
	switch l := m.(type) {
	case *nn.Sequential:
		s = LayerSpec{Type: "Sequential", Layers: make([]LayerSpec, 0, len(l.Layers))}
		for i, c := range l.Layers {
			cs, err := Spec(c)
			if err != nil {
				return LayerSpec{}, true, fmt.Errorf("layers[%d]: %w", i, err)
			}
			s.Layers = append(s.Layers, cs)
		}
		return s, true, nil
	case *nn.Linear:
		if l.Weight == nil || l.Weight.Dim() != 2 {
			return LayerSpec{}, true, errors.New("model.Spec: Linear without a 2-d weight")
		}
		typ, cfg = "Linear", linearConfig{InFeatures: l.Weight.Size(1), OutFeatures: l.Weight.Size(0), Bias: l.Bias != nil}
	case *nn.Conv2D:
		if l.Weight == nil || l.Weight.Dim() != 4 {
			return LayerSpec{}, true, errors.New("model.Spec: Conv2D without a 4-d weight")
		}
		g := max(l.Options.Groups, 1)
		typ, cfg = "Conv2D", conv2DConfig{
			InChannels: l.Weight.Size(1) * g, OutChannels: l.Weight.Size(0),
			KernelSize: pair{l.Weight.Size(2), l.Weight.Size(3)},
			Stride:     orOne(l.Options.Stride), Padding: l.Options.Padding, Dilation: orOne(l.Options.Dilation),
			Groups: g, Bias: l.Bias != nil,
		}
	case *nn.MaxPool2D:
		o := l.Options
		if o.ExcludePad {
			return LayerSpec{}, true, errors.New("model.Spec: MaxPool2D with ExcludePad cannot be described")
		}
		st := orKernel(o.Stride, o.Kernel)
		typ, cfg = "MaxPool2D", maxPoolConfig{KernelSize: o.Kernel, Stride: &st, Padding: o.Padding, Dilation: orOne(o.Dilation), CeilMode: o.CeilMode}
	case *nn.AvgPool2D:
		o := l.Options
		st := orKernel(o.Stride, o.Kernel)
		typ, cfg = "AvgPool2D", avgPoolConfig{KernelSize: o.Kernel, Stride: &st, Padding: o.Padding, CeilMode: o.CeilMode, CountIncludePad: !o.ExcludePad}
	case *nn.Flatten:
		typ, cfg = "Flatten", flattenConfig{StartDim: l.StartDim, EndDim: l.EndDim}
	case *nn.Dropout:
		typ, cfg = "Dropout", dropoutConfig{P: l.P}
	case *nn.BatchNorm1D:
		typ, cfg = "BatchNorm1D", batchNormConfig{NumFeatures: l.NumFeatures, Eps: l.Eps, Momentum: l.Momentum, Affine: l.Weight != nil, TrackRunningStats: l.RunningMean != nil}
	case *nn.BatchNorm2D:
		typ, cfg = "BatchNorm2D", batchNormConfig{NumFeatures: l.NumFeatures, Eps: l.Eps, Momentum: l.Momentum, Affine: l.Weight != nil, TrackRunningStats: l.RunningMean != nil}
	case *nn.LayerNorm:
		typ, cfg = "LayerNorm", layerNormConfig{NormalizedShape: dims(l.NormalizedShape), Eps: l.Eps, ElementwiseAffine: l.Weight != nil}
	case *nn.Embedding:
		if l.Weight == nil || l.Weight.Dim() != 2 {
			return LayerSpec{}, true, errors.New("model.Spec: Embedding without a 2-d weight")
		}
		c := embeddingConfig{NumEmbeddings: l.Weight.Size(0), EmbeddingDim: l.Weight.Size(1)}
		if l.PaddingIdx >= 0 {
			p := l.PaddingIdx
			c.PaddingIdx = &p
		}
		typ, cfg = "Embedding", c
	case *nn.ReLU:
		typ = "ReLU"
	case *nn.Sigmoid:
		typ = "Sigmoid"
	case *nn.Tanh:
		typ = "Tanh"
	case *nn.LeakyReLU:
		typ, cfg = "LeakyReLU", leakyReLUConfig{NegativeSlope: l.Slope}
	case *nn.GELU:
		a := "none"
		if l.Approximate {
			a = "tanh"
		}
		typ, cfg = "GELU", geluConfig{Approximate: a}
	case *nn.Softmax:
		d := l.Dim
		typ, cfg = "Softmax", dimConfig{Dim: &d}
	case *nn.LogSoftmax:
		d := l.Dim
		typ, cfg = "LogSoftmax", dimConfig{Dim: &d}
	default:
		return LayerSpec{}, false, nil
	}
	s, err = NewLayerSpec(typ, cfg)
	return s, true, err
}
