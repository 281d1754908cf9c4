package optim_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/deepgo/deepgo/internal/testutil"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
)

func TestClipGradMatchesTorch(t *testing.T) {
	fx := testutil.LoadFixtures(t, fixturePath)
	var grads []*tensor.Tensor
	for j := 0; fx.Has(fmt.Sprintf("clip.grad.p%d", j)); j++ {
		grads = append(grads, fx.Get(t, fmt.Sprintf("clip.grad.p%d", j)))
	}
	params := func(cfg string) []*tensor.Tensor {
		ps := make([]*tensor.Tensor, len(grads)+1)
		for j, g := range grads {
			ps[j] = tensor.ZerosLike(g).SetRequiresGrad(true)
			if in := fmt.Sprintf("clip.%s.in.p%d", cfg, j); fx.Has(in) {
				g = fx.Get(t, in)
			}
			ps[j].SetGrad(g.Clone())
		}
		ps[len(grads)] = tensor.Zeros(5).SetRequiresGrad(true) // no gradient: skipped
		return ps
	}
	for name, c := range map[string]struct{ maxNorm, normType float64 }{
		"l2": {1, 2}, "l1": {2, 1}, "inf": {0.5, math.Inf(1)}, "l3_noclip": {100, 3}, "l2_tiny": {5e-5, 2},
	} {
		ps := params(name)
		total := optim.ClipGradNorm(ps, c.maxNorm, c.normType)
		testutil.AssertClose(t, name+" norm", tensor.FromSlice([]float32{float32(total)}, 1), fx.Get(t, "clip."+name+".norm"), rtol, 1e-10)
		for j := range grads {
			testutil.AssertClose(t, fmt.Sprintf("%s grad %d", name, j), ps[j].Grad(), fx.Get(t, fmt.Sprintf("clip.%s.p%d", name, j)), rtol, 1e-10)
		}
	}
	ps := params("value")
	optim.ClipGradValue(ps, 0.75)
	for j := range grads {
		testutil.AssertClose(t, fmt.Sprintf("value grad %d", j), ps[j].Grad(), fx.Get(t, fmt.Sprintf("clip.value.p%d", j)), 0, 0)
	}
	if got := optim.ClipGradNorm([]*tensor.Tensor{tensor.Zeros(2)}, 1, 2); got != 0 {
		t.Errorf("ClipGradNorm without gradients = %v, want 0", got)
	}
	nan := tensor.Zeros(2).SetRequiresGrad(true)
	nan.SetGrad(tensor.FromSlice([]float32{float32(math.NaN()), 1}, 2))
	if got := optim.ClipGradNorm([]*tensor.Tensor{nan}, 1, math.Inf(1)); !math.IsNaN(got) {
		t.Errorf("inf-norm of a NaN gradient = %v, want NaN", got)
	}
	testutil.MustPanic(t, "norm type", func() { optim.ClipGradNorm(ps, 1, 0) }, "optim.ClipGradNorm", "normType")
	testutil.MustPanic(t, "max norm", func() { optim.ClipGradNorm(ps, -1, 2) }, "optim.ClipGradNorm", "maxNorm")
	testutil.MustPanic(t, "clip value", func() { optim.ClipGradValue(ps, -1) }, "optim.ClipGradValue", "clip")
}
