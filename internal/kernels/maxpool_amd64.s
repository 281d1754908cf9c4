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

// func maxPool2x2BiasReLUArgAVX2(o *float32, a *uint8, r0, r1 *float32, bias float32, blocks int)
// As maxPool2x2BiasReLUAVX2, plus each output's winner: the rectified
// values are split into the window's four positions (in the shuffled
// order o0 o1 o4 o5 | o2 o3 o6 o7 until the final permutation), the
// offset starts at 3 and is replaced by 2, 1, 0 where that position equals
// the maximum, so the first of equal values wins.
TEXT ·maxPool2x2BiasReLUArgAVX2(SB), NOSPLIT, $0-48
	MOVQ         o+0(FP), DI
	MOVQ         a+8(FP), R8
	MOVQ         r0+16(FP), SI
	MOVQ         r1+24(FP), DX
	VBROADCASTSS bias+32(FP), Y14
	MOVQ         blocks+40(FP), CX
	VXORPS       Y15, Y15, Y15
	VPCMPEQD     Y10, Y10, Y10
	VPSRLD       $31, Y10, Y12 // 1 in every lane
	VPADDD       Y12, Y12, Y13 // 2
	VPSRLD       $30, Y10, Y10 // 3

argloop:
	VADDPS       (SI), Y14, Y0
	VADDPS       32(SI), Y14, Y1
	VADDPS       (DX), Y14, Y2
	VADDPS       32(DX), Y14, Y3
	VMAXPS       Y15, Y0, Y0
	VMAXPS       Y15, Y1, Y1
	VMAXPS       Y15, Y2, Y2
	VMAXPS       Y15, Y3, Y3
	VSHUFPS      $0x88, Y1, Y0, Y4 // offset 0: r0[2i]
	VSHUFPS      $0xDD, Y1, Y0, Y5 // offset 1: r0[2i+1]
	VSHUFPS      $0x88, Y3, Y2, Y6 // offset 2: r1[2i]
	VSHUFPS      $0xDD, Y3, Y2, Y7 // offset 3: r1[2i+1]
	VMAXPS       Y5, Y4, Y8
	VMAXPS       Y7, Y6, Y9
	VMAXPS       Y9, Y8, Y8        // the maxima
	VCMPPS       $0, Y8, Y6, Y9    // offset 2 equals the maximum
	VBLENDVPS    Y9, Y13, Y10, Y11 // 2 there, else 3
	VCMPPS       $0, Y8, Y5, Y9
	VBLENDVPS    Y9, Y12, Y11, Y11 // 1 where offset 1 equals it
	VCMPPS       $0, Y8, Y4, Y9
	VBLENDVPS    Y9, Y15, Y11, Y11 // 0 where offset 0 equals it
	VPERMPD      $0xD8, Y8, Y8
	VPERMPD      $0xD8, Y11, Y11
	VMOVUPS      Y8, (DI)
	VEXTRACTI128 $1, Y11, X9
	VPACKUSDW    X9, X11, X9       // eight offsets as 16-bit words
	VPACKUSWB    X9, X9, X9        // and as bytes
	VMOVQ        X9, (R8)
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $32, DI
	ADDQ         $8, R8
	DECQ         CX
	JNE          argloop
	VZEROUPPER
	RET
