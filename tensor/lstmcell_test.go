package tensor_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/tensor"
)

// lstmCellRef is LSTMCell composed from the element-wise ops.
func lstmCellRef(gates, c *tensor.Tensor) (h2, c2 *tensor.Tensor) {
	H := c.Size(1)
	g := tensor.Split(gates, 1, H, H, H, H)
	i, f, gg, o := tensor.Sigmoid(g[0]), tensor.Sigmoid(g[1]), tensor.Tanh(g[2]), tensor.Sigmoid(g[3])
	c2 = tensor.Add(tensor.Mul(f, c), tensor.Mul(i, gg))
	return tensor.Mul(o, tensor.Tanh(c2)), c2
}

// TestLSTMCellMatchesComposition checks the fused cell against the same
// step composed of Sigmoid, Tanh, Mul and Add: values bit for bit, and the
// gradients of gates and c for a loss that reads both h2 and c2 (as the
// next step does) to a float32 rounding.
func TestLSTMCellMatchesComposition(t *testing.T) {
	const n, h = 5, 7
	run := func(cell func(g, c *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor)) (h2, c2, gg, gc *tensor.Tensor) {
		g := testutil.Rand(3, -4, 4, n, 4*h).SetRequiresGrad(true)
		c := testutil.Rand(4, -2, 2, n, h).SetRequiresGrad(true)
		h2, c2 = cell(g, c)
		wh, wc := testutil.Rand(5, -1, 1, n, h), testutil.Rand(6, -1, 1, n, h)
		tensor.Add(tensor.Sum(tensor.Mul(h2, wh)), tensor.Sum(tensor.Mul(tensor.Tanh(c2), wc))).Backward()
		return h2, c2, g.Grad(), c.Grad()
	}
	h2, c2, gg, gc := run(tensor.LSTMCell)
	rh2, rc2, rgg, rgc := run(lstmCellRef)
	for name, p := range map[string][2]*tensor.Tensor{"h2": {h2, rh2}, "c2": {c2, rc2}} {
		for i, v := range p[0].Data() {
			if math.Float32bits(v) != math.Float32bits(p[1].Data()[i]) {
				t.Fatalf("%s[%d] = %g, composed ops give %g", name, i, v, p[1].Data()[i])
			}
		}
	}
	for name, p := range map[string][2]*tensor.Tensor{"grad gates": {gg, rgg}, "grad c": {gc, rgc}} {
		for i, v := range p[0].Data() {
			want := p[1].Data()[i]
			if d := math.Abs(float64(v - want)); d > 1e-6*(1+math.Abs(float64(want))) {
				t.Fatalf("%s[%d] = %g, composed ops give %g", name, i, v, want)
			}
		}
	}
}

// TestLSTMCellGradCheck checks both outputs' gradients against finite
// differences.
func TestLSTMCellGradCheck(t *testing.T) {
	g := testutil.Rand(7, -2, 2, 3, 8).SetRequiresGrad(true)
	c := testutil.Rand(8, -1, 1, 3, 2).SetRequiresGrad(true)
	testutil.GradCheck(t, "LSTMCell h2", func(in []*tensor.Tensor) *tensor.Tensor {
		h2, _ := tensor.LSTMCell(in[0], in[1])
		return h2
	}, []*tensor.Tensor{g, c}, 1e-2, 1e-2)
	testutil.GradCheck(t, "LSTMCell c2", func(in []*tensor.Tensor) *tensor.Tensor {
		_, c2 := tensor.LSTMCell(in[0], in[1])
		return c2
	}, []*tensor.Tensor{g, c}, 1e-2, 1e-2)
	testutil.GradCheck(t, "LSTMCell h2·c2", func(in []*tensor.Tensor) *tensor.Tensor {
		h2, c2 := tensor.LSTMCell(in[0], in[1])
		return tensor.Mul(h2, c2)
	}, []*tensor.Tensor{g, c}, 1e-2, 1e-2)
}

func TestLSTMCellShapePanics(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "LSTMCell") || !strings.Contains(msg, "[2 7]") || !strings.Contains(msg, "[2 2]") {
			t.Errorf("panic %q, want one naming LSTMCell and both shapes", msg)
		}
	}()
	tensor.LSTMCell(tensor.Zeros(2, 7), tensor.Zeros(2, 2))
}

// TestUnbind checks Unbind's values against Slice and its gradient against
// finite differences, on every axis, with some slices unused.
func TestUnbind(t *testing.T) {
	a := testutil.Rand(9, -1, 1, 3, 4, 2)
	for axis := range 3 {
		parts := tensor.Unbind(a, axis)
		if len(parts) != a.Size(axis) {
			t.Fatalf("axis %d: %d parts, want %d", axis, len(parts), a.Size(axis))
		}
		for i, p := range parts {
			want := tensor.Squeeze(tensor.Slice(a, axis, i, i+1, 1), axis)
			if !tensor.SameShape(p.Shape(), want.Shape()) {
				t.Fatalf("axis %d part %d: shape %v, want %v", axis, i, p.Shape(), want.Shape())
			}
			for j, v := range p.Data() {
				if v != want.Data()[j] {
					t.Fatalf("axis %d part %d: [%d] = %g, want %g", axis, i, j, v, want.Data()[j])
				}
			}
		}
		x := testutil.Rand(10, -1, 1, 3, 4, 2).SetRequiresGrad(true)
		testutil.GradCheck(t, "Unbind", func(in []*tensor.Tensor) *tensor.Tensor {
			ps := tensor.Unbind(in[0], axis)
			// Use every part but the second, one of them twice.
			acc := tensor.Mul(ps[0], ps[0])
			for _, p := range ps[2:] {
				acc = tensor.Add(acc, tensor.Mul(p, ps[0]))
			}
			return acc
		}, []*tensor.Tensor{x}, 1e-2, 1e-2)
	}
}

// TestUnbindTwoBackwards runs two Backward calls through one Unbind: each
// must add only its own gradient.
func TestUnbindTwoBackwards(t *testing.T) {
	x := tensor.FromSlice([]float32{1, 2, 3}, 3).SetRequiresGrad(true)
	ps := tensor.Unbind(x, 0)
	tensor.Mul(ps[0], ps[1]).Backward() // grad (2, 1, 0)
	tensor.Mul(ps[2], ps[2]).Backward() // grad (0, 0, 6)
	want := []float32{2, 1, 6}
	for i, v := range x.Grad().Data() {
		if v != want[i] {
			t.Fatalf("grad = %v, want %v", x.Grad().Data(), want)
		}
	}
}

// TestLSTMStepSameBits: the inference step gives the bits of
// LSTMCell(Add(xp, Linear(h, whh, bhh)), c), with and without b_hh, for
// several sizes with one scratch reused across them; it refuses to run with
// gradients enabled.
func TestLSTMStepSameBits(t *testing.T) {
	var s tensor.LSTMScratch
	seed := uint64(1)
	for _, n := range []int{5, 1, 33} {
		for _, hd := range []int{7, 1, 16} {
			for _, bias := range []bool{true, false} {
				seed++
				xp := testutil.Rand(seed, -2, 2, n, 4*hd).Detach()
				h := testutil.Rand(seed+100, -1, 1, n, hd).Detach()
				c := testutil.Rand(seed+200, -3, 3, n, hd).Detach()
				whh := testutil.Rand(seed+300, -1, 1, 4*hd, hd).Detach()
				var bhh *tensor.Tensor
				if bias {
					bhh = testutil.Rand(seed+400, -1, 1, 4*hd).Detach()
				}
				var wantH, wantC, gotH, gotC *tensor.Tensor
				tensor.NoGrad(func() {
					wantH, wantC = tensor.LSTMCell(tensor.Add(xp, tensor.Linear(h, whh, bhh)), c)
					gotH, gotC = tensor.LSTMStep(&s, xp, h, c, whh, bhh)
				})
				for _, p := range []struct {
					name      string
					got, want []float32
				}{{"h", gotH.Data(), wantH.Data()}, {"c", gotC.Data(), wantC.Data()}} {
					for i := range p.want {
						if math.Float32bits(p.got[i]) != math.Float32bits(p.want[i]) {
							t.Fatalf("n=%d H=%d bias=%v: %s[%d] = %v, want %v", n, hd, bias, p.name, i, p.got[i], p.want[i])
						}
					}
				}
			}
		}
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "NoGrad") {
			t.Errorf("LSTMStep with gradients enabled: panic %v, want one naming NoGrad", r)
		}
	}()
	x := tensor.Zeros(1, 4)
	tensor.LSTMStep(&s, x, tensor.Zeros(1, 1), tensor.Zeros(1, 1), tensor.Zeros(4, 1), nil)
}
