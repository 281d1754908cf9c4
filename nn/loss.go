package nn

import (
	"fmt"
	"strings"

	"github.com/deepgo/deepgo/tensor"
)

// Reduction says how a loss combines its per-element values.
type Reduction int

const (
	// ReduceMean averages (the default, as in PyTorch). For class losses with
	// class weights it divides by the summed weights of the targets.
	ReduceMean Reduction = iota
	// ReduceSum adds the per-element losses.
	ReduceSum
	// ReduceNone returns the per-element losses.
	ReduceNone
)

// String returns PyTorch's name for the reduction: "mean", "sum" or "none".
func (r Reduction) String() string {
	switch r {
	case ReduceMean:
		return "mean"
	case ReduceSum:
		return "sum"
	case ReduceNone:
		return "none"
	}
	return fmt.Sprintf("Reduction(%d)", int(r))
}

// option bits, to reject options a loss does not take.
const (
	optReduction = 1 << iota
	optWeight
	optPosWeight
	optIgnore
	optSmoothing
	optBeta
)

var optNames = []string{"WithReduction", "WithWeight", "WithPosWeight", "WithIgnoreIndex", "WithLabelSmoothing", "WithBeta"}

// LossOption configures a loss function (see the With… functions).
type LossOption func(*lossConfig)

type lossConfig struct {
	set         int
	reduction   Reduction
	weight      *tensor.Tensor
	posWeight   *tensor.Tensor
	ignoreIndex int64
	smoothing   float32
	beta        float32
}

// WithReduction sets the reduction (default ReduceMean).
func WithReduction(r Reduction) LossOption {
	return func(c *lossConfig) { c.set |= optReduction; c.reduction = r }
}

// WithWeight sets class weights [C] for CrossEntropy and NLLLoss, or a
// per-element weight broadcast to the input for BCEWithLogits.
func WithWeight(w *tensor.Tensor) LossOption {
	return func(c *lossConfig) { c.set |= optWeight; c.weight = w }
}

// WithPosWeight sets BCEWithLogits' weight of positive examples, broadcast
// along the last (class) dimension.
func WithPosWeight(w *tensor.Tensor) LossOption {
	return func(c *lossConfig) { c.set |= optPosWeight; c.posWeight = w }
}

// WithIgnoreIndex sets the target value whose elements contribute nothing to
// CrossEntropy or NLLLoss (default -100, as PyTorch).
func WithIgnoreIndex(i int64) LossOption {
	return func(c *lossConfig) { c.set |= optIgnore; c.ignoreIndex = i }
}

// WithLabelSmoothing mixes CrossEntropy's target with the uniform
// distribution: (1-eps)·target + eps/C.
func WithLabelSmoothing(eps float32) LossOption {
	return func(c *lossConfig) { c.set |= optSmoothing; c.smoothing = eps }
}

// WithBeta sets SmoothL1's threshold between the quadratic and linear parts (default 1).
func WithBeta(beta float32) LossOption {
	return func(c *lossConfig) { c.set |= optBeta; c.beta = beta }
}

func config(op string, allowed int, opts []LossOption) *lossConfig {
	c := &lossConfig{ignoreIndex: -100, beta: 1}
	for _, o := range opts {
		o(c)
	}
	if bad := c.set &^ allowed; bad != 0 {
		var names []string
		for i, n := range optNames {
			if bad&(1<<i) != 0 {
				names = append(names, n)
			}
		}
		panic(fmt.Sprintf("nn.%s: option %s does not apply", op, strings.Join(names, ", ")))
	}
	if c.reduction < ReduceMean || c.reduction > ReduceNone {
		panic(fmt.Sprintf("nn.%s: unknown reduction %v", op, c.reduction))
	}
	if c.smoothing < 0 || c.smoothing > 1 {
		panic(fmt.Sprintf("nn.%s: label smoothing %v not in [0, 1]", op, c.smoothing))
	}
	if c.beta < 0 {
		panic(fmt.Sprintf("nn.%s: beta %v is negative", op, c.beta))
	}
	return c
}

func reduce(l *tensor.Tensor, r Reduction) *tensor.Tensor {
	switch r {
	case ReduceSum:
		return tensor.Sum(l)
	case ReduceNone:
		return l
	}
	return tensor.Mean(l)
}

// CrossEntropy is torch.nn.functional.cross_entropy from logits [N, C] or
// [N, C, d1, …] (or unbatched [C]). The target is either int64 class indices
// [N, d1, …] or float32 class probabilities shaped like the logits. Options:
// WithWeight (class weights [C]), WithIgnoreIndex, WithLabelSmoothing,
// WithReduction; the results, including the weighted-mean normalisation and
// label smoothing with weights, match PyTorch.
func CrossEntropy(logits, target *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	fusable := func(logits, target *tensor.Tensor) bool {
		return logits.DType() == tensor.Float32 && target.DType() == tensor.Int64 && logits.Dim() == 2 &&
			target.Dim() == 1 && target.Size(0) == logits.Size(0)
	}
	if len(opts) == 0 && fusable(logits, target) {
		// The most common case, without building a config.
		return fusedCrossEntropy(logits, target, -100, false)
	}
	c := config("CrossEntropy", optReduction|optWeight|optIgnore|optSmoothing, opts)
	logits, target, unbatched := batchify("CrossEntropy", logits, target)
	if fusable(logits, target) && c.weight == nil && c.smoothing == 0 && c.reduction != ReduceNone {
		return fusedCrossEntropy(logits, target, c.ignoreIndex, c.reduction == ReduceSum)
	}
	logp := tensor.LogSoftmax(logits, 1)
	var out *tensor.Tensor
	if target.DType() == tensor.Float32 {
		out = softCrossEntropy(logp, target, c)
	} else {
		out = classLoss("CrossEntropy", logp, target, c)
	}
	if unbatched && c.reduction == ReduceNone {
		out = tensor.Reshape(out)
	}
	return out
}

// fusedCrossEntropy is CrossEntropy of logits [N, C] and class targets [N]
// as one fused op (tensor.SoftmaxCrossEntropy).
func fusedCrossEntropy(logits, target *tensor.Tensor, ignoreIndex int64, sum bool) *tensor.Tensor {
	nc := int64(logits.Size(1))
	for _, t := range target.Int64s() {
		if t != ignoreIndex && (t < 0 || t >= nc) {
			panic(fmt.Sprintf("nn.CrossEntropy: target %d out of range for %d classes (input shape %v)", t, nc, logits.Shape()))
		}
	}
	return tensor.SoftmaxCrossEntropy(logits, target, ignoreIndex, sum)
}

// NLLLoss is torch.nn.functional.nll_loss: the negative log-likelihood of
// int64 targets [N, d1, …] under log-probabilities [N, C, d1, …] (or
// unbatched [C]). Options: WithWeight, WithIgnoreIndex, WithReduction.
func NLLLoss(logp, target *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	c := config("NLLLoss", optReduction|optWeight|optIgnore, opts)
	logp, target, unbatched := batchify("NLLLoss", logp, target)
	if target.DType() != tensor.Int64 {
		panic(fmt.Sprintf("nn.NLLLoss: target must be int64 class indices, got %v of shape %v", target.DType(), target.Shape()))
	}
	out := classLoss("NLLLoss", logp, target, c)
	if unbatched && c.reduction == ReduceNone {
		out = tensor.Reshape(out)
	}
	return out
}

// batchify turns an unbatched input [C] with a 0-d index target (or a [C]
// probability target) into a batch of one.
func batchify(op string, input, target *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor, bool) {
	if input.DType() != tensor.Float32 {
		panic(fmt.Sprintf("nn.%s: input must be float32, got %v of shape %v", op, input.DType(), input.Shape()))
	}
	if input.Dim() == 0 {
		panic(fmt.Sprintf("nn.%s: input must have a class dimension, got shape %v", op, input.Shape()))
	}
	if input.Dim() != 1 {
		return input, target, false
	}
	input = tensor.Unsqueeze(input, 0)
	if target.DType() == tensor.Int64 && target.Dim() == 0 {
		target = tensor.Reshape(target, 1)
	} else if target.DType() == tensor.Float32 && target.Dim() == 1 {
		target = tensor.Unsqueeze(target, 0)
	}
	return input, target, true
}

// classShape returns the broadcast shape [1, C, 1, …] of class weights for an input of rank rank.
func classShape(c, rank int) []int {
	s := make([]int, rank)
	for i := range s {
		s[i] = 1
	}
	s[1] = c
	return s
}

// classLoss computes the (smoothed) negative log-likelihood of int64 targets
// under log-probabilities logp [N, C, d…].
func classLoss(op string, logp, target *tensor.Tensor, c *lossConfig) *tensor.Tensor {
	ls, ts := logp.Shape(), target.Shape()
	want := append([]int{ls[0]}, ls[2:]...)
	if !tensor.SameShape(ts, want) {
		panic(fmt.Sprintf("nn.%s: target shape %v does not match input shape %v (want %v)", op, ts, ls, want))
	}
	nc := ls[1]
	var w []float32
	if c.weight != nil {
		if c.weight.Dim() != 1 || c.weight.Size(0) != nc {
			panic(fmt.Sprintf("nn.%s: class weight shape %v, want [%d] for input shape %v", op, c.weight.Shape(), nc, ls))
		}
		w = c.weight.Data()
	}
	tv := target.Int64s()
	idx := make([]int64, len(tv))
	wsel := make([]float32, len(tv))
	keep := make([]float32, len(tv))
	var wsum float64
	for i, t := range tv {
		if t == c.ignoreIndex {
			continue
		}
		if t < 0 || t >= int64(nc) {
			panic(fmt.Sprintf("nn.%s: target %d out of range for %d classes (input shape %v)", op, t, nc, ls))
		}
		idx[i] = t
		keep[i] = 1
		wsel[i] = 1
		if w != nil {
			wsel[i] = w[t]
		}
		wsum += float64(wsel[i])
	}
	ishape := append([]int{ls[0], 1}, ls[2:]...)
	picked := tensor.Reshape(tensor.Gather(logp, 1, tensor.FromInt64(idx, ishape...)), ts...)
	nll := tensor.Neg(tensor.Mul(picked, tensor.FromSlice(wsel, ts...)))
	red := func(l *tensor.Tensor) *tensor.Tensor {
		switch c.reduction {
		case ReduceNone:
			return l
		case ReduceSum:
			return tensor.Sum(l)
		}
		return tensor.Div(tensor.Sum(l), tensor.Scalar(float32(wsum)))
	}
	loss := red(nll)
	if c.smoothing == 0 {
		return loss
	}
	var smooth *tensor.Tensor
	if c.weight != nil {
		smooth = tensor.SumAxes(tensor.Mul(logp, tensor.Reshape(c.weight.Detach(), classShape(nc, len(ls))...)), false, 1)
	} else {
		smooth = tensor.SumAxes(logp, false, 1)
	}
	smooth = tensor.Neg(tensor.Mul(smooth, tensor.FromSlice(keep, ts...)))
	// As in PyTorch, the smoothing term's mean has the NLL term's denominator:
	// the summed weights of the non-ignored targets (their count without weights).
	sm := red(smooth)
	return tensor.Add(tensor.MulScalar(loss, 1-c.smoothing), tensor.MulScalar(sm, c.smoothing/float32(nc)))
}

// softCrossEntropy is the cross entropy with class-probability targets.
func softCrossEntropy(logp, target *tensor.Tensor, c *lossConfig) *tensor.Tensor {
	ls := logp.Shape()
	if !tensor.SameShape(ls, target.Shape()) {
		panic(fmt.Sprintf("nn.CrossEntropy: probability target shape %v does not match input shape %v", target.Shape(), ls))
	}
	if c.set&optIgnore != 0 {
		panic("nn.CrossEntropy: WithIgnoreIndex needs int64 class targets, not probabilities")
	}
	nc := ls[1]
	if c.smoothing > 0 {
		target = tensor.AddScalar(tensor.MulScalar(target, 1-c.smoothing), c.smoothing/float32(nc))
	}
	prod := tensor.Mul(logp, target)
	if c.weight != nil {
		if c.weight.Dim() != 1 || c.weight.Size(0) != nc {
			panic(fmt.Sprintf("nn.CrossEntropy: class weight shape %v, want [%d] for input shape %v", c.weight.Shape(), nc, ls))
		}
		prod = tensor.Mul(prod, tensor.Reshape(c.weight.Detach(), classShape(nc, len(ls))...))
	}
	l := tensor.Neg(tensor.SumAxes(prod, false, 1))
	return reduce(l, c.reduction)
}

// BCEWithLogits is torch.nn.functional.binary_cross_entropy_with_logits:
// the binary cross entropy of sigmoid(x) against float targets y of x's
// shape, computed stably from the logits as
// (1-y)·x + (1+(p-1)·y)·softplus(-x). Options: WithPosWeight (p, broadcast
// along the last dimension), WithWeight (broadcast to x), WithReduction.
func BCEWithLogits(x, y *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	c := config("BCEWithLogits", optReduction|optWeight|optPosWeight, opts)
	sameShape("BCEWithLogits", x, y)
	// softplus(-x) = -log(sigmoid(x)) = -logsoftmax([0, x])[1], smooth and stable everywhere.
	pair := tensor.Stack([]*tensor.Tensor{tensor.Zeros(x.Shape()...), x}, -1)
	sp := tensor.Neg(tensor.Squeeze(tensor.Slice(tensor.LogSoftmax(pair, -1), -1, 1, 2, 1), -1))
	if c.posWeight != nil {
		lw := tensor.AddScalar(tensor.Mul(tensor.AddScalar(c.posWeight, -1), y), 1)
		sp = tensor.Mul(lw, sp)
	}
	l := tensor.Add(tensor.Mul(tensor.AddScalar(tensor.Neg(y), 1), x), sp)
	if c.weight != nil {
		l = tensor.Mul(l, c.weight)
	}
	return reduce(l, c.reduction)
}

func sameShape(op string, x, y *tensor.Tensor) {
	if !tensor.SameShape(x.Shape(), y.Shape()) {
		panic(fmt.Sprintf("nn.%s: input shape %v and target shape %v differ", op, x.Shape(), y.Shape()))
	}
	if x.DType() != tensor.Float32 || y.DType() != tensor.Float32 {
		panic(fmt.Sprintf("nn.%s: input and target must be float32, got %v %v and %v %v", op, x.DType(), x.Shape(), y.DType(), y.Shape()))
	}
}

// MSE is the mean squared error (x-y)² (torch.nn.functional.mse_loss).
// Option: WithReduction.
func MSE(x, y *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	c := config("MSE", optReduction, opts)
	sameShape("MSE", x, y)
	d := tensor.Sub(x, y)
	return reduce(tensor.Mul(d, d), c.reduction)
}

// L1 is the mean absolute error |x-y| (torch.nn.functional.l1_loss).
// Option: WithReduction.
func L1(x, y *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	c := config("L1", optReduction, opts)
	sameShape("L1", x, y)
	return reduce(tensor.Abs(tensor.Sub(x, y)), c.reduction)
}

// SmoothL1 is 0.5·d²/β where |d| < β and |d| - 0.5·β elsewhere, d = x-y
// (torch.nn.functional.smooth_l1_loss; β = 0 is L1). Options: WithBeta
// (default 1), WithReduction.
func SmoothL1(x, y *tensor.Tensor, opts ...LossOption) *tensor.Tensor {
	c := config("SmoothL1", optReduction|optBeta, opts)
	sameShape("SmoothL1", x, y)
	d := tensor.Sub(x, y)
	ad := tensor.Abs(d)
	if c.beta == 0 {
		return reduce(ad, c.reduction)
	}
	dv := d.Data()
	small := make([]float32, len(dv))
	for i, v := range dv {
		if v < c.beta && v > -c.beta {
			small[i] = 1
		}
	}
	quad := tensor.MulScalar(tensor.Mul(d, d), 0.5/c.beta)
	lin := tensor.AddScalar(ad, -0.5*c.beta)
	return reduce(tensor.Where(tensor.FromSlice(small, d.Shape()...), quad, lin), c.reduction)
}
