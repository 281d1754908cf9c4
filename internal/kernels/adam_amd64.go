//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// adamAsm reports whether AdamUpdate may use adamAVX512.
var adamAsm = cpu.X86.HasAVX512F

// adamAVX512 is AdamUpdate on n elements, n a positive multiple of 16
// (adam_amd64.s).
//
//go:noescape
func adamAVX512(w, gr, m, v *float32, n int, b1, b2, omb1, omb2, num, epsC float32)
