//go:build !amd64 || purego

package kernels

// availableKernels lists the micro-kernels usable in this build: only the
// portable Go one.
func availableKernels() []*microKernel {
	return []*microKernel{goKernel}
}
