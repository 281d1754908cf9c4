package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowWalkMatchesIndex checks binary's and SumTo's row walk against the
// element-by-element index table (broadcastIndex) for random broadcastable
// shapes of rank 1 to 4, sizes 0 to 3 (1 to broadcast).
func TestRowWalkMatchesIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 2000; it++ {
		rank := 1 + r.IntN(4)
		out := make([]int, rank)
		for i := range out {
			out[i] = r.IntN(4)
		}
		operand := func() []int {
			n := 1 + r.IntN(rank)
			s := make([]int, n)
			for i := range s {
				s[i] = out[rank-n+i]
				if r.IntN(3) == 0 {
					s[i] = 1
				}
			}
			return s
		}
		as, bs := operand(), operand()
		shape := BroadcastShapes("test", as, bs)
		a, b := Zeros(as...), Zeros(bs...)
		for i := range a.data {
			a.data[i] = float32(r.IntN(100))
		}
		for i := range b.data {
			b.data[i] = float32(r.IntN(100)) / 128
		}
		got := binary("test", a, b, func(x, y float32) float32 { return x*3 - y })
		ia, ib := broadcastIndex(as, shape), broadcastIndex(bs, shape)
		for k := range got.data {
			i, j := k, k
			if ia != nil {
				i = int(ia[k])
			}
			if ib != nil {
				j = int(ib[k])
			}
			if want := a.data[i]*3 - b.data[j]; got.data[k] != want {
				t.Fatalf("%v op %v: [%d] = %g, want %g", as, bs, k, got.data[k], want)
			}
		}
		// The inlined loops of Add, Sub, Mul and Div give what their
		// closures give.
		for k, f := range map[binOp]func(x, y float32) float32{
			opAdd: func(x, y float32) float32 { return x + y },
			opSub: func(x, y float32) float32 { return x - y },
			opMul: func(x, y float32) float32 { return x * y },
			opDiv: func(x, y float32) float32 { return x / y },
		} {
			fast, slow := binaryK("test", k, a, b, nil), binary("test", a, b, f)
			for i, v := range slow.data {
				if fast.data[i] != v && !(v != v && fast.data[i] != fast.data[i]) {
					t.Fatalf("%v op %d %v: [%d] = %g, closure gives %g", as, k, bs, i, fast.data[i], v)
				}
			}
		}
		// SumTo back to each operand's shape, in the same order of additions.
		g := Zeros(shape...)
		for i := range g.data {
			g.data[i] = float32(r.IntN(1000)) / 7
		}
		for _, target := range [][]int{as, bs} {
			sum := SumTo(g, target)
			want := make([]float32, numel(target))
			if idx := broadcastIndex(target, shape); idx != nil {
				for k, v := range g.data {
					want[idx[k]] += v
				}
			} else {
				copy(want, g.data)
			}
			for i, v := range want {
				if sum.data[i] != v {
					t.Fatalf("SumTo(%v → %v): [%d] = %g, want %g", shape, target, i, sum.data[i], v)
				}
			}
		}
	}
}

// TestDropoutMaskMatchesFloat64 checks that Dropout's integer test keeps
// exactly the elements for which rand.Rand.Float64() >= p, draw by draw.
func TestDropoutMaskMatchesFloat64(t *testing.T) {
	for _, p := range []float32{1e-7, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9999} {
		x := Ones(4097)
		out := Dropout(x, p, true, NewRNG(11))
		ref := NewRNG(11)
		for i, v := range out.data {
			kept := ref.r.Float64() >= float64(p)
			if kept != (v != 0) {
				t.Fatalf("p=%g: element %d kept=%v, Float64 rule says %v", p, i, v != 0, kept)
			}
		}
	}
}

// keyMaxPool2x2 is the former scalar pooling: ReLU'd values as integer
// keys with the rank in the low bits, one integer maximum per window.
func keyMaxPool2x2(plane, o []float32, a []uint8, bias float32, w, oh, ow int) {
	key := func(v float32, rank int64) int64 {
		b := math.Float32bits(v + bias)
		var m uint32
		if b-1 < 0x7f800000 {
			m = 0xffffffff
		}
		return int64(b&m)<<2 | rank
	}
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			r0, r1 := plane[2*oy*w:], plane[(2*oy+1)*w:]
			t := max(max(key(r0[2*ox], 3), key(r0[2*ox+1], 2)), max(key(r1[2*ox], 1), key(r1[2*ox+1], 0)))
			o[oy*ow+ox] = math.Float32frombits(uint32(t >> 2))
			a[oy*ow+ox] = uint8(3 - t&3)
		}
	}
}

// TestMaxPoolBiasReLU2x2Paths: the inference path (no winners) and the
// training path (winners) give the values, and the training path the
// winners, of the former integer-key maximum, bit for bit, on planes
// salted with NaN, ±0, ±Inf and ties, for widths that leave a tail.
func TestMaxPoolBiasReLU2x2Paths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, ow := range []int{1, 7, 8, 13, 16, 21} {
		oh, w := 5, 2*ow+1 // an odd plane width: the last column is not pooled
		plane := make([]float32, 2*oh*w+w)
		for i := range plane {
			plane[i] = float32(r.NormFloat64())
			switch r.IntN(8) {
			case 0:
				plane[i] = special[r.IntN(len(special))]
			case 1:
				if i > 0 {
					plane[i] = plane[i-1]
				}
			}
		}
		for _, bias := range []float32{0, 0.3, -0.7} {
			want, wantA := make([]float32, oh*ow), make([]uint8, oh*ow)
			keyMaxPool2x2(plane, want, wantA, bias, w, oh, ow)
			train, trainA, infer := make([]float32, oh*ow), make([]uint8, oh*ow), make([]float32, oh*ow)
			maxPoolBiasReLU2x2(plane, train, trainA, bias, w, oh, ow)
			maxPoolBiasReLU2x2(plane, infer, nil, bias, w, oh, ow)
			for i := range want {
				if math.Float32bits(train[i]) != math.Float32bits(want[i]) || math.Float32bits(infer[i]) != math.Float32bits(want[i]) || trainA[i] != wantA[i] {
					t.Fatalf("ow=%d bias=%v output %d: training path %v at %d, inference path %v; former %v at %d",
						ow, bias, i, train[i], trainA[i], infer[i], want[i], wantA[i])
				}
			}
		}
	}
}

// TestArenaResetTrim: Reset keeps the buffers of every size it gave out;
// ResetTrim keeps only those of the step that ended.
func TestArenaResetTrim(t *testing.T) {
	a := NewArena()
	step := func(n int) {
		x := a.Adopt(Ones(n, 8))
		ReLU(Linear(x, Ones(4, 8), nil))
	}
	sizes := func() map[int]int {
		m := map[int]int{}
		for n, l := range a.free {
			if len(l) > 0 {
				m[n] = len(l)
			}
		}
		return m
	}
	step(3)
	a.Reset()
	step(5)
	a.Reset()
	if got := sizes(); len(got) != 2 || got[12] != 2 || got[20] != 2 {
		t.Fatalf("after Reset of steps of 3 and 5 rows: free buffers %v, want 2 of 12 and 2 of 20 values", got)
	}
	step(5)
	a.ResetTrim()
	if got := sizes(); len(got) != 1 || got[20] != 2 || len(a.free) != 1 {
		t.Fatalf("after ResetTrim of a step of 5 rows: free buffers %v (%d sizes kept), want only the step's 2 of 20 values", got, len(a.free))
	}
	step(5) // reuses them
	if got := sizes(); len(got) != 0 {
		t.Fatalf("a step of 5 rows left free buffers %v unused", got)
	}
	a.ResetTrim()
	var nilArena *Arena
	nilArena.ResetTrim() // a nil arena does nothing
}
