package nn

import "github.com/deepgo/deepgo/tensor"

// RandomSourcer is a module that draws random numbers in its forward pass
// (dropout). Training checkpoints save and restore its generator's state so a
// resumed run draws the same masks as an uninterrupted one.
type RandomSourcer interface {
	RandomSource() *tensor.RNG
}

// RandomSource returns the generator behind the dropout masks.
func (d *Dropout) RandomSource() *tensor.RNG { return d.RNG }

// RandomSources lists, by module path, the generators of every module of m
// that implements RandomSourcer (nil generators are skipped).
func RandomSources(m Module) map[string]*tensor.RNG {
	out := map[string]*tensor.RNG{}
	for _, nm := range NamedModules(m) {
		if rs, ok := nm.Module.(RandomSourcer); ok && rs.RandomSource() != nil {
			out[nm.Name] = rs.RandomSource()
		}
	}
	return out
}
