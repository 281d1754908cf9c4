package digits_test

import (
	"testing"

	"github.com/deepgo/deepgo/apps/digits"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

func TestNetworks(t *testing.T) {
	x := tensor.Zeros(2, 1, 28, 28)
	for name, tc := range map[string]struct {
		m      *nn.Sequential
		params int
		keys   []string
	}{
		"cnn": {digits.CNN(tensor.NewRNG(1)), 347146, []string{"0.weight", "0.bias", "4.weight", "4.bias", "6.weight", "6.bias"}},
		"mlp": {digits.MLP(tensor.NewRNG(1)), 101770, []string{"1.weight", "1.bias", "3.weight", "3.bias"}},
	} {
		if n := nn.NumParams(tc.m); n != tc.params {
			t.Errorf("%s: %d parameters, want %d", name, n, tc.params)
		}
		sd := nn.StateDict(tc.m)
		for _, k := range tc.keys {
			if sd[k] == nil {
				t.Errorf("%s: no state-dict key %q", name, k)
			}
		}
		if len(sd) != len(tc.keys) {
			t.Errorf("%s: %d state-dict keys, want %v", name, len(sd), tc.keys)
		}
		var out *tensor.Tensor
		tensor.NoGrad(func() { out = tc.m.Forward(x) })
		if s := out.Shape(); len(s) != 2 || s[0] != 2 || s[1] != 10 {
			t.Errorf("%s: output shape %v, want [2 10]", name, s)
		}
	}
}
