//go:build !amd64 || purego

package kernels

// adamAsm is false: this build has only the portable loop.
const adamAsm = false

func adamAVX512(w, gr, m, v *float32, n int, b1, b2, omb1, omb2, num, epsC float32) {
	panic("kernels: adamAVX512 called in a build without assembly")
}
