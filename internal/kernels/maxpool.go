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
func MaxPool2x2BiasReLU(o, r0, r1 []float32, bias float32) {
	if len(r0) < 2*len(o) || len(r1) < 2*len(o) {
		panic(fmt.Sprintf("kernels.MaxPool2x2BiasReLU: rows of %d and %d values for %d outputs, want %d each", len(r0), len(r1), len(o), 2*len(o)))
	}
	n := len(o)
	if !maxPoolAsm || n < 8 {
		maxPool2x2BiasReLUGo(o, r0, r1, bias)
		return
	}
	maxPool2x2BiasReLUAVX2(&o[0], &r0[0], &r1[0], bias, n/8)
	if n%8 != 0 {
		// The last 8 outputs again, overlapping the blocks done: the
		// outputs they share get the same values.
		k := n - 8
		maxPool2x2BiasReLUAVX2(&o[k], &r0[2*k], &r1[2*k], bias, 1)
	}
}

// maxPool2x2BiasReLUGo is the portable MaxPool2x2BiasReLU.
func maxPool2x2BiasReLUGo(o, r0, r1 []float32, bias float32) {
	r0, r1 = r0[:2*len(o)], r1[:2*len(o)]
	relu := func(v float32) float32 {
		b := math.Float32bits(v + bias)
		return math.Float32frombits(b & positiveMask(b))
	}
	for i := range o {
		o[i] = max(relu(r0[2*i]), relu(r0[2*i+1]), relu(r1[2*i]), relu(r1[2*i+1]))
	}
}

// MaxPool2x2BiasReLUArg is MaxPool2x2BiasReLU that also sets a[i] to the
// offset of output i's winner in its window, 0 to 3 in the order r0[2i],
// r0[2i+1], r1[2i], r1[2i+1]; among equal values the first wins (all
// rectified to zero: offset 0). a must hold len(o) values.
func MaxPool2x2BiasReLUArg(o []float32, a []uint8, r0, r1 []float32, bias float32) {
	if len(r0) < 2*len(o) || len(r1) < 2*len(o) || len(a) < len(o) {
		panic(fmt.Sprintf("kernels.MaxPool2x2BiasReLUArg: rows of %d and %d values and %d offsets for %d outputs, want %d, %d and %d",
			len(r0), len(r1), len(a), len(o), 2*len(o), 2*len(o), len(o)))
	}
	n := len(o)
	if !maxPoolAsm || n < 8 {
		maxPool2x2BiasReLUArgGo(o, a, r0, r1, bias)
		return
	}
	maxPool2x2BiasReLUArgAVX2(&o[0], &a[0], &r0[0], &r1[0], bias, n/8)
	if n%8 != 0 {
		k := n - 8 // overlapping the blocks done, as in MaxPool2x2BiasReLU
		maxPool2x2BiasReLUArgAVX2(&o[k], &a[k], &r0[2*k], &r1[2*k], bias, 1)
	}
}

// maxPool2x2BiasReLUArgGo is the portable MaxPool2x2BiasReLUArg.
func maxPool2x2BiasReLUArgGo(o []float32, a []uint8, r0, r1 []float32, bias float32) {
	r0, r1, a = r0[:2*len(o)], r1[:2*len(o)], a[:len(o)]
	relu := func(v float32) float32 {
		b := math.Float32bits(v + bias)
		return math.Float32frombits(b & positiveMask(b))
	}
	for i := range o {
		v0, v1, v2, v3 := relu(r0[2*i]), relu(r0[2*i+1]), relu(r1[2*i]), relu(r1[2*i+1])
		m := max(v0, v1, v2, v3)
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
		o[i], a[i] = m, k
	}
}
