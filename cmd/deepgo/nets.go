package main

import (
	"fmt"

	"github.com/deepgo/deepgo/apps/digits"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// mnistNet builds the MNIST classifier: "cnn" is the reference network
// Conv2D(1→32, 3×3) → ReLU → MaxPool(2) → Flatten → Linear(5408, 64) → ReLU
// → Linear(64, 10); "mlp" is Flatten → Linear(784, 128) → ReLU →
// Linear(128, 10).
func mnistNet(arch string, seed uint64) (*nn.Sequential, error) {
	r := tensor.NewRNG(seed)
	switch arch {
	case "cnn":
		return digits.CNN(r), nil
	case "mlp":
		return digits.MLP(r), nil
	}
	return nil, usageError{fmt.Errorf("--model %q: want cnn or mlp", arch)}
}

// mlpNet builds a one-hidden-layer classifier for tabular data.
func mlpNet(in, hidden, classes int, seed uint64) *nn.Sequential {
	r := tensor.NewRNG(seed)
	return nn.NewSequential(
		nn.NewLinear(r, in, hidden, true),
		&nn.ReLU{},
		nn.NewLinear(r, hidden, classes, true),
	)
}
