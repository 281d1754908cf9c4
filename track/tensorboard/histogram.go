package tensorboard

import (
	"math"
	"slices"
	"sort"
	"sync"
)

// HistogramStats is the content of a TensorBoard HistogramProto: summary
// statistics and bucket counts. Bucket i counts the values v with
// BucketLimit[i-1] <= v < BucketLimit[i] (bucket 0 from -DBL_MAX), the rule
// of TensorFlow's histogram::Histogram.
type HistogramStats struct {
	Min, Max, Num, Sum, SumSquares float64
	// BucketLimit holds the right edges of the buckets, increasing.
	BucketLimit []float64
	// Bucket holds the counts.
	Bucket []float64
}

var (
	defaultEdgesOnce sync.Once
	defaultEdges     []float64
)

// DefaultBucketLimits returns TensorFlow's default histogram bucket edges
// (a new slice): ±1e-12 growing by a factor 1.1 up to 1e20, ±DBL_MAX and 0,
// in increasing order (1551 edges).
func DefaultBucketLimits() []float64 { return slices.Clone(defaultLimits()) }

func defaultLimits() []float64 {
	defaultEdgesOnce.Do(func() {
		var pos []float64
		for v := 1e-12; v < 1e20; v *= 1.1 {
			pos = append(pos, v)
		}
		pos = append(pos, math.MaxFloat64)
		edges := make([]float64, 0, 2*len(pos)+1)
		for i := len(pos) - 1; i >= 0; i-- {
			edges = append(edges, -pos[i])
		}
		edges = append(edges, 0)
		defaultEdges = append(edges, pos...)
	})
	return defaultEdges
}

// NewHistogram computes the histogram of values over the default buckets,
// encoded as TensorFlow does: each run of empty buckets is merged into one
// empty bucket ending at the run's last edge. NaN and ±Inf values are left
// out (Num counts the finite values only). An empty histogram has all
// statistics 0 and a single empty bucket ending at DBL_MAX.
func NewHistogram(values []float32) HistogramStats {
	limits := defaultLimits()
	counts := make([]float64, len(limits))
	h := HistogramStats{Min: math.MaxFloat64, Max: -math.MaxFloat64}
	for _, f := range values {
		v := float64(f)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		// upper_bound: the first edge greater than v.
		b := sort.Search(len(limits), func(i int) bool { return limits[i] > v })
		if b == len(limits) {
			b--
		}
		counts[b]++
		h.Num++
		h.Sum += v
		h.SumSquares += v * v
		h.Min = min(h.Min, v)
		h.Max = max(h.Max, v)
	}
	if h.Num == 0 {
		return HistogramStats{BucketLimit: []float64{math.MaxFloat64}, Bucket: []float64{0}}
	}
	for i := 0; i < len(counts); {
		end, c := limits[i], counts[i]
		i++
		if c <= 0 {
			for i < len(counts) && counts[i] <= 0 {
				end, c = limits[i], counts[i]
				i++
			}
		}
		h.BucketLimit = append(h.BucketLimit, end)
		h.Bucket = append(h.Bucket, c)
	}
	return h
}
