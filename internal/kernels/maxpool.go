package kernels

import (
	"fmt"
	"math"
)

// MaxPool2x2BiasReLU sets o[i] to the largest of relu(v + bias) over the
// 2×2 window r0[2i], r0[2i+1], r1[2i], r1[2i+1], where relu(x) is x for
// x > 0 and +0 otherwise (NaN included): one output row of a 2×2, stride-2
// max pool of the biased, rectified rows r0 and r1 of a convolution. This
// equals rectifying after pooling (v + bias is monotonic in v), except that
// a NaN is never the maximum. r0 and r1 must hold at least 2·len(o) values.
//
// When a is not nil it also receives each output's winner: a[i] is the
// offset in its window, 0 to 3 in the order above; among equal values the
// first wins (all rectified to zero: offset 0). a must then hold len(o)
// values.
func MaxPool2x2BiasReLU(o []float32, a []uint8, r0, r1 []float32, bias float32) {
	n := len(o)
	if len(r0) < 2*n || len(r1) < 2*n || a != nil && len(a) < n {
		panic(fmt.Sprintf("kernels.MaxPool2x2BiasReLU: rows of %d and %d values and %d offsets (nil: none) for %d outputs, want %d, %d and %d",
			len(r0), len(r1), len(a), n, 2*n, 2*n, n))
	}
	if !maxPoolAsm || n < 8 {
		maxPool2x2BiasReLUGo(o, a, r0, r1, bias)
		return
	}
	block := func(k, blocks int) {
		if a == nil {
			maxPool2x2BiasReLUAVX2(&o[k], &r0[2*k], &r1[2*k], bias, blocks)
		} else {
			maxPool2x2BiasReLUArgAVX2(&o[k], &a[k], &r0[2*k], &r1[2*k], bias, blocks)
		}
	}
	block(0, n/8)
	if n%8 != 0 {
		// The last 8 outputs again, overlapping the blocks done: the
		// outputs they share get the same values.
		block(n-8, 1)
	}
}

// reluBias is relu(v + bias) as MaxPool2x2BiasReLU defines it.
func reluBias(v, bias float32) float32 {
	b := math.Float32bits(v + bias)
	return math.Float32frombits(b & positiveMask(b))
}

// maxPool2x2BiasReLUGo is the portable MaxPool2x2BiasReLU.
func maxPool2x2BiasReLUGo(o []float32, a []uint8, r0, r1 []float32, bias float32) {
	r0, r1 = r0[:2*len(o)], r1[:2*len(o)]
	for i := range o {
		v0, v1 := reluBias(r0[2*i], bias), reluBias(r0[2*i+1], bias)
		v2, v3 := reluBias(r1[2*i], bias), reluBias(r1[2*i+1], bias)
		m := max(v0, v1, v2, v3)
		o[i] = m
		if a == nil {
			continue
		}
		k := uint8(3)
		if v2 == m {
			k = 2
		}
		if v1 == m {
			k = 1
		}
		if v0 == m {
			k = 0
		}
		a[i] = k
	}
}
