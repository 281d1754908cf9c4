package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ProgressBar draws training progress. On a terminal (Live) it redraws one
// line in place, at most every Interval, with the epoch, a bar, the step
// count, the ETA, steps per second and the running metrics, and ends each
// epoch with a line of the final logs. Otherwise it writes only that one
// line per epoch. Fit adds one writing to Config.Progress unless Quiet.
type ProgressBar struct {
	// W is where the bar is drawn.
	W io.Writer
	// Live redraws the bar in place after steps; NewProgressBar sets it when
	// W is a terminal (a character device).
	Live bool
	// Interval is the least time between redraws (default 100ms).
	Interval time.Duration
	// Width is the number of cells of the bar (default 30).
	Width int

	BaseCallback
	start     time.Time
	last      time.Time
	firstStep int
	drawn     bool
}

// NewProgressBar returns a progress bar on w, live when w is a terminal.
func NewProgressBar(w io.Writer) *ProgressBar {
	return &ProgressBar{W: w, Live: isTerminal(w)}
}

// isTerminal reports whether w is an *os.File on a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// OnEpochBegin starts the epoch's clock.
func (p *ProgressBar) OnEpochBegin(s *State) error {
	p.start = time.Now()
	p.last = time.Time{}
	p.firstStep = s.Step
	p.drawn = false
	return nil
}

func (p *ProgressBar) rate(s *State, now time.Time) float64 {
	el := now.Sub(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(s.Step-p.firstStep) / el
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

func writeLogs(b *strings.Builder, names []string, logs Logs) {
	for _, n := range names {
		if v, ok := logs[n]; ok {
			fmt.Fprintf(b, " - %s %.4g", n, v)
		}
	}
}

// OnBatchEnd redraws the live bar.
func (p *ProgressBar) OnBatchEnd(s *State) error {
	if !p.Live {
		return nil
	}
	now := time.Now()
	iv := p.Interval
	if iv == 0 {
		iv = 100 * time.Millisecond
	}
	if now.Sub(p.last) < iv && s.Step < s.StepsPerEpoch {
		return nil
	}
	p.last = now
	width := p.Width
	if width <= 0 {
		width = 30
	}
	done := width * s.Step / max(s.StepsPerEpoch, 1)
	bar := strings.Repeat("=", done)
	if done < width {
		bar += ">" + strings.Repeat(".", width-done-1)
	}
	rate := p.rate(s, now)
	eta := "?"
	if rate > 0 {
		eta = fmtDuration(time.Duration(float64(s.StepsPerEpoch-s.Step) / rate * float64(time.Second)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\r\x1b[KEpoch %d/%d [%s] %d/%d - ETA %s - %.1f steps/s", s.Epoch+1, s.Epochs, bar, s.Step, s.StepsPerEpoch, eta, rate)
	writeLogs(&b, s.Names(), s.Logs)
	io.WriteString(p.W, b.String())
	p.drawn = true
	return nil
}

// OnEpochEnd writes the epoch's summary line.
func (p *ProgressBar) OnEpochEnd(s *State) error {
	now := time.Now()
	var b strings.Builder
	if p.drawn {
		b.WriteString("\r\x1b[K")
	}
	fmt.Fprintf(&b, "Epoch %d/%d - %d steps - %s - %.1f steps/s", s.Epoch+1, s.Epochs, s.Step, fmtDuration(now.Sub(p.start)), p.rate(s, now))
	writeLogs(&b, s.Names(), s.Logs)
	b.WriteByte('\n')
	io.WriteString(p.W, b.String())
	p.drawn = false
	return nil
}

// OnTrainEnd ends a live line left by an interrupted epoch.
func (p *ProgressBar) OnTrainEnd(s *State) error {
	if p.drawn && s.Interrupted {
		fmt.Fprintf(p.W, "\ninterrupted at epoch %d, step %d/%d\n", s.Epoch+1, s.Step, s.StepsPerEpoch)
	} else if s.Interrupted {
		fmt.Fprintf(p.W, "interrupted at epoch %d, step %d/%d\n", s.Epoch+1, s.Step, s.StepsPerEpoch)
	}
	return nil
}
