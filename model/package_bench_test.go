package model_test

import (
	"fmt"
	"testing"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// BenchmarkPredict times Package.Predict of the seed MNIST CNN (random
// weights) at the batch sizes a server runs.
func BenchmarkPredict(b *testing.B) {
	r := tensor.NewRNG(1)
	opt := tensor.Conv2DOptions{Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	m := nn.NewSequential(nn.NewConv2D(r, 1, 32, 3, opt, true), &nn.ReLU{}, nn.NewMaxPool2D(2), nn.NewFlatten(),
		nn.NewLinear(r, 5408, 64, true), &nn.ReLU{}, nn.NewLinear(r, 64, 10, true))
	nn.Eval(m)
	pkg := &model.Package{Name: "cnn", Module: m}
	for _, bs := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("b=%d", bs), func(b *testing.B) {
			x := tensor.RandN(r, bs, 1, 28, 28)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pkg.Predict(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
