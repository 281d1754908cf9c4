package kernels

import "unsafe"

// goKernel is the portable micro-kernel, used where no assembly kernel
// applies (other architectures, the purego build tag, CPUs without FMA).
var goKernel = &microKernel{
	name: "go", mr: 4, nr: 8, kc: 256, mc: 64, nc: 2048,
	fns: []kernelFunc{goKernel1, goKernel2, goKernel3, goKernel4},
}

func goKernel1(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32) {
	goKernelRows(1, k, a, sa, b, sb, c, ldc, alpha, beta)
}

func goKernel2(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32) {
	goKernelRows(2, k, a, sa, b, sb, c, ldc, alpha, beta)
}

func goKernel3(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32) {
	goKernelRows(3, k, a, sa, b, sb, c, ldc, alpha, beta)
}

func goKernel4(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32) {
	goKernelRows(4, k, a, sa, b, sb, c, ldc, alpha, beta)
}

// goKernelRows computes an mr×8 tile (mr ≤ 4) with the same contract as the
// assembly kernels: C = alpha·Σ_p A[p*sa+i]·B[p*sb+j] + beta·C, C not read
// when beta is 0.
func goKernelRows(mr, k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32) {
	const nr = 8
	as := unsafe.Slice(a, (k-1)*sa+mr)
	bs := unsafe.Slice(b, (k-1)*sb+nr)
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	var acc [4][nr]float32
	for i := 0; i < mr; i++ {
		// Eight scalar accumulators the compiler keeps in registers.
		var c0, c1, c2, c3, c4, c5, c6, c7 float32
		for p := 0; p < k; p++ {
			av := as[p*sa+i]
			bp := bs[p*sb : p*sb+nr : p*sb+nr]
			c0 += av * bp[0]
			c1 += av * bp[1]
			c2 += av * bp[2]
			c3 += av * bp[3]
			c4 += av * bp[4]
			c5 += av * bp[5]
			c6 += av * bp[6]
			c7 += av * bp[7]
		}
		acc[i] = [nr]float32{c0, c1, c2, c3, c4, c5, c6, c7}
	}
	for i := 0; i < mr; i++ {
		crow := cs[i*ldc : i*ldc+nr : i*ldc+nr]
		for j, v := range acc[i] {
			v *= alpha
			if beta != 0 {
				v += beta * crow[j]
			}
			crow[j] = v
		}
	}
}
