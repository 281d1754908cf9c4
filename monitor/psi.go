package monitor

import (
	"fmt"
	"math"
	"sort"
)

// DefaultEpsilon is the smoothing added to every bin's proportion before
// PSI takes logarithms, so that an empty bin gives a large but finite
// contribution instead of +Inf.
const DefaultEpsilon = 1e-4

// PSI returns the population stability index of the distribution actual
// against the reference expected:
//
//	PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)
//
// where e_i and a_i are the proportions of bin i. Both arguments are bin
// counts or proportions (each is normalised by its own sum). With eps > 0
// every proportion p becomes (p + eps) / (1 + k·eps) for k bins (additive
// smoothing that keeps the proportions summing to 1), so empty bins give a
// finite value. The usual reading: below 0.1 no significant change, 0.1 to
// 0.25 a moderate shift, above 0.25 a significant shift.
//
// It panics if the lengths differ, a value is negative or not finite, or
// eps is negative; an all-zero side gives NaN.
func PSI(expected, actual []float64, eps float64) float64 {
	if len(expected) != len(actual) {
		panic(fmt.Sprintf("monitor.PSI: %d expected bins and %d actual bins", len(expected), len(actual)))
	}
	if eps < 0 || math.IsNaN(eps) || math.IsInf(eps, 0) {
		panic(fmt.Sprintf("monitor.PSI: epsilon %v must be a finite non-negative number", eps))
	}
	se, sa := sum("expected", expected), sum("actual", actual)
	if se == 0 || sa == 0 {
		return math.NaN()
	}
	k := float64(len(expected))
	var psi float64
	for i := range expected {
		e := (expected[i]/se + eps) / (1 + k*eps)
		a := (actual[i]/sa + eps) / (1 + k*eps)
		if a == e {
			continue
		}
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

func sum(what string, xs []float64) float64 {
	var s float64
	for i, x := range xs {
		if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			panic(fmt.Sprintf("monitor.PSI: %s bin %d is %v; counts must be finite and non-negative", what, i, x))
		}
		s += x
	}
	return s
}

// Bin returns the bin of x among the bins delimited by the ascending cut
// points: bin 0 holds x <= cuts[0], bin i holds cuts[i-1] < x <= cuts[i],
// and bin len(cuts) holds x > cuts[len(cuts)-1]. NaN goes to the last bin.
func Bin(cuts []float64, x float64) int {
	if math.IsNaN(x) {
		return len(cuts)
	}
	return sort.SearchFloat64s(cuts, x)
}

// QuantileCuts returns up to bins-1 distinct ascending cut points at the
// quantiles 1/bins, 2/bins, … of values (which it sorts in place), so that
// each bin holds about the same share of values. Repeated values (for
// example many zeros) merge bins, so fewer cuts may come back; constant
// values give one cut at that value. NaNs are ignored; no finite values
// give no cuts.
func QuantileCuts(values []float64, bins int) []float64 {
	if bins < 2 {
		panic(fmt.Sprintf("monitor.QuantileCuts: %d bins, want at least 2", bins))
	}
	vs := values[:0:0]
	for _, v := range values {
		if !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	sort.Float64s(vs)
	n := len(vs)
	if n == 0 {
		return nil
	}
	cuts := make([]float64, 0, bins-1)
	for i := 1; i < bins; i++ {
		// The value at quantile i/bins: the largest value of the first
		// i/bins share, so that bin i-1 ends with it (bins are right-closed).
		idx := int(math.Ceil(float64(i)*float64(n)/float64(bins))) - 1
		idx = min(max(idx, 0), n-1)
		c := vs[idx]
		if math.IsInf(c, 0) {
			continue
		}
		if len(cuts) == 0 || c > cuts[len(cuts)-1] {
			cuts = append(cuts, c)
		}
	}
	if len(cuts) == 0 {
		cuts = append(cuts, vs[n/2])
	}
	return cuts
}

// Proportions returns the share of values falling into each bin of cuts
// (len(cuts)+1 bins), or all zeros when values is empty.
func Proportions(cuts []float64, values []float64) []float64 {
	out := make([]float64, len(cuts)+1)
	for _, v := range values {
		out[Bin(cuts, v)]++
	}
	return normalise(out)
}

// normalise divides counts by their sum in place (no-op for an all-zero
// slice) and returns it.
func normalise(counts []float64) []float64 {
	var s float64
	for _, c := range counts {
		s += c
	}
	if s > 0 {
		for i := range counts {
			counts[i] /= s
		}
	}
	return counts
}
