//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX512(w, gr, m, v *float32, n int, b1, b2, omb1, omb2, num, epsC float32)
// Sixteen elements per iteration; every operation is the separately
// rounded one of adamGo, in the same order (no FMA), so the bits match.
TEXT ·adamAVX512(SB), NOSPLIT, $0-64
	MOVQ         w+0(FP), DI
	MOVQ         gr+8(FP), SI
	MOVQ         m+16(FP), R8
	MOVQ         v+24(FP), R9
	MOVQ         n+32(FP), CX
	VBROADCASTSS b1+40(FP), Z0
	VBROADCASTSS b2+44(FP), Z1
	VBROADCASTSS omb1+48(FP), Z2
	VBROADCASTSS omb2+52(FP), Z3
	VBROADCASTSS num+56(FP), Z4
	VBROADCASTSS epsC+60(FP), Z5
	XORQ         AX, AX

loop:
	CMPQ    CX, $16
	JL      done
	VMOVUPS (SI)(AX*4), Z6
	VMULPS  (R8)(AX*4), Z0, Z7
	VMULPS  Z6, Z2, Z8
	VADDPS  Z8, Z7, Z7
	VMULPS  (R9)(AX*4), Z1, Z9
	VMULPS  Z6, Z3, Z10
	VMULPS  Z6, Z10, Z10
	VADDPS  Z10, Z9, Z9
	VMOVUPS Z7, (R8)(AX*4)
	VMOVUPS Z9, (R9)(AX*4)
	VSQRTPS Z9, Z11
	VADDPS  Z5, Z11, Z11
	VMULPS  Z7, Z4, Z12
	VDIVPS  Z11, Z12, Z12
	VADDPS  (DI)(AX*4), Z12, Z12
	VMOVUPS Z12, (DI)(AX*4)
	ADDQ    $16, AX
	SUBQ    $16, CX
	JMP     loop

done:
	VZEROUPPER
	RET
