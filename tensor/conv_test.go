package tensor_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

const convFixtures = "tensor/testdata/torch_conv.safetensors"

// convCaseMeta is the JSON that tools/fixtures/conv.py stores per case.
type convCaseMeta struct {
	Kind            string `json:"kind"`
	Kernel          [2]int `json:"kernel"`
	Stride          [2]int `json:"stride"`
	Padding         [2]int `json:"padding"`
	Dilation        [2]int `json:"dilation"`
	Groups          int    `json:"groups"`
	Bias            bool   `json:"bias"`
	CeilMode        bool   `json:"ceil_mode"`
	CountIncludePad bool   `json:"count_include_pad"`
}

// fixtureCases returns the sorted case names with the given prefix and their
// options, failing unless there are at least min of them.
func fixtureCases(t *testing.T, f *testutil.Fixtures, prefix string, min int) ([]string, map[string]convCaseMeta) {
	t.Helper()
	var names []string
	metas := map[string]convCaseMeta{}
	for _, n := range f.Names() {
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ".y") {
			continue
		}
		name := strings.TrimSuffix(n, ".y")
		var m convCaseMeta
		if err := json.Unmarshal([]byte(f.Meta(name)), &m); err != nil {
			t.Fatalf("metadata of %s: %v", name, err)
		}
		names = append(names, name)
		metas[name] = m
	}
	sort.Strings(names)
	if len(names) < min {
		t.Fatalf("%s holds %d %s* cases, want at least %d", convFixtures, len(names), prefix, min)
	}
	return names, metas
}

func TestConv2DGolden(t *testing.T) {
	f := testutil.LoadFixtures(t, convFixtures)
	names, metas := fixtureCases(t, f, "conv_", 6)
	for _, name := range names {
		m := metas[name]
		t.Run(name, func(t *testing.T) {
			x := f.Get(t, name+".x").SetRequiresGrad(true)
			w := f.Get(t, name+".w").SetRequiresGrad(true)
			var b *tensor.Tensor
			if m.Bias {
				b = f.Get(t, name+".b").SetRequiresGrad(true)
			}
			y := tensor.Conv2D(x, w, b, tensor.Conv2DOptions{
				Stride: m.Stride, Padding: m.Padding, Dilation: m.Dilation, Groups: m.Groups,
			})
			testutil.AssertClose(t, "y", y, f.Get(t, name+".y"), 1e-4, 1e-5)
			y.BackwardWith(f.Get(t, name+".gy"))
			testutil.AssertClose(t, "grad x", x.Grad(), f.Get(t, name+".gx"), 1e-4, 1e-5)
			testutil.AssertClose(t, "grad w", w.Grad(), f.Get(t, name+".gw"), 1e-4, 1e-5)
			if m.Bias {
				testutil.AssertClose(t, "grad b", b.Grad(), f.Get(t, name+".gb"), 1e-4, 1e-5)
			}
		})
	}
}

// conv2dNaive is the definition of a grouped, strided, padded, dilated 2-D
// convolution, one output element at a time.
func conv2dNaive(x, w, b *tensor.Tensor, s, p, d [2]int, groups int) *tensor.Tensor {
	n, h, wd := x.Size(0), x.Size(2), x.Size(3)
	cout, cinG, kh, kw := w.Size(0), w.Size(1), w.Size(2), w.Size(3)
	oh := (h+2*p[0]-d[0]*(kh-1)-1)/s[0] + 1
	ow := (wd+2*p[1]-d[1]*(kw-1)-1)/s[1] + 1
	out := tensor.Zeros(n, cout, oh, ow)
	coutG := cout / groups
	for i := 0; i < n; i++ {
		for co := 0; co < cout; co++ {
			g := co / coutG
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var acc float64
					if b != nil {
						acc = float64(b.At(co))
					}
					for ci := 0; ci < cinG; ci++ {
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy := oy*s[0] - p[0] + ky*d[0]
								ix := ox*s[1] - p[1] + kx*d[1]
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								acc += float64(x.At(i, g*cinG+ci, iy, ix)) * float64(w.At(co, ci, ky, kx))
							}
						}
					}
					out.Set(float32(acc), i, co, oy, ox)
				}
			}
		}
	}
	return out
}

func TestConv2DMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 30; trial++ {
		groups := 1 + rng.IntN(3)
		cinG, coutG := 1+rng.IntN(3), 1+rng.IntN(3)
		kh, kw := 1+rng.IntN(3), 1+rng.IntN(3)
		s := [2]int{1 + rng.IntN(3), 1 + rng.IntN(3)}
		p := [2]int{rng.IntN(3), rng.IntN(3)}
		d := [2]int{1 + rng.IntN(2), 1 + rng.IntN(2)}
		h := d[0]*(kh-1) + 1 + rng.IntN(5)
		w := d[1]*(kw-1) + 1 + rng.IntN(5)
		n := 1 + rng.IntN(2)
		x := testutil.Rand(uint64(trial), -1, 1, n, cinG*groups, h, w)
		wt := testutil.Rand(uint64(100+trial), -1, 1, coutG*groups, cinG, kh, kw)
		var b *tensor.Tensor
		if trial%2 == 0 {
			b = testutil.Rand(uint64(200+trial), -1, 1, coutG*groups)
		}
		desc := fmt.Sprintf("x %v w %v stride %v pad %v dil %v groups %d bias %v", x.Shape(), wt.Shape(), s, p, d, groups, b != nil)
		y := tensor.Conv2D(x, wt, b, tensor.Conv2DOptions{Stride: s, Padding: p, Dilation: d, Groups: groups})
		testutil.AssertClose(t, desc, y, conv2dNaive(x, wt, b, s, p, d, groups), 1e-5, 1e-5)
	}
}

func TestConv2DGradCheck(t *testing.T) {
	cases := []struct {
		name       string
		x, w       []int
		bias       bool
		opt        tensor.Conv2DOptions
		noGradX    bool
		noGradW    bool
		wantOutput []int
	}{
		{name: "plain", x: []int{2, 2, 5, 5}, w: []int{3, 2, 3, 3}, bias: true, wantOutput: []int{2, 3, 3, 3}},
		{name: "strided", x: []int{1, 2, 7, 6}, w: []int{2, 2, 3, 2}, bias: true,
			opt: tensor.Conv2DOptions{Stride: [2]int{2, 3}}, wantOutput: []int{1, 2, 3, 2}},
		{name: "padded_nobias", x: []int{2, 1, 4, 5}, w: []int{2, 1, 3, 3},
			opt: tensor.Conv2DOptions{Padding: [2]int{1, 2}}, wantOutput: []int{2, 2, 4, 7}},
		{name: "dilated", x: []int{1, 2, 7, 7}, w: []int{2, 2, 2, 3}, bias: true,
			opt: tensor.Conv2DOptions{Dilation: [2]int{3, 2}, Padding: [2]int{1, 0}}, wantOutput: []int{1, 2, 6, 3}},
		{name: "grouped", x: []int{2, 4, 5, 4}, w: []int{6, 2, 3, 3}, bias: true,
			opt: tensor.Conv2DOptions{Groups: 2, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}, wantOutput: []int{2, 6, 3, 4}},
		{name: "grouped_nobias_dilated", x: []int{1, 3, 6, 6}, w: []int{3, 1, 2, 2},
			opt: tensor.Conv2DOptions{Groups: 3, Dilation: [2]int{2, 2}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, wantOutput: []int{1, 3, 3, 3}},
		{name: "weight_only", x: []int{1, 2, 4, 4}, w: []int{2, 2, 2, 2}, bias: true, noGradX: true, wantOutput: []int{1, 2, 3, 3}},
		{name: "input_only", x: []int{1, 2, 4, 4}, w: []int{2, 2, 2, 2}, noGradW: true, wantOutput: []int{1, 2, 3, 3}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := testutil.Rand(uint64(10+i), -1, 1, c.x...).SetRequiresGrad(!c.noGradX)
			w := testutil.Rand(uint64(20+i), -1, 1, c.w...).SetRequiresGrad(!c.noGradW)
			in := []*tensor.Tensor{x, w}
			if c.bias {
				in = append(in, testutil.Rand(uint64(30+i), -1, 1, c.w[0]))
			}
			f := func(in []*tensor.Tensor) *tensor.Tensor {
				var b *tensor.Tensor
				if len(in) == 3 {
					b = in[2]
				}
				return tensor.Conv2D(in[0], in[1], b, c.opt)
			}
			if got := f(in).Shape(); !tensor.SameShape(got, c.wantOutput) {
				t.Fatalf("output shape %v, want %v", got, c.wantOutput)
			}
			testutil.GradCheck(t, c.name, f, in, 1e-2, 1e-2)
			if c.noGradX && x.Grad() != nil {
				t.Errorf("input without requires_grad got a gradient")
			}
			if c.noGradW && w.Grad() != nil {
				t.Errorf("weight without requires_grad got a gradient")
			}
		})
	}
}

func TestConv2DNoGradRecordsNothing(t *testing.T) {
	x := testutil.Rand(1, -1, 1, 1, 2, 4, 4)
	w := testutil.Rand(2, -1, 1, 3, 2, 3, 3)
	var y *tensor.Tensor
	tensor.NoGrad(func() { y = tensor.Conv2D(x, w, nil, tensor.Conv2DOptions{}) })
	if y.RequiresGrad() || y.Op() != "" {
		t.Errorf("Conv2D under NoGrad recorded op %q (requires grad %v)", y.Op(), y.RequiresGrad())
	}
	y = tensor.Conv2D(x, w, nil, tensor.Conv2DOptions{})
	if y.Op() != "Conv2D" {
		t.Errorf("Conv2D recorded op %q, want Conv2D", y.Op())
	}
}

func TestConv2DShapeErrors(t *testing.T) {
	x := tensor.Zeros(2, 3, 5, 5)
	cases := []struct {
		what  string
		x, w  *tensor.Tensor
		b     *tensor.Tensor
		opt   tensor.Conv2DOptions
		parts []string
	}{
		{"channels", x, tensor.Zeros(4, 2, 3, 3), nil, tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "[2 3 5 5]", "[4 2 3 3]", "channels"}},
		{"3-D input", tensor.Zeros(3, 5, 5), tensor.Zeros(4, 3, 3, 3), nil, tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "[3 5 5]"}},
		{"3-D weight", x, tensor.Zeros(4, 3, 3), nil, tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "[4 3 3]"}},
		{"bias", x, tensor.Zeros(4, 3, 3, 3), tensor.Zeros(3), tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "bias", "[3]", "[4]"}},
		{"groups divide", x, tensor.Zeros(4, 1, 3, 3), nil, tensor.Conv2DOptions{Groups: 2},
			[]string{"tensor.Conv2D", "groups 2", "[2 3 5 5]", "[4 1 3 3]"}},
		{"groups weight", tensor.Zeros(1, 4, 5, 5), tensor.Zeros(4, 4, 3, 3), nil, tensor.Conv2DOptions{Groups: 2},
			[]string{"tensor.Conv2D", "[1 4 5 5]", "[4 4 3 3]", "groups 2"}},
		{"kernel too big", x, tensor.Zeros(4, 3, 6, 3), nil, tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "[2 3 5 5]", "[4 3 6 3]"}},
		{"dilated kernel too big", x, tensor.Zeros(4, 3, 3, 3), nil, tensor.Conv2DOptions{Dilation: [2]int{3, 1}},
			[]string{"tensor.Conv2D", "[2 3 5 5]", "dilation [3 1]"}},
		{"negative padding", x, tensor.Zeros(4, 3, 3, 3), nil, tensor.Conv2DOptions{Padding: [2]int{-1, 0}},
			[]string{"tensor.Conv2D", "padding [-1 0]", "[2 3 5 5]"}},
		{"int64 input", tensor.ZerosInt64(2, 3, 5, 5), tensor.Zeros(4, 3, 3, 3), nil, tensor.Conv2DOptions{},
			[]string{"tensor.Conv2D", "int64", "[2 3 5 5]"}},
	}
	for _, c := range cases {
		testutil.MustPanic(t, c.what, func() { tensor.Conv2D(c.x, c.w, c.b, c.opt) }, c.parts...)
	}
}
