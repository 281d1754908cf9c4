// Command deepgo trains, evaluates and runs deepgo models from the command
// line.
//
//	deepgo train mnist [flags]          train the MNIST digit classifier
//	deepgo train tabular --data F.csv   train an MLP on a CSV file
//	deepgo eval --model DIR             evaluate a model package
//	deepgo predict --model DIR FILE...  classify images or CSV rows
//	deepgo summary --model DIR          print the model's layers
//	deepgo version                      print the version
//
// Models are saved as model packages (package model): a directory holding
// model.json and weights.safetensors, with the labels and the preprocessing
// that predict and eval apply to raw inputs.
//
// Every error is printed as one line naming the file and the problem, and
// the command exits with status 1 (2 for bad usage, 130 when training was
// interrupted). The first Ctrl-C stops training after the current step and
// writes a resumable checkpoint; a second one exits at once.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "\ndeepgo: interrupt: stopping after the current step (press Ctrl-C again to quit now)")
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, "deepgo: interrupted")
		os.Exit(130)
	}()
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}
