// Command asmgen generates the assembly of package kernels with avo: the
// SGEMM micro-kernels and dot-product kernels, the transposing pack kernels
// (packT8AVX, packT4AVX) and the vector Sigmoid, Tanh and GELU kernels, all
// in sgemm_amd64.s with their Go declarations.
//
// Run it through `go generate ./internal/kernels` from the repository root.
//
// Every micro-kernel computes one register tile of C from packed panels:
//
//	C[i][j] = alpha·Σ_p A[p*sa+i]·B[p*sb+j] + beta·C[i][j]   (i < mr, j < NR)
//
// where A[p*sa+i] is element (i, p) of op(A) and B[p*sb+j] element (p, j) of
// op(B): packed panels (sa = mr, sb = NR) or, when the stored layout already
// matches, the caller's matrices themselves. The sum over p runs
// in increasing p with one fused multiply-add per step, starting from zero,
// then the result is scaled by alpha and beta·C is added with one more fused
// multiply-add, so every kernel variant rounds identically. When beta is ±0,
// C is written without being read.
package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

const unroll = 4

// prefetchA is how far ahead, in bytes, packed A is prefetched.
const prefetchA = 1024

// variant describes one instruction set's register tiling.
type variant struct {
	name  string // function name prefix
	maxMR int    // rows of the full tile
	vecs  int    // vectors per tile row
	width int    // floats per vector
	vec   func(int) reg.VecPhysical
	bcast []int // registers used for broadcasting A values
	bregs []int // registers holding the B row
}

var (
	avx512 = variant{
		name: "sgemmKernelAVX512", maxMR: 12, vecs: 2, width: 16,
		vec:   func(i int) reg.VecPhysical { return zmm[i] },
		bcast: []int{24, 25, 26, 27},
		bregs: []int{30, 31},
	}
	avx2 = variant{
		name: "sgemmKernelAVX2", maxMR: 6, vecs: 2, width: 8,
		vec:   func(i int) reg.VecPhysical { return ymm[i] },
		bcast: []int{14, 15},
		bregs: []int{12, 13},
	}
)

var zmm = []reg.VecPhysical{
	reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
	reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
	reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31,
}

var ymm = []reg.VecPhysical{
	reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
	reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15,
}

func main() {
	ConstraintExpr("amd64,!purego")
	for mr := 1; mr <= avx512.maxMR; mr++ {
		gen(avx512, mr)
	}
	for mr := 1; mr <= avx2.maxMR; mr++ {
		gen(avx2, mr)
	}
	dotMasks = GLOBL("dotmasks", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(2*i, U16(1<<i-1))
	}
	for r := 1; r <= dotRows; r++ {
		for c := 1; c <= dotCols; c++ {
			genDot(r, c)
		}
	}
	genPackT(8)
	genPackT(4)
	genVecMath()
	Generate()
}

func gen(v variant, mr int) {
	nr := v.vecs * v.width
	name := fmt.Sprintf("%s%dx%d", v.name, mr, nr)
	TEXT(name, NOSPLIT, "func(k int, a *float32, sa int, b *float32, sb int, c *float32, ldc int, alpha, beta float32)")
	Doc(fmt.Sprintf("%s computes a %dx%d tile of C = alpha·A·B + beta·C (k ≥ 1); sa and sb are the k-step strides of A and B in elements.", name, mr, nr))

	k := Load(Param("k"), GP64())
	pa := Load(Param("a"), GP64())
	sa := Load(Param("sa"), GP64())
	pb := Load(Param("b"), GP64())
	sb := Load(Param("sb"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), sa)
	SHLQ(U8(2), sb)
	SHLQ(U8(2), ldc)
	sa3 := GP64()
	LEAQ(Mem{Base: sa, Index: sa, Scale: 2}, sa3)
	sb3 := GP64()
	LEAQ(Mem{Base: sb, Index: sb, Scale: 2}, sb3)

	acc := func(i, j int) reg.VecPhysical { return v.vec(i*v.vecs + j) }
	vbytes := v.width * 4
	// addr returns the address of element disp (bytes) of k step u.
	addr := func(base, stride, stride3 reg.Register, u, disp int) Mem {
		switch u {
		case 0:
			return Mem{Base: base, Disp: disp}
		case 1:
			return Mem{Base: base, Index: stride, Scale: 1, Disp: disp}
		case 2:
			return Mem{Base: base, Index: stride, Scale: 2, Disp: disp}
		default:
			return Mem{Base: base, Index: stride3, Scale: 1, Disp: disp}
		}
	}

	Comment("Prefetch the C tile.")
	t := GP64()
	MOVQ(pc, t)
	for i := 0; i < mr; i++ {
		for off := 0; off < nr*4; off += 64 {
			PREFETCHT0(Mem{Base: t, Disp: off})
		}
		if i+1 < mr {
			ADDQ(ldc, t)
		}
	}

	Comment("Zero the accumulators.")
	for i := 0; i < mr; i++ {
		for j := 0; j < v.vecs; j++ {
			r := acc(i, j)
			if v.width == 16 {
				VPXORD(r, r, r)
			} else {
				VXORPS(r, r, r)
			}
		}
	}

	step := func(u int) {
		for j := 0; j < v.vecs; j++ {
			VMOVUPS(addr(pb, sb, sb3, u, j*vbytes), v.vec(v.bregs[j]))
		}
		for i := 0; i < mr; i++ {
			bc := v.vec(v.bcast[(u*mr+i)%len(v.bcast)])
			VBROADCASTSS(addr(pa, sa, sa3, u, i*4), bc)
			for j := 0; j < v.vecs; j++ {
				VFMADD231PS(v.vec(v.bregs[j]), bc, acc(i, j))
			}
		}
	}

	Label(name + "_loop4")
	CMPQ(k, U8(unroll))
	JL(LabelRef(name + "_tail"))
	for u := 0; u < unroll; u++ {
		step(u)
		// Prefetch packed A (the operand streamed from L2) ahead.
		if off := u * 64; off < unroll*mr*4 {
			PREFETCHT0(Mem{Base: pa, Disp: prefetchA + off})
		}
	}
	LEAQ(Mem{Base: pa, Index: sa, Scale: 4}, pa)
	LEAQ(Mem{Base: pb, Index: sb, Scale: 4}, pb)
	SUBQ(U8(unroll), k)
	JMP(LabelRef(name + "_loop4"))

	Label(name + "_tail")
	TESTQ(k, k)
	JE(LabelRef(name + "_store"))
	step(0)
	ADDQ(sa, pa)
	ADDQ(sb, pb)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))

	Label(name + "_store")
	alpha := v.vec(v.bcast[0])
	beta := v.vec(v.bcast[1])
	VBROADCASTSS(mustAddr("alpha"), alpha)
	for i := 0; i < mr; i++ {
		for j := 0; j < v.vecs; j++ {
			VMULPS(alpha, acc(i, j), acc(i, j))
		}
	}
	bb := GP32()
	MOVL(mustAddr("beta"), bb)
	ANDL(U32(0x7fffffff), bb)
	JE(LabelRef(name + "_beta0"))

	Comment("C = alpha·AB + beta·C")
	VBROADCASTSS(mustAddr("beta"), beta)
	for i := 0; i < mr; i++ {
		for j := 0; j < v.vecs; j++ {
			VFMADD231PS(Mem{Base: pc, Disp: j * vbytes}, beta, acc(i, j))
			VMOVUPS(acc(i, j), Mem{Base: pc, Disp: j * vbytes})
		}
		if i+1 < mr {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()

	Label(name + "_beta0")
	Comment("C = alpha·AB; C is not read.")
	for i := 0; i < mr; i++ {
		for j := 0; j < v.vecs; j++ {
			VMOVUPS(acc(i, j), Mem{Base: pc, Disp: j * vbytes})
		}
		if i+1 < mr {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()
}

func mustAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// Dot-product kernels for C = alpha·A·Bᵀ + beta·C with A (rows×k) and B
// (cols×k) both stored row-major: no packing, each C element is a dot
// product of two contiguous rows, accumulated 16 lanes wide and reduced at
// the end.
// dotMasks holds the uint16 masks (1<<r)-1 for r < 16.
var dotMasks Mem

const (
	dotRows = 4
	dotCols = 6
)

func genDot(rows, cols int) {
	name := fmt.Sprintf("sgemmDotAVX512%dx%d", rows, cols)
	TEXT(name, NOSPLIT, "func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)")
	Doc(fmt.Sprintf("%s computes a %dx%d tile of C = alpha·A·Bᵀ + beta·C (k ≥ 1) from row-major A and B with row strides lda and ldb (elements).", name, rows, cols))

	acc := func(i, j int) reg.VecPhysical { return zmm[i*cols+j] }
	avec := func(i int) reg.VecPhysical { return zmm[24+i] }
	bvec := func(j int) reg.VecPhysical { return zmm[28+j%2] }

	k := Load(Param("k"), GP64())
	lda := Load(Param("lda"), GP64())
	ldb := Load(Param("ldb"), GP64())
	SHLQ(U8(2), lda)
	SHLQ(U8(2), ldb)
	pa := make([]reg.GPVirtual, rows)
	pa[0] = Load(Param("a"), GP64()).(reg.GPVirtual)
	for i := 1; i < rows; i++ {
		pa[i] = GP64()
		LEAQ(Mem{Base: pa[i-1], Index: lda, Scale: 1}, pa[i])
	}
	pb := make([]reg.GPVirtual, cols)
	pb[0] = Load(Param("b"), GP64()).(reg.GPVirtual)
	for j := 1; j < cols; j++ {
		pb[j] = GP64()
		LEAQ(Mem{Base: pb[j-1], Index: ldb, Scale: 1}, pb[j])
	}

	Comment("Zero the accumulators.")
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			VPXORD(acc(i, j), acc(i, j), acc(i, j))
		}
	}
	off := GP64()
	XORQ(off, off)
	end := GP64()
	MOVQ(k, end)
	ANDQ(I32(-16), end)
	SHLQ(U8(2), end)

	body := func(load func(m Mem, r reg.VecPhysical)) {
		for i := 0; i < rows; i++ {
			load(Mem{Base: pa[i], Index: off, Scale: 1}, avec(i))
		}
		for j := 0; j < cols; j++ {
			load(Mem{Base: pb[j], Index: off, Scale: 1}, bvec(j))
			for i := 0; i < rows; i++ {
				VFMADD231PS(avec(i), bvec(j), acc(i, j))
			}
		}
	}

	Label(name + "_loop")
	CMPQ(off, end)
	JGE(LabelRef(name + "_tail"))
	body(func(m Mem, r reg.VecPhysical) { VMOVUPS(m, r) })
	ADDQ(U8(64), off)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_tail")
	Comment("Remaining k mod 16 elements, through a zeroing load mask.")
	ANDQ(U8(15), k)
	JE(LabelRef(name + "_reduce"))
	tbl := GP64()
	LEAQ(dotMasks, tbl)
	KMOVW(Mem{Base: tbl, Index: k, Scale: 2}, reg.K1)
	body(func(m Mem, r reg.VecPhysical) { VMOVUPS_Z(m, reg.K1, r) })

	Label(name + "_reduce")
	Comment("Reduce each accumulator to lane 0.")
	t := zmm[28]
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			z := acc(i, j)
			y, x := z.AsY(), z.AsX()
			VEXTRACTF64X4(U8(1), z, t.AsY())
			VADDPS(t.AsY(), y, y)
			VEXTRACTF32X4(U8(1), y, t.AsX())
			VADDPS(t.AsX(), x, x)
			VPERMILPS(U8(0x4e), x, t.AsX())
			VADDPS(t.AsX(), x, x)
			VPERMILPS(U8(0xb1), x, t.AsX())
			VADDSS(t.AsX(), x, x)
			VMULSS(mustAddr("alpha"), x, x)
		}
	}
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	bb := GP32()
	MOVL(mustAddr("beta"), bb)
	ANDL(U32(0x7fffffff), bb)
	JE(LabelRef(name + "_beta0"))
	beta := zmm[29].AsX()
	VMOVSS(mustAddr("beta"), beta)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			x := acc(i, j).AsX()
			VFMADD231SS(Mem{Base: pc, Disp: 4 * j}, beta, x)
			VMOVSS(x, Mem{Base: pc, Disp: 4 * j})
		}
		if i+1 < rows {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()

	Label(name + "_beta0")
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			VMOVSS(acc(i, j).AsX(), Mem{Base: pc, Disp: 4 * j})
		}
		if i+1 < rows {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()
}

// Transposing pack kernels (AVX): packT{8,4}AVX(d, ds, src, ld, blocks)
// sets d[(8q+p)*ds+i] = src[i*ld+8q+p] for rows i < 8 (or 4), p < 8 and
// q < blocks, with ds and ld in elements: they copy 8 or 4 rows of a
// row-major matrix into the columns of a panel, 8 columns per block, the
// transposition done in registers (unpack, shuffle, lane permute) instead
// of one float at a time.
func genPackT(rows int) {
	name := fmt.Sprintf("packT%dAVX", rows)
	TEXT(name, NOSPLIT, "func(d *float32, ds int, src *float32, ld int, blocks int)")
	Doc(fmt.Sprintf("%s sets d[(8q+p)*ds+i] = src[i*ld+8q+p] for i < %d, p < 8, q < blocks (ds and ld in elements; blocks ≥ 1).", name, rows))
	d := Load(Param("d"), GP64())
	ds := Load(Param("ds"), GP64())
	s := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ds)
	SHLQ(U8(2), ld)
	ld3 := GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, ld3)
	ds3 := GP64()
	LEAQ(Mem{Base: ds, Index: ds, Scale: 2}, ds3)
	// s4 and d4 point at source row 4 and destination row 4 of the block.
	s4 := GP64()
	LEAQ(Mem{Base: s, Index: ld, Scale: 4}, s4)
	d4 := GP64()
	LEAQ(Mem{Base: d, Index: ds, Scale: 4}, d4)
	row := func(base reg.Register, i int) Mem {
		switch i % 4 {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: ld, Scale: 1}
		case 2:
			return Mem{Base: base, Index: ld, Scale: 2}
		default:
			return Mem{Base: base, Index: ld3, Scale: 1}
		}
	}
	out := func(base reg.Register, j int) Mem {
		switch j % 4 {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: ds, Scale: 1}
		case 2:
			return Mem{Base: base, Index: ds, Scale: 2}
		default:
			return Mem{Base: base, Index: ds3, Scale: 1}
		}
	}
	r := ymm[:8]   // source rows
	t := ymm[8:16] // unpacked pairs
	Label(name + "_loop")
	for i := 0; i < rows; i++ {
		base := s
		if i >= 4 {
			base = s4
		}
		VMOVUPS(row(base, i), r[i])
	}
	// t[2h] = (r[2h][0] r[2h+1][0] r[2h][1] r[2h+1][1] | same for 4, 5),
	// t[2h+1] the same for columns 2, 3 | 6, 7.
	for h := 0; h < rows/2; h++ {
		VUNPCKLPS(r[2*h+1], r[2*h], t[2*h])
		VUNPCKHPS(r[2*h+1], r[2*h], t[2*h+1])
	}
	// r[c] (c < 4) for rows 0-3 and r[4+c] for rows 4-7 hold columns c
	// (low lane) and c+4 (high lane).
	for g := 0; g < rows/4; g++ {
		a, b := t[4*g:4*g+2], t[4*g+2:4*g+4]
		VSHUFPS(U8(0x44), b[0], a[0], r[4*g+0])
		VSHUFPS(U8(0xEE), b[0], a[0], r[4*g+1])
		VSHUFPS(U8(0x44), b[1], a[1], r[4*g+2])
		VSHUFPS(U8(0xEE), b[1], a[1], r[4*g+3])
	}
	if rows == 8 {
		for c := 0; c < 4; c++ {
			VPERM2F128(U8(0x20), r[4+c], r[c], t[c])
			VPERM2F128(U8(0x31), r[4+c], r[c], t[4+c])
		}
		for j := 0; j < 8; j++ {
			base := d
			if j >= 4 {
				base = d4
			}
			VMOVUPS(t[j], out(base, j))
		}
	} else {
		for c := 0; c < 4; c++ {
			VMOVUPS(r[c].(reg.VecPhysical).AsX(), out(d, c))
			VEXTRACTF128(U8(1), r[c], out(d4, c))
		}
	}
	ADDQ(U8(32), s)
	ADDQ(U8(32), s4)
	LEAQ(Mem{Base: d, Index: ds, Scale: 8}, d)
	LEAQ(Mem{Base: d4, Index: ds, Scale: 8}, d4)
	DECQ(n)
	JNE(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}

// Vector sigmoid and tanh (AVX2 + FMA, 8 floats at a time) from a float32
// exp: x is clamped to [-87, 88], split as n·ln2 + r with n = round(x·log2 e)
// and |r| ≤ ln2/2 (ln2 in two parts, Cephes' expf), e^r is Cephes' degree-7
// polynomial, and 2^n is put into the exponent bits. The relative error of
// exp is about 1.4 ulp; sigmoid(x) = 1/(1+e^-x); tanh(x) is Cephes'
// odd polynomial for |x| < 0.625 and sign(x)·(1 − 2/(e^{2|x|}+1)) above.

// vmConsts lists the constants of the vector math kernels, each stored as 8
// copies (32 bytes) in the table vmconst.
var vmConsts = []struct {
	name string
	bits uint32
}{
	{"hi", f32bits(88)}, {"lo", f32bits(-87)}, {"log2e", f32bits(1.44269504088896341)},
	{"ln2hi", f32bits(0.693359375)}, {"ln2lo", f32bits(-2.12194440e-4)},
	{"p5", f32bits(1.9875691500e-4)}, {"p4", f32bits(1.3981999507e-3)}, {"p3", f32bits(8.3334519073e-3)},
	{"p2", f32bits(4.1665795894e-2)}, {"p1", f32bits(1.6666665459e-1)}, {"p0", f32bits(5.0000001201e-1)},
	{"one", f32bits(1)}, {"two", f32bits(2)}, {"bias", 127}, {"sign", 0x80000000}, {"abs", 0x7fffffff},
	{"tsmall", f32bits(0.625)},
	{"t4", f32bits(-5.70498872745e-3)}, {"t3", f32bits(2.06390887954e-2)}, {"t2", f32bits(-5.37397155531e-2)},
	{"t1", f32bits(1.33314422036e-1)}, {"t0", f32bits(-3.33332819422e-1)},
	// GELU: Φ(x) = ½(1 + erf(x/√2)) with Cephes' erff (x·E(x²) below 1) and
	// erfcf (e^{-x²}/x·P(1/x²) below 2, R(1/x²) above).
	{"nan", 0x7fc00000}, {"hmask", 0xfffff000}, {"mhalf", f32bits(-0.5)},
	{"rsqrt2", f32bits(0.70710678118654752)}, {"half", f32bits(0.5)}, {"rsqrt2pi", f32bits(0.39894228040143268)},
	{"e6", f32bits(7.853861353153693e-5)}, {"e5", f32bits(-8.010193625184903e-4)}, {"e4", f32bits(5.188327685732524e-3)},
	{"e3", f32bits(-2.685381193529856e-2)}, {"e2", f32bits(1.128358514861418e-1)}, {"e1", f32bits(-3.761262582423300e-1)},
	{"e0", f32bits(1.128379165726710)},
	{"q8", f32bits(2.326819970068386e-2)}, {"q7", f32bits(-1.387039388740657e-1)}, {"q6", f32bits(3.687424674597105e-1)},
	{"q5", f32bits(-5.824733027278666e-1)}, {"q4", f32bits(6.210004621745983e-1)}, {"q3", f32bits(-4.944515323274145e-1)},
	{"q2", f32bits(3.404879937665872e-1)}, {"q1", f32bits(-2.741127028184656e-1)}, {"q0", f32bits(5.638259427386472e-1)},
	{"r7", f32bits(-1.047766399936249e+1)}, {"r6", f32bits(1.297719955372516e+1)}, {"r5", f32bits(-7.495518717768503)},
	{"r4", f32bits(2.921019019210786)}, {"r3", f32bits(-1.015265279202700)}, {"r2", f32bits(4.218463358204948e-1)},
	{"r1", f32bits(-2.820767439740514e-1)}, {"r0", f32bits(5.641895067754075e-1)},
}

func f32bits(f float32) uint32 { return math.Float32bits(f) }

var vmTable Mem

// vc returns the memory operand of constant name.
func vc(name string) Mem {
	for i, c := range vmConsts {
		if c.name == name {
			return vmTable.Offset(32 * i)
		}
	}
	panic("no vector constant " + name)
}

func genVecMath() {
	vmTable = GLOBL("vmconst", RODATA|NOPTR)
	for i, c := range vmConsts {
		for j := 0; j < 8; j++ {
			DATA(32*i+4*j, U32(c.bits))
		}
	}
	genVecFunc("sigmoidAVX2", "sets dst[i] = 1/(1+e^-src[i]) for i < 8·blocks (blocks ≥ 1).", func(x reg.VecPhysical) {
		VXORPS(vc("sign"), x, x)
		// Below -88 the result is under 6e-39 (0 once past -104): give 0
		// rather than the clamped e^88's 6e-39.
		under := ymm[5]
		VCMPPS(U8(14), vc("hi"), x, under) // -x > 88
		vexp(x)
		VADDPS(vc("one"), x, x)
		t := ymm[1]
		VMOVUPS(vc("one"), t)
		VDIVPS(x, t, x)
		VANDNPS(x, under, x)
	})
	genVecFunc("tanhAVX2", "sets dst[i] = tanh(src[i]) for i < 8·blocks (blocks ≥ 1).", func(x reg.VecPhysical) {
		a, e, sgn, z, p, m := ymm[1], ymm[5], ymm[6], ymm[7], ymm[8], ymm[9]
		VANDPS(vc("abs"), x, a)
		VANDPS(vc("sign"), x, sgn)
		// Large |x|: sign·(1 − 2/(e^{2|x|}+1)).
		VADDPS(a, a, e)
		vexp(e)
		VADDPS(vc("one"), e, e)
		t := ymm[2]
		VMOVUPS(vc("two"), t)
		VDIVPS(e, t, e)
		VMOVUPS(vc("one"), t)
		VSUBPS(e, t, e)
		VORPS(sgn, e, e)
		// Small |x|: x + x·z·P(z), z = x².
		VMULPS(x, x, z)
		VMOVUPS(vc("t4"), p)
		for _, c := range []string{"t3", "t2", "t1", "t0"} {
			VFMADD213PS(vc(c), z, p)
		}
		VMULPS(z, p, p)
		VFMADD213PS(x, x, p)              // p = p·x + x
		VCMPPS(U8(1), vc("tsmall"), a, m) // |x| < 0.625
		VBLENDVPS(m, p, e, x)
	})
	genVecFunc("geluAVX2", "sets dst[i] = src[i]·Φ(src[i]) (GELU, erf form) for i < 8·blocks (blocks ≥ 1).", func(x reg.VecPhysical) {
		phi := vcdf(x)
		VMULPS(phi, x, x)
	})
	genVecFunc2("geluGradAVX2", "sets dst[i] = grad[i]·(Φ(x[i]) + x[i]·φ(x[i])) (the GELU derivative times grad) for i < 8·blocks (blocks ≥ 1).", func(x, g reg.VecPhysical) {
		phi := vcdf(x)
		// vcdf left e^{-x²/2} in ymm13: φ(x) = that/√(2π).
		e := ymm[13]
		VMULPS(vc("rsqrt2pi"), e, e)
		VFMADD213PS(phi, x, e) // e = e·x + Φ
		VMULPS(g, e, x)
	})
}

// vcdf computes Φ(x) for the 8 floats in x (kept) into ymm8, leaving
// e^{-x²/2} in ymm13; it uses ymm1-ymm13.
func vcdf(x reg.VecPhysical) reg.VecPhysical {
	u, a, z, s, q, y, p, r, e, t := ymm[5], ymm[6], ymm[7], ymm[8], ymm[9], ymm[10], ymm[11], ymm[12], ymm[13], ymm[1]
	VMULPS(vc("rsqrt2"), x, u)
	VANDPS(vc("abs"), u, a)
	VMULPS(u, u, z)
	// |u| < 1: Φ = ½ + ½·u·E(u²).
	VMOVUPS(vc("e6"), s)
	for _, c := range []string{"e5", "e4", "e3", "e2", "e1", "e0"} {
		VFMADD213PS(vc(c), z, s)
	}
	VMULPS(u, s, s)
	VMOVUPS(vc("half"), t)
	VFMADD213PS(t, t, s) // s = s·½ + ½
	// |u| ≥ 1: erfc(|u|) = e^{-u²}/|u|·(P or R)(1/u²); Φ = erfc/2 below
	// zero and 1 − erfc/2 above.
	VMOVUPS(vc("one"), q)
	VDIVPS(a, q, q)
	VMULPS(q, q, y)
	VMOVUPS(vc("q8"), p)
	for _, c := range []string{"q7", "q6", "q5", "q4", "q3", "q2", "q1", "q0"} {
		VFMADD213PS(vc(c), y, p)
	}
	VMOVUPS(vc("r7"), r)
	for _, c := range []string{"r6", "r5", "r4", "r3", "r2", "r1", "r0"} {
		VFMADD213PS(vc(c), y, r)
	}
	VCMPPS(U8(1), vc("two"), a, t) // |u| < 2
	VBLENDVPS(t, p, r, p)
	// e^{-u²} = e^{-x²/2}, from x itself: x = h + l with h the top 12
	// bits of x, so that h²/2 is exact and x²/2 = h²/2 + l·(x+h)/2 loses
	// nothing to the rounding of x² (which would cost up to ~100 ulp of
	// e^{-x²/2} near x = -10).
	h, l := ymm[10], ymm[12]
	VANDPS(vc("hmask"), x, h)
	VSUBPS(h, x, l)
	VADDPS(x, h, e)
	VMULPS(e, l, l) // l·(x+h)
	VMULPS(h, h, h)
	VMULPS(vc("mhalf"), h, e)
	VCMPPS(U8(1), vc("lo"), e, t) // -h²/2 < -87: e^{-x²/2} is 0 in float32 terms
	vexp(e)
	VANDNPS(e, t, e)
	VMULPS(vc("mhalf"), l, h)
	vexp(h)
	VMULPS(h, e, e) // e^{-x²/2}, kept for φ
	VMULPS(e, q, q)
	VMULPS(q, p, p)
	VMULPS(vc("half"), p, p) // erfc(|u|)/2
	VMOVUPS(vc("one"), t)
	VSUBPS(p, t, r)                // 1 − erfc/2
	VBLENDVPS(u, p, r, p)          // sign bit of u picks erfc/2
	VCMPPS(U8(1), vc("one"), a, t) // |u| < 1
	VBLENDVPS(t, s, p, s)
	return s
}

// genVecFunc2 generates func name(dst, grad, x *float32, blocks int) applying
// body to x in ymm0 and g in ymm14 (body may use ymm1-ymm13); a NaN in x
// gives a NaN output.
func genVecFunc2(name, doc string, body func(x, g reg.VecPhysical)) {
	TEXT(name, NOSPLIT, "func(dst, grad, x *float32, blocks int)")
	Doc(name + " " + doc)
	d := Load(Param("dst"), GP64())
	pg := Load(Param("grad"), GP64())
	px := Load(Param("x"), GP64())
	n := Load(Param("blocks"), GP64())
	x, g, nan := ymm[0], ymm[14], ymm[15]
	Label(name + "_loop")
	VMOVUPS(Mem{Base: px}, x)
	VMOVUPS(Mem{Base: pg}, g)
	VCMPPS(U8(3), x, x, nan)
	body(x, g)
	VBLENDVPS(nan, vc("nan"), x, x)
	VMOVUPS(x, Mem{Base: d})
	ADDQ(U8(32), px)
	ADDQ(U8(32), pg)
	ADDQ(U8(32), d)
	DECQ(n)
	JNE(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}

// vexp replaces the 8 floats in x by their exponentials; it uses ymm2-ymm4.
func vexp(x reg.VecPhysical) {
	n, r, p := ymm[2], ymm[3], ymm[4]
	VMINPS(vc("hi"), x, x)
	VMAXPS(vc("lo"), x, x)
	VMULPS(vc("log2e"), x, n)
	VROUNDPS(U8(0), n, n) // to nearest
	VMOVAPS(x, r)
	VFNMADD231PS(vc("ln2hi"), n, r) // r -= n·ln2hi
	VFNMADD231PS(vc("ln2lo"), n, r) // r -= n·ln2lo
	VMOVUPS(vc("p5"), p)
	for _, c := range []string{"p4", "p3", "p2", "p1", "p0"} {
		VFMADD213PS(vc(c), r, p) // p = p·r + c
	}
	VMULPS(r, r, x)
	VFMADD213PS(r, x, p) // p = p·r² + r
	VADDPS(vc("one"), p, p)
	VCVTPS2DQ(n, n)
	VPADDD(vc("bias"), n, n)
	VPSLLD(U8(23), n, n)
	VMULPS(n, p, x)
}

// genVecFunc generates func name(dst, src *float32, blocks int) applying
// body to ymm0, 8 floats at a time (body may use ymm1-ymm13); a NaN input
// gives a NaN output.
func genVecFunc(name, doc string, body func(x reg.VecPhysical)) {
	TEXT(name, NOSPLIT, "func(dst, src *float32, blocks int)")
	Doc(name + " " + doc)
	d := Load(Param("dst"), GP64())
	s := Load(Param("src"), GP64())
	n := Load(Param("blocks"), GP64())
	x, orig, nan := ymm[0], ymm[15], ymm[14]
	Label(name + "_loop")
	VMOVUPS(Mem{Base: s}, x)
	VMOVAPS(x, orig)
	VCMPPS(U8(3), x, x, nan) // unordered: x is NaN
	body(x)
	VBLENDVPS(nan, orig, x, x) // NaN in, NaN out
	VMOVUPS(x, Mem{Base: d})
	ADDQ(U8(32), s)
	ADDQ(U8(32), d)
	DECQ(n)
	JNE(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}
