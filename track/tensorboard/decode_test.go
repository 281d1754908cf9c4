package tensorboard_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/deepgo/deepgo/track/tensorboard"
)

// event is a decoded tensorflow.Event (the fields deepgo writes).
type event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Writer      string
	Values      []value
}

// value is a decoded Summary.Value.
type value struct {
	Tag    string
	Kind   string // "scalar", "histo" or "image"
	Scalar float32
	Histo  tensorboard.HistogramStats
	Image  imageValue
}

type imageValue struct {
	Height, Width, Colorspace int64
	PNG                       []byte
}

// fields calls fn for every field of a protobuf message, failing on
// malformed input.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var raw []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, raw, x); err != nil {
			return err
		}
	}
	return nil
}

func unexpected(msg string, num protowire.Number, typ protowire.Type) error {
	return fmt.Errorf("%s: unexpected field %d (wire type %d)", msg, num, typ)
}

func decodeEvent(b []byte) (event, error) {
	var ev event
	err := fields(b, func(num protowire.Number, typ protowire.Type, raw []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(x)
		case num == 2 && typ == protowire.VarintType:
			ev.Step = int64(x)
		case num == 3 && typ == protowire.BytesType:
			ev.FileVersion = string(raw)
		case num == 10 && typ == protowire.BytesType:
			return fields(raw, func(num protowire.Number, typ protowire.Type, raw []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return unexpected("SourceMetadata", num, typ)
				}
				ev.Writer = string(raw)
				return nil
			})
		case num == 5 && typ == protowire.BytesType:
			return fields(raw, func(num protowire.Number, typ protowire.Type, raw []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return unexpected("Summary", num, typ)
				}
				v, err := decodeValue(raw)
				ev.Values = append(ev.Values, v)
				return err
			})
		default:
			return unexpected("Event", num, typ)
		}
		return nil
	})
	return ev, err
}

func decodeValue(b []byte) (value, error) {
	var v value
	err := fields(b, func(num protowire.Number, typ protowire.Type, raw []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			v.Tag = string(raw)
		case num == 2 && typ == protowire.Fixed32Type:
			v.Kind, v.Scalar = "scalar", math.Float32frombits(uint32(x))
		case num == 5 && typ == protowire.BytesType:
			v.Kind = "histo"
			return decodeHisto(raw, &v.Histo)
		case num == 4 && typ == protowire.BytesType:
			v.Kind = "image"
			return fields(raw, func(num protowire.Number, typ protowire.Type, raw []byte, x uint64) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					v.Image.Height = int64(x)
				case num == 2 && typ == protowire.VarintType:
					v.Image.Width = int64(x)
				case num == 3 && typ == protowire.VarintType:
					v.Image.Colorspace = int64(x)
				case num == 4 && typ == protowire.BytesType:
					v.Image.PNG = bytes.Clone(raw)
				default:
					return unexpected("Image", num, typ)
				}
				return nil
			})
		default:
			return unexpected("Value", num, typ)
		}
		return nil
	})
	return v, err
}

func decodeHisto(b []byte, h *tensorboard.HistogramStats) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, raw []byte, x uint64) error {
		switch {
		case num >= 1 && num <= 5 && typ == protowire.Fixed64Type:
			*[]*float64{&h.Min, &h.Max, &h.Num, &h.Sum, &h.SumSquares}[num-1] = math.Float64frombits(x)
		case (num == 6 || num == 7) && typ == protowire.BytesType:
			if len(raw)%8 != 0 {
				return fmt.Errorf("HistogramProto field %d: %d bytes", num, len(raw))
			}
			var vs []float64
			for len(raw) > 0 {
				u, _ := protowire.ConsumeFixed64(raw)
				vs = append(vs, math.Float64frombits(u))
				raw = raw[8:]
			}
			if num == 6 {
				h.BucketLimit = vs
			} else {
				h.Bucket = vs
			}
		default:
			return unexpected("HistogramProto", num, typ)
		}
		return nil
	})
}

// readEvents reads and decodes every event of the file at path.
func readEvents(t *testing.T, path string) []event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := tensorboard.ReadRecords(f)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	evs := make([]event, len(recs))
	for i, r := range recs {
		if evs[i], err = decodeEvent(r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if len(evs) == 0 || evs[0].FileVersion != tensorboard.FileVersion {
		t.Fatalf("first event is not the file version: %+v", evs)
	}
	return evs
}

// summaries flattens the summary values of events with their steps.
type stepValue struct {
	Step int64
	value
}

func summaries(evs []event) []stepValue {
	var out []stepValue
	for _, ev := range evs[1:] {
		for _, v := range ev.Values {
			out = append(out, stepValue{ev.Step, v})
		}
	}
	return out
}
