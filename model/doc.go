// Package model is deepgo's model package on disk: a directory holding
//
//	model.json           architecture, signature, preprocessing, labels, metadata
//	weights.safetensors  the state dict, with PyTorch's key names
//
// The format is documented in docs/model-format.md.
//
// # Architecture specs and the layer registry
//
// An architecture is a tree of LayerSpec values, {"type": "Conv2D",
// "config": {...}}, where containers ({"type": "Sequential", "layers":
// [...]}) nest. Build rebuilds an nn.Module from a spec with the registered
// builders, without user Go code; every nn layer is built in (Sequential,
// Linear, Conv2D, MaxPool2D, AvgPool2D, Flatten, Dropout, BatchNorm1D,
// BatchNorm2D, LayerNorm, Embedding, ReLU, LeakyReLU, Sigmoid, Tanh, GELU,
// Softmax, LogSoftmax; PyTorch's spellings Conv2d, BatchNorm2d, … are
// accepted too). Config fields use PyTorch's argument names and defaults
// (in_features, kernel_size, padding_idx, …), so the built module has the
// same state-dict keys as the PyTorch model and its weights load strictly.
// Spec goes the other way, so a model built in Go can be saved. Custom
// layers join with Register (spec → module) and RegisterEncoder (module →
// spec).
//
// # Saving and loading
//
// Save writes a Package atomically (temporary directory, fsync, load-back
// check, rename); Load rebuilds the module, loads the weights strictly and
// checks the signature with a forward pass. Both return one-line errors that
// name the file and the problem, and never panic on bad input. Predict runs
// a loaded package on a batch.
//
// # Preprocessing
//
// A package carries a declarative list of preprocessing ops (scale,
// normalize, image, standardize, one_hot) that the CLI and the server apply
// to raw inputs. The tabular ops, which need no imaging, are implemented
// here: Tabular and TabularBatch turn records of named string values into
// feature vectors.
package model
