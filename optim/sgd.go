package optim

import (
	"fmt"

	"github.com/deepgo/deepgo/tensor"
)

// SGDConfig holds the hyper-parameters of SGD (torch.optim.SGD's, same defaults: zero).
type SGDConfig struct {
	// LR is the learning rate; it must be positive.
	LR float64
	// Momentum is the momentum factor (0 disables momentum).
	Momentum float64
	// Dampening reduces the gradient's share of the momentum buffer.
	Dampening float64
	// WeightDecay adds WeightDecay*param to the gradient (L2 penalty).
	WeightDecay float64
	// Nesterov enables Nesterov momentum (needs Momentum > 0 and Dampening 0).
	Nesterov bool
}

func (c SGDConfig) validate(op string) error {
	if !(c.LR >= 0) {
		return fmt.Errorf("optim.%s: LR must be >= 0, got %v", op, c.LR)
	}
	if err := checkNonNeg(op, "Momentum", c.Momentum); err != nil {
		return err
	}
	if err := checkNonNeg(op, "WeightDecay", c.WeightDecay); err != nil {
		return err
	}
	if c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0) {
		return fmt.Errorf("optim.%s: Nesterov momentum needs Momentum > 0 and Dampening 0, got Momentum %v, Dampening %v", op, c.Momentum, c.Dampening)
	}
	return nil
}

func (c SGDConfig) names() []string {
	if c.Momentum != 0 {
		return []string{"momentum_buffer"}
	}
	return nil
}

// SGD is stochastic gradient descent with optional momentum, dampening,
// Nesterov momentum and weight decay, exactly as torch.optim.SGD:
//
//	d = grad + weight_decay*p
//	buf = d (first step), else momentum*buf + (1-dampening)*d
//	d = d + momentum*buf (Nesterov) or buf
//	p = p - lr*d
type SGD struct {
	base
	cfg SGDConfig
}

// NewSGD makes an SGD optimizer over params. It panics if a hyper-parameter
// is invalid (LR must be positive).
func NewSGD(params []*tensor.Tensor, cfg SGDConfig) *SGD {
	if !(cfg.LR > 0) {
		panic(fmt.Sprintf("optim.NewSGD: LR must be positive, got %v", cfg.LR))
	}
	mustOK(cfg.validate("NewSGD"))
	return &SGD{base: newBase("NewSGD", "SGD", params, cfg.names()), cfg: cfg}
}

// Config returns the current hyper-parameters.
func (o *SGD) Config() SGDConfig { return o.cfg }

// Params returns the parameters the optimizer updates.
func (o *SGD) Params() []*tensor.Tensor { return o.params }

// LR returns the current learning rate.
func (o *SGD) LR() float64 { return o.cfg.LR }

// SetLR changes the learning rate used by later steps.
func (o *SGD) SetLR(lr float64) { o.cfg.LR = lr }

// ZeroGrad sets every parameter's gradient to zero in place.
func (o *SGD) ZeroGrad() { o.zeroGrad() }

// Step applies one SGD update to every parameter whose gradient is not nil.
func (o *SGD) Step() {
	lr := float32(o.cfg.LR)
	wd := float32(o.cfg.WeightDecay)
	mom := float32(o.cfg.Momentum)
	keep := float32(1 - o.cfg.Dampening)
	for i, p := range o.params {
		g := p.Grad()
		if g == nil {
			continue
		}
		w, gd := p.Data(), g.Data()
		first := o.steps[i] == 0
		o.steps[i]++
		if mom == 0 {
			for k := range w {
				d := gd[k]
				if wd != 0 {
					d += wd * w[k]
				}
				w[k] -= lr * d
			}
			continue
		}
		buf := o.bufs[i][0][:len(w)]
		gd = gd[:len(w)]
		for k := range w {
			d := gd[k]
			if wd != 0 {
				d += wd * w[k]
			}
			if first {
				buf[k] = d
			} else {
				buf[k] = buf[k]*mom + keep*d
			}
			if o.cfg.Nesterov {
				d += mom * buf[k]
			} else {
				d = buf[k]
			}
			w[k] -= lr * d
		}
	}
}

func (o *SGD) scalars() map[string]float64 {
	return map[string]float64{
		"lr":           o.cfg.LR,
		"momentum":     o.cfg.Momentum,
		"dampening":    o.cfg.Dampening,
		"weight_decay": o.cfg.WeightDecay,
		"nesterov":     boolScalar(o.cfg.Nesterov),
	}
}

// StateDict returns a copy of the momentum buffers ("state.<i>.momentum_buffer",
// present when Momentum != 0), step counts and hyper-parameters.
func (o *SGD) StateDict() State { return o.stateDict(o.scalars()) }

// LoadStateDict restores state and hyper-parameters saved by StateDict. On
// error (wrong kind, missing or unexpected keys, a shape that does not match
// the parameter) nothing changes and the error names the key and the shapes.
func (o *SGD) LoadStateDict(s State) error {
	const op = "SGD"
	if err := o.checkScalars(op, s, sortedKeys(o.scalars())); err != nil {
		return err
	}
	nesterov, err := scalarBool(op, s, "nesterov")
	if err != nil {
		return err
	}
	cfg := SGDConfig{LR: s.Scalars["lr"], Momentum: s.Scalars["momentum"], Dampening: s.Scalars["dampening"],
		WeightDecay: s.Scalars["weight_decay"], Nesterov: nesterov}
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
