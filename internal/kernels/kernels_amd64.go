//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

var avx512Kernel = &microKernel{
	name: "avx512", mr: 12, nr: 32, kc: 256, mc: 240, nc: 4096,
	fns: []kernelFunc{
		sgemmKernelAVX5121x32, sgemmKernelAVX5122x32, sgemmKernelAVX5123x32,
		sgemmKernelAVX5124x32, sgemmKernelAVX5125x32, sgemmKernelAVX5126x32,
		sgemmKernelAVX5127x32, sgemmKernelAVX5128x32, sgemmKernelAVX5129x32,
		sgemmKernelAVX51210x32, sgemmKernelAVX51211x32, sgemmKernelAVX51212x32,
	},
}

// avx512Dot holds the AVX-512 dot-product kernels (they also need AVX512VL).
var avx512Dot = [dotMR][dotNR]dotFunc{
	{sgemmDotAVX5121x1, sgemmDotAVX5121x2, sgemmDotAVX5121x3, sgemmDotAVX5121x4, sgemmDotAVX5121x5, sgemmDotAVX5121x6},
	{sgemmDotAVX5122x1, sgemmDotAVX5122x2, sgemmDotAVX5122x3, sgemmDotAVX5122x4, sgemmDotAVX5122x5, sgemmDotAVX5122x6},
	{sgemmDotAVX5123x1, sgemmDotAVX5123x2, sgemmDotAVX5123x3, sgemmDotAVX5123x4, sgemmDotAVX5123x5, sgemmDotAVX5123x6},
	{sgemmDotAVX5124x1, sgemmDotAVX5124x2, sgemmDotAVX5124x3, sgemmDotAVX5124x4, sgemmDotAVX5124x5, sgemmDotAVX5124x6},
}

var avx2Kernel = &microKernel{
	name: "avx2", mr: 6, nr: 16, kc: 256, mc: 72, nc: 4096,
	fns: []kernelFunc{
		sgemmKernelAVX21x16, sgemmKernelAVX22x16, sgemmKernelAVX23x16,
		sgemmKernelAVX24x16, sgemmKernelAVX25x16, sgemmKernelAVX26x16,
	},
}

func init() {
	if cpu.X86.HasAVX {
		packT8, packT4 = packT8AVX, packT4AVX
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		sigmoidVec, tanhVec, geluVec, geluGradVec = sigmoidAVX2, tanhAVX2, geluAVX2, geluGradAVX2
	}
}

// availableKernels lists the micro-kernels this CPU can run, best first.
func availableKernels() []*microKernel {
	var ks []*microKernel
	if cpu.X86.HasAVX512F {
		if cpu.X86.HasAVX512VL {
			avx512Kernel.dot = &avx512Dot
		}
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}
