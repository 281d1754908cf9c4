package model

import (
	"errors"
	"fmt"

	"github.com/deepgo/deepgo/nn"
)

// This file registers the recurrent layers nn.LSTM and nn.GRU. Their config
// uses torch.nn.LSTM's argument names:
//
//	{"type": "LSTM", "config": {"input_size": 32, "hidden_size": 64,
//	  "num_layers": 2, "bias": true, "batch_first": true, "dropout": 0.1,
//	  "bidirectional": true}}
//
// num_layers defaults to 1, bias to true, the others to false and 0.

type rnnConfig struct {
	InputSize     int     `json:"input_size"`
	HiddenSize    int     `json:"hidden_size"`
	NumLayers     int     `json:"num_layers"`
	Bias          bool    `json:"bias"`
	BatchFirst    bool    `json:"batch_first"`
	Dropout       float32 `json:"dropout"`
	Bidirectional bool    `json:"bidirectional"`
}

// rnnOptions decodes and checks an LSTM or GRU config with gates gates per
// step, and reserves its parameter values.
func rnnOptions(spec LayerSpec, ctx *BuildContext, gates int) (rnnConfig, nn.RNNOptions, error) {
	cfg := rnnConfig{NumLayers: 1, Bias: true}
	if err := spec.DecodeConfig(&cfg); err != nil {
		return cfg, nn.RNNOptions{}, err
	}
	if cfg.InputSize <= 0 || cfg.HiddenSize <= 0 {
		return cfg, nn.RNNOptions{}, fmt.Errorf("input_size %d and hidden_size %d must be positive", cfg.InputSize, cfg.HiddenSize)
	}
	if cfg.NumLayers < 1 || cfg.NumLayers > nn.MaxRNNLayers {
		return cfg, nn.RNNOptions{}, fmt.Errorf("num_layers %d not in [1, %d]", cfg.NumLayers, nn.MaxRNNLayers)
	}
	if !(cfg.Dropout >= 0 && cfg.Dropout <= 1) {
		return cfg, nn.RNNOptions{}, fmt.Errorf("dropout %v not in [0, 1]", cfg.Dropout)
	}
	dirs := 1
	if cfg.Bidirectional {
		dirs = 2
	}
	var total int64
	for l := range cfg.NumLayers {
		in := cfg.InputSize
		if l > 0 {
			in = dirs * cfg.HiddenSize
		}
		w := mul(gates, cfg.HiddenSize, in+cfg.HiddenSize)
		b := mul(2, gates, cfg.HiddenSize)
		if w < 0 || b < 0 || in+cfg.HiddenSize <= 0 {
			return cfg, nn.RNNOptions{}, errors.New("layer sizes overflow")
		}
		n := w
		if cfg.Bias {
			n += b
		}
		total += int64(dirs) * n
		if total < 0 {
			return cfg, nn.RNNOptions{}, errors.New("layer sizes overflow")
		}
	}
	if err := ctx.Reserve(total); err != nil {
		return cfg, nn.RNNOptions{}, err
	}
	return cfg, nn.RNNOptions{NumLayers: cfg.NumLayers, Bias: cfg.Bias, BatchFirst: cfg.BatchFirst,
		Dropout: cfg.Dropout, Bidirectional: cfg.Bidirectional}, nil
}

func buildLSTM(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg, opt, err := rnnOptions(spec, ctx, 4)
	if err != nil {
		return nil, err
	}
	return nn.NewLSTM(ctx.RNG(), cfg.InputSize, cfg.HiddenSize, opt), nil
}

func buildGRU(spec LayerSpec, ctx *BuildContext) (nn.Module, error) {
	cfg, opt, err := rnnOptions(spec, ctx, 3)
	if err != nil {
		return nil, err
	}
	return nn.NewGRU(ctx.RNG(), cfg.InputSize, cfg.HiddenSize, opt), nil
}

func rnnSpec(typ string, in, hidden int, o nn.RNNOptions) (LayerSpec, error) {
	return NewLayerSpec(typ, rnnConfig{InputSize: in, HiddenSize: hidden, NumLayers: max(o.NumLayers, 1),
		Bias: o.Bias, BatchFirst: o.BatchFirst, Dropout: o.Dropout, Bidirectional: o.Bidirectional})
}

func init() {
	Register("LSTM", leaf(buildLSTM))
	Register("GRU", leaf(buildGRU))
	RegisterEncoder((*nn.LSTM)(nil), func(m nn.Module) (LayerSpec, error) {
		l := m.(*nn.LSTM)
		return rnnSpec("LSTM", l.InputSize, l.HiddenSize, l.Options)
	})
	RegisterEncoder((*nn.GRU)(nil), func(m nn.Module) (LayerSpec, error) {
		g := m.(*nn.GRU)
		return rnnSpec("GRU", g.InputSize, g.HiddenSize, g.Options)
	})
}
