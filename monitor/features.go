package monitor

import (
	"fmt"
	"math"
)

// Input kinds of a profile: how rows of the model input are summarised
// into feature groups.
const (
	// KindImage: rows of shape [C, H, W] or [H, W] (H, W >= 8). Features:
	// mean intensity, standard deviation, ink fraction (share of pixels
	// above 0.5), centre of mass x and y (0 = left/top, 1 = right/bottom)
	// and the mean of each cell of a Grid×Grid block grid.
	KindImage = "image"
	// KindTabular: rows of shape [D] with D <= MaxTabularColumns; one
	// feature per column.
	KindTabular = "tabular"
	// KindSummary: any other input (long vectors, sequences of token ids);
	// features: mean, standard deviation, minimum and maximum of the row.
	KindSummary = "summary"
)

// MaxTabularColumns is the widest row profiled column by column; wider
// vector inputs are summarised (KindSummary).
const MaxTabularColumns = 256

// InkThreshold is the intensity above which an image pixel counts as ink
// for the "ink" feature.
const InkThreshold = 0.5

// InputSpec says how rows of a model input are turned into feature values.
// It is stored in the profile, so live traffic is summarised exactly as the
// reference was.
type InputSpec struct {
	// Kind is KindImage, KindTabular or KindSummary.
	Kind string `json:"kind"`
	// Shape is the shape of one row (the input without its batch
	// dimension).
	Shape []int `json:"shape"`
	// Grid is the side of the block grid of image features.
	Grid int `json:"grid,omitempty"`
	// Names are the feature names, in order.
	Names []string `json:"names"`
}

// rowLen returns the number of values of one row.
func (s *InputSpec) rowLen() int {
	n := 1
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

// newInputSpec chooses the kind of features for rows of shape row. names
// (optional) name tabular columns.
func newInputSpec(row []int, grid int, names []string) (*InputSpec, error) {
	for _, d := range row {
		if d <= 0 {
			return nil, fmt.Errorf("monitor: row shape %v: dimensions must be positive", row)
		}
	}
	spec := &InputSpec{Shape: append([]int(nil), row...)}
	var h, w int
	switch {
	case len(row) == 3 && row[1] >= 8 && row[2] >= 8:
		h, w = row[1], row[2]
	case len(row) == 2 && row[0] >= 8 && row[1] >= 8:
		h, w = row[0], row[1]
	}
	switch {
	case h > 0:
		spec.Kind = KindImage
		spec.Grid = min(max(grid, 1), h, w)
		spec.Names = []string{"mean", "std", "ink", "com_x", "com_y"}
		for r := 0; r < spec.Grid; r++ {
			for c := 0; c < spec.Grid; c++ {
				spec.Names = append(spec.Names, fmt.Sprintf("block_%d_%d", r, c))
			}
		}
	case len(row) == 1 && row[0] <= MaxTabularColumns:
		spec.Kind = KindTabular
		if len(names) != 0 && len(names) != row[0] {
			return nil, fmt.Errorf("monitor: %d feature names for rows of %d columns", len(names), row[0])
		}
		for i := 0; i < row[0]; i++ {
			if len(names) > 0 {
				spec.Names = append(spec.Names, names[i])
			} else {
				spec.Names = append(spec.Names, fmt.Sprintf("col_%d", i))
			}
		}
	default:
		spec.Kind = KindSummary
		spec.Names = []string{"mean", "std", "min", "max"}
	}
	return spec, nil
}

// validate checks a spec read from JSON.
func (s *InputSpec) validate() error {
	if len(s.Shape) == 0 {
		return fmt.Errorf("input.shape is missing")
	}
	n := 1
	for _, d := range s.Shape {
		if d <= 0 || d > 1<<24 {
			return fmt.Errorf("input.shape %v: dimensions must be in 1..%d", s.Shape, 1<<24)
		}
		n *= d
		if n > 1<<28 {
			return fmt.Errorf("input.shape %v is too large", s.Shape)
		}
	}
	want, err := newInputSpec(s.Shape, s.Grid, nil)
	if err != nil {
		return err
	}
	if want.Kind != s.Kind {
		return fmt.Errorf("input.kind %q does not fit rows of shape %v (want %q)", s.Kind, s.Shape, want.Kind)
	}
	if want.Kind == KindImage && s.Grid != want.Grid {
		return fmt.Errorf("input.grid %d does not fit images of shape %v", s.Grid, s.Shape)
	}
	if len(s.Names) != len(want.Names) {
		return fmt.Errorf("input.names has %d names, rows of shape %v have %d features", len(s.Names), s.Shape, len(want.Names))
	}
	return nil
}

// extract writes the feature values of one row (len(row) == rowLen) into
// dst (len(dst) == len(Names)).
func (s *InputSpec) extract(row []float32, dst []float64) {
	switch s.Kind {
	case KindImage:
		s.extractImage(row, dst)
	case KindTabular:
		for i, v := range row {
			dst[i] = float64(v)
		}
	default:
		var sum, sq float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range row {
			x := float64(v)
			sum += x
			sq += x * x
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		n := float64(len(row))
		mean := sum / n
		dst[0], dst[1], dst[2], dst[3] = mean, math.Sqrt(math.Max(sq/n-mean*mean, 0)), lo, hi
	}
}

func (s *InputSpec) extractImage(row []float32, dst []float64) {
	c, h, w := 1, s.Shape[0], s.Shape[1]
	if len(s.Shape) == 3 {
		c, h, w = s.Shape[0], s.Shape[1], s.Shape[2]
	}
	g := s.Grid
	blocks := dst[5:]
	for i := range blocks {
		blocks[i] = 0
	}
	var sum, sq, ink, mass, mx, my float64
	plane := h * w
	for y := 0; y < h; y++ {
		by := y * g / h
		for x := 0; x < w; x++ {
			var v float64
			for ch := 0; ch < c; ch++ {
				v += float64(row[ch*plane+y*w+x])
			}
			v /= float64(c)
			sum += v
			sq += v * v
			if v > InkThreshold {
				ink++
			}
			if v > 0 {
				mass += v
				mx += v * float64(x)
				my += v * float64(y)
			}
			blocks[by*g+x*g/w] += v
		}
	}
	n := float64(plane)
	mean := sum / n
	dst[0] = mean
	dst[1] = math.Sqrt(math.Max(sq/n-mean*mean, 0))
	dst[2] = ink / n
	dst[3], dst[4] = 0.5, 0.5
	if mass > 0 {
		dst[3] = mx / mass / float64(max(w-1, 1))
		dst[4] = my / mass / float64(max(h-1, 1))
	}
	for by := 0; by < g; by++ {
		rows := ceilDiv((by+1)*h, g) - ceilDiv(by*h, g)
		for bx := 0; bx < g; bx++ {
			cols := ceilDiv((bx+1)*w, g) - ceilDiv(bx*w, g)
			blocks[by*g+bx] /= float64(rows * cols)
		}
	}
}

// ceilDiv returns ⌈a/b⌉ for a >= 0, b > 0: the first pixel index of block
// a/b's span when pixel y falls in block y*g/h.
func ceilDiv(a, b int) int { return (a + b - 1) / b }
