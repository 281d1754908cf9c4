// Package digits is the handwritten-digit application: the reference MNIST
// networks, built only from deepgo's public packages. The CLI
// (`deepgo train mnist`), the benchmarks and the examples share them.
package digits

import (
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// CNN is the seed CNN: Conv2D(1→32, 3×3) → ReLU → MaxPool(2) → Flatten →
// Linear(5408, 64) → ReLU → Linear(64, 10), for inputs [N, 1, 28, 28].
// Its state-dict keys are PyTorch's for the same nn.Sequential (0.weight,
// 4.weight, 6.weight …).
func CNN(r *tensor.RNG) *nn.Sequential {
	return nn.NewSequential(
		nn.NewConv2D(r, 1, 32, 3, tensor.Conv2DOptions{}, true),
		&nn.ReLU{},
		nn.NewMaxPool2D(2),
		nn.NewFlatten(),
		nn.NewLinear(r, 32*13*13, 64, true),
		&nn.ReLU{},
		nn.NewLinear(r, 64, 10, true),
	)
}

// MLP is Flatten → Linear(784, 128) → ReLU → Linear(128, 10).
func MLP(r *tensor.RNG) *nn.Sequential {
	return nn.NewSequential(
		nn.NewFlatten(),
		nn.NewLinear(r, 28*28, 128, true),
		&nn.ReLU{},
		nn.NewLinear(r, 128, 10, true),
	)
}
