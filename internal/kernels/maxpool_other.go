//go:build !amd64 || purego

package kernels

// maxPoolAsm is false: this build has only the portable loop.
const maxPoolAsm = false

func maxPool2x2BiasReLUAVX2(o, r0, r1 *float32, bias float32, blocks int) {
	panic("kernels: maxPool2x2BiasReLUAVX2 called in a build without assembly")
}

func maxPool2x2BiasReLUArgAVX2(o *float32, a *uint8, r0, r1 *float32, bias float32, blocks int) {
	panic("kernels: maxPool2x2BiasReLUArgAVX2 called in a build without assembly")
}
