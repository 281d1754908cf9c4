package optim

import (
	"fmt"
	"math"

	"github.com/deepgo/deepgo/internal/kernels"
	"github.com/deepgo/deepgo/tensor"
)

// DefaultAdamWWeightDecay is PyTorch's default weight decay for AdamW. A zero
// AdamConfig.WeightDecay means no decay; set this value explicitly to get
// torch.optim.AdamW's default.
const DefaultAdamWWeightDecay = 1e-2

// AdamConfig holds the hyper-parameters of Adam and AdamW. Zero values that
// would be invalid take PyTorch's defaults: LR 0 means 1e-3, Betas {0, 0}
// means {0.9, 0.999}, Eps 0 means 1e-8.
type AdamConfig struct {
	// LR is the learning rate.
	LR float64
	// Betas are the decay rates of the first and second moment estimates.
	Betas [2]float64
	// Eps is added to the denominator for numerical stability.
	Eps float64
	// WeightDecay is an L2 penalty added to the gradient (Adam) or a decoupled
	// decay p *= 1 - lr*WeightDecay applied before the update (AdamW).
	WeightDecay float64
	// AMSGrad uses the running maximum of the second moment estimate.
	AMSGrad bool
}

func (c AdamConfig) withDefaults() AdamConfig {
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Betas == [2]float64{} {
		c.Betas = [2]float64{0.9, 0.999}
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

func (c AdamConfig) validate(op string) error {
	if err := checkNonNeg(op, "LR", c.LR); err != nil {
		return err
	}
	if err := checkNonNeg(op, "Eps", c.Eps); err != nil {
		return err
	}
	for i, b := range c.Betas {
		if !(b >= 0 && b < 1) {
			return fmt.Errorf("optim.%s: Betas[%d] must be in [0, 1), got %v", op, i, b)
		}
	}
	return checkNonNeg(op, "WeightDecay", c.WeightDecay)
}

func (c AdamConfig) names() []string {
	if c.AMSGrad {
		return []string{"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
	}
	return []string{"exp_avg", "exp_avg_sq"}
}

// Adam is the Adam optimizer (torch.optim.Adam), or AdamW
// (torch.optim.AdamW) when made by NewAdamW. With t the parameter's step:
//
//	Adam:  g = grad + weight_decay*p        AdamW: p = p*(1 - lr*weight_decay); g = grad
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + (1-beta2)*g*g             (AMSGrad: vmax = max(vmax, v), used below for v)
//	p = p - lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
type Adam struct {
	base
	cfg       AdamConfig
	decoupled bool
	job       adamJob
	run       func(lo, hi int) // o.job.update, bound when runOf is o
	runOf     *Adam
}

// NewAdam makes an Adam optimizer over params. It panics if a hyper-parameter is invalid.
func NewAdam(params []*tensor.Tensor, cfg AdamConfig) *Adam {
	cfg = cfg.withDefaults()
	mustOK(cfg.validate("NewAdam"))
	return &Adam{base: newBase("NewAdam", "Adam", params, cfg.names()), cfg: cfg}
}

// NewAdamW makes an AdamW optimizer (Adam with decoupled weight decay) over
// params. cfg.WeightDecay is used as given (PyTorch's default is
// DefaultAdamWWeightDecay). It panics if a hyper-parameter is invalid.
func NewAdamW(params []*tensor.Tensor, cfg AdamConfig) *Adam {
	cfg = cfg.withDefaults()
	mustOK(cfg.validate("NewAdamW"))
	return &Adam{base: newBase("NewAdamW", "AdamW", params, cfg.names()), cfg: cfg, decoupled: true}
}

// Config returns the current hyper-parameters.
func (o *Adam) Config() AdamConfig { return o.cfg }

// Params returns the parameters the optimizer updates.
func (o *Adam) Params() []*tensor.Tensor { return o.params }

// LR returns the current learning rate.
func (o *Adam) LR() float64 { return o.cfg.LR }

// SetLR changes the learning rate used by later steps.
func (o *Adam) SetLR(lr float64) { o.cfg.LR = lr }

// ZeroGrad sets every parameter's gradient to zero in place.
func (o *Adam) ZeroGrad() { o.zeroGrad() }

// Step applies one Adam (or AdamW) update to every parameter whose gradient is not nil.
func (o *Adam) Step() {
	b1, b2 := o.cfg.Betas[0], o.cfg.Betas[1]
	b1f, b2f := float32(b1), float32(b2)
	omb1, omb2 := float32(1-b1), float32(1-b2)
	eps := float32(o.cfg.Eps)
	wd := float32(o.cfg.WeightDecay)
	decay := float32(1 - o.cfg.LR*o.cfg.WeightDecay)
	for i, p := range o.params {
		g := p.Grad()
		if g == nil {
			continue
		}
		o.steps[i]++
		t := float64(o.steps[i])
		stepSize := float32(o.cfg.LR / (1 - math.Pow(b1, t)))
		bc2sqrt := float32(math.Sqrt(1 - math.Pow(b2, t)))
		w := p.Data()
		gd := g.Data()[:len(w)]
		m := o.bufs[i][0][:len(w)]
		v := o.bufs[i][1][:len(w)]
		var vmax []float32
		if o.cfg.AMSGrad {
			vmax = o.bufs[i][2][:len(w)]
		}
		o.job = adamJob{w: w, g: gd, m: m, v: v, vmax: vmax, decoupled: o.decoupled,
			decay: decay, wd: wd, b1: b1f, b2: b2f, omb1: omb1, omb2: omb2,
			stepSize: stepSize, bc2sqrt: bc2sqrt, eps: eps}
		if o.runOf != o {
			o.run, o.runOf = o.job.update, o // bound once: a step allocates nothing
		}
		// Elements are independent: chunks of them run on all cores.
		kernels.ParallelFor(len(w), 4*len(w), o.run)
	}
	o.job = adamJob{}
}

// adamJob is one parameter's Adam update, run in chunks by kernels.ParallelFor.
type adamJob struct {
	w, g, m, v, vmax                        []float32
	decoupled                               bool
	decay, wd, b1, b2, omb1, omb2, stepSize float32
	bc2sqrt, eps                            float32
}

// update applies the update to elements [lo, hi).
func (j *adamJob) update(lo, hi int) {
	w := j.w[lo:hi]
	gd, m, v := j.g[lo:hi][:len(w)], j.m[lo:hi][:len(w)], j.v[lo:hi][:len(w)]
	var vm []float32
	if j.vmax != nil {
		vm = j.vmax[lo:hi][:len(w)]
	}
	b1, b2, omb1, omb2, wd, decay := j.b1, j.b2, j.omb1, j.omb2, j.wd, j.decay
	stepSize, bc2sqrt, eps := j.stepSize, j.bc2sqrt, j.eps
	if vm == nil && !j.decoupled && wd == 0 {
		// The common case, without the per-element branches below, and
		// with one division instead of two: stepSize·m/(√v/c + eps) =
		// (stepSize·c)·m/(√v + eps·c), equal up to rounding (an ulp or so).
		// kernels.AdamUpdate vectorises it where the CPU allows, with the
		// bits of the plain loop.
		kernels.AdamUpdate(w, gd, m, v, b1, b2, omb1, omb2, -stepSize*bc2sqrt, eps*bc2sqrt)
		return
	}
	for k := range w {
		gk := gd[k]
		if j.decoupled {
			w[k] *= decay
		} else if wd != 0 {
			gk += wd * w[k]
		}
		mk := m[k]*b1 + omb1*gk
		vk := v[k]*b2 + omb2*gk*gk
		m[k], v[k] = mk, vk
		if vm != nil {
			if vk > vm[k] || vk != vk {
				vm[k] = vk
			}
			vk = vm[k]
		}
		denom := sqrt32(vk)/bc2sqrt + eps
		w[k] += -stepSize * (mk / denom)
	}
}

func (o *Adam) kindName() string {
	if o.decoupled {
		return "AdamW"
	}
	return "Adam"
}

func (o *Adam) scalars() map[string]float64 {
	return map[string]float64{
		"lr":           o.cfg.LR,
		"beta1":        o.cfg.Betas[0],
		"beta2":        o.cfg.Betas[1],
		"eps":          o.cfg.Eps,
		"weight_decay": o.cfg.WeightDecay,
		"amsgrad":      boolScalar(o.cfg.AMSGrad),
	}
}

// StateDict returns a copy of the moment estimates ("state.<i>.exp_avg",
// "state.<i>.exp_avg_sq", and "state.<i>.max_exp_avg_sq" with AMSGrad), step
// counts and hyper-parameters.
func (o *Adam) StateDict() State { return o.stateDict(o.scalars()) }

// LoadStateDict restores state and hyper-parameters saved by StateDict. On
// error (wrong kind, missing or unexpected keys, a shape that does not match
// the parameter) nothing changes and the error names the key and the shapes.
func (o *Adam) LoadStateDict(s State) error {
	op := o.kindName()
	if err := o.checkScalars(op, s, sortedKeys(o.scalars())); err != nil {
		return err
	}
	ams, err := scalarBool(op, s, "amsgrad")
	if err != nil {
		return err
	}
	cfg := AdamConfig{LR: s.Scalars["lr"], Betas: [2]float64{s.Scalars["beta1"], s.Scalars["beta2"]},
		Eps: s.Scalars["eps"], WeightDecay: s.Scalars["weight_decay"], AMSGrad: ams}
	if err := cfg.validate(op + ".LoadStateDict"); err != nil {
		return err
	}
	steps, err := o.checkTensors(op, s, cfg.names())
	if err != nil {
		return err
	}
	o.applyTensors(s, cfg.names(), steps)
	o.cfg = cfg
	return nil
}
