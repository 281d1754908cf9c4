//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// maxPoolAsm reports whether MaxPool2x2BiasReLU may use its AVX2 kernel.
var maxPoolAsm = cpu.X86.HasAVX2

// maxPool2x2BiasReLUAVX2 is MaxPool2x2BiasReLU without winners on 8·blocks
// outputs (maxpool_amd64.s).
//
//go:noescape
func maxPool2x2BiasReLUAVX2(o, r0, r1 *float32, bias float32, blocks int)

// maxPool2x2BiasReLUArgAVX2 is MaxPool2x2BiasReLU with winners on 8·blocks
// outputs (maxpool_amd64.s).
//
//go:noescape
func maxPool2x2BiasReLUArgAVX2(o *float32, a *uint8, r0, r1 *float32, bias float32, blocks int)
