//go:build amd64 && !purego

#include "textflag.h"

// func maxPool2x2BiasReLUAVX2(o, r0, r1 *float32, bias float32, blocks int)
// Eight outputs (sixteen values of each row) per iteration. VMAXPS with
// zero as its second source gives zero for NaN and for −0, so every value
// is rectified exactly as positiveMask does before the maxima.
TEXT ·maxPool2x2BiasReLUAVX2(SB), NOSPLIT, $0-40
	MOVQ         o+0(FP), DI
	MOVQ         r0+8(FP), SI
	MOVQ         r1+16(FP), DX
	VBROADCASTSS bias+24(FP), Y7
	MOVQ         blocks+32(FP), CX
	VXORPS       Y6, Y6, Y6

loop:
	VADDPS  (SI), Y7, Y0
	VADDPS  32(SI), Y7, Y1
	VADDPS  (DX), Y7, Y2
	VADDPS  32(DX), Y7, Y3
	VMAXPS  Y6, Y0, Y0       // relu: max(x, +0), +0 when x is NaN or −0
	VMAXPS  Y6, Y1, Y1
	VMAXPS  Y6, Y2, Y2
	VMAXPS  Y6, Y3, Y3
	VMAXPS  Y2, Y0, Y0       // rows: A = outputs 0-3 as pairs
	VMAXPS  Y3, Y1, Y1       // B = outputs 4-7
	VSHUFPS $0x88, Y1, Y0, Y2 // even: A0 A2 B0 B2 | A4 A6 B4 B6
	VSHUFPS $0xDD, Y1, Y0, Y3 // odd:  A1 A3 B1 B3 | A5 A7 B5 B7
	VMAXPS  Y3, Y2, Y2        // o0 o1 o4 o5 | o2 o3 o6 o7
	VPERMPD $0xD8, Y2, Y2     // o0 o1 o2 o3 o4 o5 o6 o7
	VMOVUPS Y2, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $32, DI
	DECQ    CX
	JNE     loop
	VZEROUPPER
	RET
