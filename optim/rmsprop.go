package optim

import (
	"github.com/deepgo/deepgo/tensor"
)

// RMSPropConfig holds the hyper-parameters of RMSProp. Zero values that
// would be degenerate take PyTorch's defaults: LR 0 means 1e-2, Alpha 0 means
// 0.99, Eps 0 means 1e-8.
type RMSPropConfig struct {
	// LR is the learning rate.
	LR float64
	// Alpha is the smoothing constant of the squared-gradient average.
	Alpha float64
	// Eps is added to the denominator for numerical stability.
	Eps float64
	// WeightDecay adds WeightDecay*param to the gradient (L2 penalty).
	WeightDecay float64
	// Momentum is the momentum factor (0 disables momentum).
	Momentum float64
	// Centered normalises by an estimate of the gradient's variance
	// instead of its raw second moment.
	Centered bool
}

func (c RMSPropConfig) withDefaults() RMSPropConfig {
	if c.LR == 0 {
		c.LR = 1e-2
	}
	if c.Alpha == 0 {
		c.Alpha = 0.99
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

func (c RMSPropConfig) validate(op string) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"LR", c.LR}, {"Alpha", c.Alpha}, {"Eps", c.Eps}, {"WeightDecay", c.WeightDecay}, {"Momentum", c.Momentum}} {
		if err := checkNonNeg(op, f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func (c RMSPropConfig) names() []string {
	n := []string{"square_avg"}
	if c.Momentum > 0 {
		n = append(n, "momentum_buffer")
	}
	if c.Centered {
		n = append(n, "grad_avg")
	}
	return n
}

// RMSProp is the RMSProp optimizer, exactly as torch.optim.RMSprop:
//
//	g = grad + weight_decay*p
//	sq = alpha*sq + (1-alpha)*g*g
//	avg = sqrt(sq) + eps, or centered: ga = alpha*ga + (1-alpha)*g; avg = sqrt(sq - ga*ga) + eps
//	momentum > 0: buf = momentum*buf + g/avg; p = p - lr*buf
//	otherwise:    p = p - lr*g/avg
type RMSProp struct {
	base
	cfg RMSPropConfig
}

// NewRMSProp makes an RMSProp optimizer over params. It panics if a hyper-parameter is invalid.
func NewRMSProp(params []*tensor.Tensor, cfg RMSPropConfig) *RMSProp {
	cfg = cfg.withDefaults()
	mustOK(cfg.validate("NewRMSProp"))
	return &RMSProp{base: newBase("NewRMSProp", "RMSProp", params, cfg.names()), cfg: cfg}
}

// Config returns the current hyper-parameters.
func (o *RMSProp) Config() RMSPropConfig { return o.cfg }

// Params returns the parameters the optimizer updates.
func (o *RMSProp) Params() []*tensor.Tensor { return o.params }

// LR returns the current learning rate.
func (o *RMSProp) LR() float64 { return o.cfg.LR }

// SetLR changes the learning rate used by later steps.
func (o *RMSProp) SetLR(lr float64) { o.cfg.LR = lr }

// ZeroGrad sets every parameter's gradient to zero in place.
func (o *RMSProp) ZeroGrad() { o.zeroGrad() }

// Step applies one RMSProp update to every parameter whose gradient is not nil.
func (o *RMSProp) Step() {
	lr := float32(o.cfg.LR)
	alpha := float32(o.cfg.Alpha)
	oma := float32(1 - o.cfg.Alpha)
	eps := float32(o.cfg.Eps)
	wd := float32(o.cfg.WeightDecay)
	mom := float32(o.cfg.Momentum)
	for i, p := range o.params {
		g := p.Grad()
		if g == nil {
			continue
		}
		o.steps[i]++
		w := p.Data()
		gd := g.Data()[:len(w)]
		sq := o.bufs[i][0][:len(w)]
		var buf, ga []float32
		next := 1
		if mom > 0 {
			buf = o.bufs[i][next][:len(w)]
			next++
		}
		if o.cfg.Centered {
			ga = o.bufs[i][next][:len(w)]
		}
		for k := range w {
			gk := gd[k]
			if wd != 0 {
				gk += wd * w[k]
			}
			sq[k] = sq[k]*alpha + oma*gk*gk
			var avg float32
			if ga != nil {
				ga[k] = ga[k]*alpha + oma*gk
				avg = sqrt32(sq[k] - ga[k]*ga[k])
			} else {
				avg = sqrt32(sq[k])
			}
			avg += eps
			if buf != nil {
				buf[k] = buf[k]*mom + gk/avg
				w[k] -= lr * buf[k]
			} else {
				w[k] -= lr * (gk / avg)
			}
		}
	}
}

func (o *RMSProp) scalars() map[string]float64 {
	return map[string]float64{
		"lr":           o.cfg.LR,
		"alpha":        o.cfg.Alpha,
		"eps":          o.cfg.Eps,
		"weight_decay": o.cfg.WeightDecay,
		"momentum":     o.cfg.Momentum,
		"centered":     boolScalar(o.cfg.Centered),
	}
}

// StateDict returns a copy of the running averages ("state.<i>.square_avg",
// "state.<i>.momentum_buffer" with momentum, "state.<i>.grad_avg" when
// centered), step counts and hyper-parameters.
func (o *RMSProp) StateDict() State { return o.stateDict(o.scalars()) }

// LoadStateDict restores state and hyper-parameters saved by StateDict. On
// error (wrong kind, missing or unexpected keys, a shape that does not match
// the parameter) nothing changes and the error names the key and the shapes.
func (o *RMSProp) LoadStateDict(s State) error {
	const op = "RMSProp"
	if err := o.checkScalars(op, s, sortedKeys(o.scalars())); err != nil {
		return err
	}
	centered, err := scalarBool(op, s, "centered")
	if err != nil {
		return err
	}
	cfg := RMSPropConfig{LR: s.Scalars["lr"], Alpha: s.Scalars["alpha"], Eps: s.Scalars["eps"],
		WeightDecay: s.Scalars["weight_decay"], Momentum: s.Scalars["momentum"], Centered: centered}
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
