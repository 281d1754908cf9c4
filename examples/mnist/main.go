// Command mnist is `deepgo train mnist` in one screen of Go: it trains the
// reference CNN on MNIST for three epochs, evaluates it on the test set and
// saves a model package that `deepgo predict` can use on image files.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/mnist"
	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/train"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt) // Ctrl-C stops cleanly
	defer stop()
	trainSet, testSet, err := mnist.Load("") // from the Go module cache
	if err != nil {
		log.Fatal(err)
	}
	r := tensor.NewRNG(1)
	net := nn.NewSequential(
		nn.NewConv2D(r, 1, 32, 3, tensor.Conv2DOptions{}, true), &nn.ReLU{}, nn.NewMaxPool2D(2),
		nn.NewFlatten(), nn.NewLinear(r, 5408, 64, true), &nn.ReLU{}, nn.NewLinear(r, 64, 10, true),
	)
	loss := func(out, y *tensor.Tensor) *tensor.Tensor { return nn.CrossEntropy(out, y) }
	_, err = train.Fit(ctx, net, train.Config{
		Epochs:    3,
		Optimizer: optim.NewAdam(nn.Parameters(net), optim.AdamConfig{LR: 1e-3}),
		Loss:      loss,
		Train:     data.NewLoader(trainSet, data.LoaderConfig{BatchSize: 32, Shuffle: true, Seed: 1}),
		Metrics:   []train.Metric{train.Accuracy()},
		Callbacks: []train.Callback{train.NewCheckpoint("mnist-example.ckpt", "")},
	})
	if err != nil {
		log.Fatal(err)
	}
	test, err := train.Evaluate(ctx, net, data.NewLoader(testSet, data.LoaderConfig{BatchSize: 500}),
		loss, []train.Metric{train.Accuracy()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("test accuracy %.2f%%, loss %.4f\n", 100*test["accuracy"], test["loss"])
	err = model.Save("mnist-example", &model.Package{
		Name:   "mnist-cnn",
		Module: net,
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "image", DType: model.DTypeFloat32, Shape: []int{-1, 1, 28, 28}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 10}}},
		},
		Preprocess: []model.PreprocessOp{ // image file → MNIST layout (0-255) → [0, 1]
			{Op: model.OpImage, Height: 28, Width: 28, Channels: 1, InvertIfLightBackground: true, Center: "mass"},
			{Op: model.OpScale, Factor: 1.0 / 255},
		},
		Labels:   []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		Metadata: map[string]any{"epochs": 3, "test_accuracy": test["accuracy"]},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved model package to mnist-example")
}
