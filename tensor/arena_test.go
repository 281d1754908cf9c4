package tensor_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/deepgo/deepgo/tensor"
)

// arenaNet is a small network on the ops that support the arena: a fused
// convolution block, a flatten view, LinearReLU, ReLU, Linear and the
// fused cross entropy.
type arenaNet struct {
	cw, cb, w1, b1, w2, b2 *tensor.Tensor
}

func newArenaNet(seed uint64) *arenaNet {
	r := tensor.NewRNG(seed)
	return &arenaNet{
		cw: tensor.RandU(r, -0.3, 0.3, 4, 1, 3, 3).SetRequiresGrad(true),
		cb: tensor.RandU(r, -0.1, 0.1, 4).SetRequiresGrad(true),
		w1: tensor.RandU(r, -0.2, 0.2, 16, 4*4*4).SetRequiresGrad(true),
		b1: tensor.RandU(r, -0.1, 0.1, 16).SetRequiresGrad(true),
		w2: tensor.RandU(r, -0.2, 0.2, 5, 16).SetRequiresGrad(true),
		b2: tensor.RandU(r, -0.1, 0.1, 5).SetRequiresGrad(true),
	}
}

func (n *arenaNet) params() []*tensor.Tensor {
	return []*tensor.Tensor{n.cw, n.cb, n.w1, n.b1, n.w2, n.b2}
}

func (n *arenaNet) forward(x *tensor.Tensor) *tensor.Tensor {
	h := tensor.Conv2DReLUMaxPool(x, n.cw, n.cb, tensor.Conv2DOptions{}, tensor.Pool2DOptions{Kernel: [2]int{2, 2}})
	h = tensor.Flatten(h, 1, -1)
	h = tensor.LinearReLU(h, n.w1, n.b1)
	h = tensor.ReLU(h)
	return tensor.Linear(h, n.w2, n.b2)
}

// arenaBatch is a deterministic batch: x [n, 1, 10, 10] and labels [n] in 0..4.
func arenaBatch(n int, seed uint64) (*tensor.Tensor, *tensor.Tensor) {
	r := tensor.NewRNG(seed)
	x := tensor.RandU(r, -1, 1, n, 1, 10, 10)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(5))
	}
	return x, tensor.FromInt64(y, n)
}

func bitsOf(t *tensor.Tensor) []uint32 {
	out := make([]uint32, 0, t.Numel())
	for _, v := range t.Data() {
		out = append(out, math.Float32bits(v))
	}
	return out
}

func sameBits(t *testing.T, name string, a, b []uint32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", name, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s[%d]: %v, want %v (bitwise)", name, i, math.Float32frombits(a[i]), math.Float32frombits(b[i]))
		}
	}
}

// TestArenaBitwiseSameAsWithout trains the small network for a few steps
// (SGD by hand, so that grads and values feed back) with and without a
// step arena, whose buffers are reused from the second step on, and
// checks that losses, outputs and gradients are bitwise identical.
func TestArenaBitwiseSameAsWithout(t *testing.T) {
	type trace struct {
		losses []float32
		outs   [][]uint32
		grads  [][]uint32
	}
	run := func(a *tensor.Arena) trace {
		n := newArenaNet(3)
		var tr trace
		for step := 0; step < 4; step++ {
			x, y := arenaBatch(6, uint64(step%2))
			for _, p := range n.params() {
				p.ZeroGrad()
			}
			out := n.forward(a.Adopt(x))
			loss := tensor.SoftmaxCrossEntropy(out, y, -100, false)
			loss.Backward()
			tr.losses = append(tr.losses, loss.Item())
			tr.outs = append(tr.outs, bitsOf(out))
			for _, p := range n.params() {
				tr.grads = append(tr.grads, bitsOf(p.Grad()))
				pd, gd := p.Data(), p.Grad().Data()
				for i := range pd {
					pd[i] -= 0.1 * gd[i]
				}
			}
			a.Reset()
		}
		return tr
	}
	want, got := run(nil), run(tensor.NewArena())
	for i := range want.losses {
		if math.Float32bits(got.losses[i]) != math.Float32bits(want.losses[i]) {
			t.Fatalf("step %d: loss %v with the arena, %v without", i, got.losses[i], want.losses[i])
		}
		sameBits(t, fmt.Sprintf("step %d output", i), got.outs[i], want.outs[i])
	}
	for i := range want.grads {
		sameBits(t, fmt.Sprintf("gradient %d", i), got.grads[i], want.grads[i])
	}
}

// mustPanicWith runs f and checks that it panics with a message that
// contains want.
func mustPanicWith(t *testing.T, name, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("%s: did not panic", name)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("%s: panic %q does not mention %q", name, msg, want)
		}
	}()
	f()
}

// TestArenaUseAfterReset checks that every tensor of a reset arena fails
// loudly when used, and that results of ops outside the arena stay valid.
func TestArenaUseAfterReset(t *testing.T) {
	n := newArenaNet(1)
	x, y := arenaBatch(3, 1)
	xWant := bitsOf(x)
	a := tensor.NewArena()
	ax := a.Adopt(x)
	out := n.forward(ax)
	flat := tensor.Reshape(out, -1)
	det := out.Detach()
	loss := tensor.SoftmaxCrossEntropy(out, y, -100, false)
	outside := tensor.Sum(tensor.Mul(out, out)) // Mul and Sum keep their results out of the arena
	keep := outside.Item()
	a.Reset()

	const msg = "used after its arena was reset"
	for name, dead := range map[string]*tensor.Tensor{"adopted input": ax, "output": out, "view": flat, "detached": det, "loss": loss} {
		mustPanicWith(t, name+" Data", msg, func() { dead.Data() })
		mustPanicWith(t, name+" as op input", msg, func() { tensor.ReLU(dead) })
		mustPanicWith(t, name+" Adopt", msg, func() { a.Adopt(dead) })
	}
	mustPanicWith(t, "loss Item", msg, func() { loss.Item() })
	mustPanicWith(t, "loss Backward", msg, func() { loss.Backward() })
	// A result outside the arena survives Reset, but its graph reaches
	// dead tensors: Backward must refuse rather than use them.
	if got := outside.Item(); got != keep {
		t.Fatalf("result outside the arena changed after Reset: %v, want %v", got, keep)
	}
	mustPanicWith(t, "Backward through dead tensors", msg, func() { outside.Backward() })

	// The next step gets new Tensor values: the dead ones stay dead.
	out2 := n.forward(a.Adopt(x))
	if out2 == out {
		t.Fatal("the arena gave out a dead Tensor value again")
	}
	mustPanicWith(t, "output after the next step", msg, func() { out.Data() })
	a.Reset()
	// The adopted input itself is the user's: valid and unchanged.
	sameBits(t, "input after Reset", bitsOf(x), xWant)
}

// TestArenaAdoptGradientAndNil checks that the gradient flows through
// Adopt to an input that requires one, and that a nil arena is a no-op.
func TestArenaAdoptGradientAndNil(t *testing.T) {
	x := tensor.FromSlice([]float32{-1, 2, 3, -4}, 2, 2).SetRequiresGrad(true)
	a := tensor.NewArena()
	tensor.Sum(tensor.ReLU(a.Adopt(x))).Backward()
	a.Reset()
	got := x.Grad().Data()
	for i, want := range []float32{0, 1, 1, 0} {
		if got[i] != want {
			t.Fatalf("x.Grad() = %v, want [0 1 1 0]", got)
		}
	}
	var none *tensor.Arena
	if none.Adopt(x) != x {
		t.Fatal("a nil arena's Adopt must return its argument")
	}
	none.Reset()
}

// TestArenaConcurrentNoGrad runs inference with two arenas in two
// goroutines at once (run it with -race) and checks the results against
// a serial run without an arena.
func TestArenaConcurrentNoGrad(t *testing.T) {
	n := newArenaNet(2)
	xs := make([]*tensor.Tensor, 4)
	want := make([][]uint32, len(xs))
	tensor.NoGrad(func() {
		for i := range xs {
			xs[i], _ = arenaBatch(5, uint64(10+i))
			want[i] = bitsOf(n.forward(xs[i]))
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	tensor.NoGrad(func() {
		for g := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := tensor.NewArena()
				for rep := 0; rep < 5; rep++ {
					for i, x := range xs {
						got := bitsOf(n.forward(a.Adopt(x)))
						a.Reset()
						for k := range got {
							if got[k] != want[i][k] {
								errs[g] = fmt.Errorf("goroutine %d, batch %d, value %d: %v, want %v", g, i, k,
									math.Float32frombits(got[k]), math.Float32frombits(want[i][k]))
								return
							}
						}
					}
				}
			}()
		}
		wg.Wait()
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
