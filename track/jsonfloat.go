package track

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// JSONFloat is a float64 whose JSON form keeps NaN and ±Inf: finite values
// are JSON numbers, the others the strings "NaN", "Infinity" and
// "-Infinity" (the spellings JavaScript's Number() and Python's float()
// accept).
type JSONFloat float64

// MarshalJSON encodes f.
func (f JSONFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON decodes a number or one of the three strings.
func (f *JSONFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = JSONFloat(math.NaN())
		return nil
	case `"Infinity"`, `"+Infinity"`, `"Inf"`:
		*f = JSONFloat(math.Inf(1))
		return nil
	case `"-Infinity"`, `"-Inf"`:
		*f = JSONFloat(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("track.JSONFloat: %s is not a number", b)
	}
	*f = JSONFloat(v)
	return nil
}

// FormatFloat formats v for people: NaN, +Inf and -Inf spelled out,
// otherwise the shortest representation with at most 6 significant digits.
func FormatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// metricJSON is Metric's JSON form, with Value as a JSONFloat.
type metricJSON struct {
	Key   string    `json:"key"`
	Value JSONFloat `json:"value"`
	Step  int64     `json:"step"`
	Time  time.Time `json:"time"`
}

// MarshalJSON encodes m with NaN and ±Inf values as "NaN", "Infinity" and
// "-Infinity" (see JSONFloat).
func (m Metric) MarshalJSON() ([]byte, error) {
	return json.Marshal(metricJSON{m.Key, JSONFloat(m.Value), m.Step, m.Time})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (m *Metric) UnmarshalJSON(b []byte) error {
	var j metricJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Metric{Key: j.Key, Value: float64(j.Value), Step: j.Step, Time: j.Time}
	return nil
}
