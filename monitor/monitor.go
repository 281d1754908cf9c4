package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepgo/deepgo/tensor"
)

// ErrStaleVersion is what an Options.Profiles function returns (wrapped or
// not) for a version that is no longer the served one, e.g. the last
// batches of a model version being replaced: Observe then ignores the
// batch and keeps the model's window.
var ErrStaleVersion = errors.New("model version is no longer served")

// Options configures a Monitor. Zero values take the defaults.
type Options struct {
	// Window is the number of most recent rows a window holds (default
	// 500).
	Window int
	// Step is the number of new rows between evaluations (default Window:
	// tumbling windows; smaller values slide).
	Step int
	// MinRows is the fewest rows a window needs to be evaluated (default
	// Window, or min(Window, 50) when MaxAge is set).
	MinRows int
	// MaxAge, when positive, drops rows older than it from the window
	// (time-based window).
	MaxAge time.Duration
	// Interval, when positive, also evaluates each model's window this
	// often (from a background goroutine), so time-based windows are
	// checked when traffic is slow.
	Interval time.Duration
	// Epsilon is PSI's smoothing (default DefaultEpsilon).
	Epsilon float64
	// Rules are checked after every window (nil: DefaultRules; an empty
	// non-nil slice: none).
	Rules []Rule
	// Webhook is a URL that receives each alert as a JSON POST ("" for
	// none).
	Webhook string
	// WebhookTimeout bounds one delivery attempt (default 5s).
	WebhookTimeout time.Duration
	// WebhookRetries is the number of retries after a failed attempt
	// (default 3; negative: none).
	WebhookRetries int
	// WebhookBackoff is the wait before the first retry, doubled after each
	// (default 500ms).
	WebhookBackoff time.Duration
	// WebhookQueue bounds the alerts waiting for delivery (default 64);
	// more are dropped, never blocking inference.
	WebhookQueue int
	// NoResolved stops the webhook from receiving an alert when a firing
	// rule resolves (by default it does; resolutions are always logged).
	NoResolved bool
	// Logger receives alert logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the drift metrics (nil: none are exported).
	Registerer prometheus.Registerer
	// Profiles returns the reference profile of a model version; it is
	// called the first time a (model, version) is observed. Returning
	// ErrNoProfile (or any error) leaves that version unmonitored; the
	// error shows in Status. ErrStaleVersion skips the batch instead.
	Profiles func(model, version string) (*Profile, error)
	// Now returns the current time (default time.Now); for tests.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.Window <= 0 {
		o.Window = 500
	}
	if o.Step <= 0 || o.Step > o.Window {
		o.Step = o.Window
	}
	if o.MinRows <= 0 {
		o.MinRows = o.Window
		if o.MaxAge > 0 {
			o.MinRows = min(o.Window, 50)
		}
	}
	o.MinRows = min(o.MinRows, o.Window)
	if o.Epsilon == 0 {
		o.Epsilon = DefaultEpsilon
	}
	if o.Epsilon < 0 || math.IsNaN(o.Epsilon) || math.IsInf(o.Epsilon, 0) {
		return o, fmt.Errorf("monitor: epsilon %v must be a finite positive number", o.Epsilon)
	}
	if o.Rules == nil {
		o.Rules = DefaultRules()
	}
	rules := make([]Rule, len(o.Rules))
	seen := map[string]bool{}
	for i, r := range o.Rules {
		var err error
		if rules[i], err = r.withDefaults(); err != nil {
			return o, fmt.Errorf("monitor: %v", err)
		}
		if seen[rules[i].Name] {
			return o, fmt.Errorf("monitor: two rules are named %q", rules[i].Name)
		}
		seen[rules[i].Name] = true
	}
	o.Rules = rules
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 5 * time.Second
	}
	if o.WebhookRetries == 0 {
		o.WebhookRetries = 3
	}
	if o.WebhookRetries < 0 {
		o.WebhookRetries = 0
	}
	if o.WebhookBackoff <= 0 {
		o.WebhookBackoff = 500 * time.Millisecond
	}
	if o.WebhookQueue <= 0 {
		o.WebhookQueue = 64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Monitor computes drift of live traffic against reference profiles, per
// model, and checks alert rules. Create it with New; its methods are safe
// for concurrent use. Close it to stop its goroutines.
type Monitor struct {
	opts    Options
	log     *slog.Logger
	met     *metrics
	notify  *notifier
	mu      sync.Mutex
	models  map[string]*modelState
	stop    chan struct{}
	stopped chan struct{}
	closed  sync.Once
}

// New makes a Monitor; it fails on invalid options (rules, epsilon) or
// when the metrics cannot be registered.
func New(opts Options) (*Monitor, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Monitor{opts: opts, log: opts.Logger, models: map[string]*modelState{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	if m.met, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	m.met.rules = opts.Rules
	if opts.Webhook != "" {
		m.notify = newNotifier(opts.Webhook, opts.WebhookTimeout, opts.WebhookRetries, opts.WebhookQueue, opts.WebhookBackoff, m.log, m.met.webhook)
	}
	if opts.Interval > 0 {
		go m.tick()
	} else {
		close(m.stopped)
	}
	return m, nil
}

// Options returns the options in effect (defaults filled in).
func (m *Monitor) Options() Options { return m.opts }

// Close stops the background evaluation and waits until queued webhook
// alerts are delivered or ctx ends. Observe after Close still computes
// drift but posts no more alerts.
func (m *Monitor) Close(ctx context.Context) {
	m.closed.Do(func() { close(m.stop) })
	<-m.stopped
	if m.notify != nil {
		m.notify.close(ctx)
	}
}

func (m *Monitor) tick() {
	defer close(m.stopped)
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mu.Lock()
			states := make([]*modelState, 0, len(m.models))
			for _, st := range m.models {
				states = append(states, st)
			}
			m.mu.Unlock()
			for _, st := range states {
				st.mu.Lock()
				if st.prof != nil && m.opts.Now().Sub(st.lastEval) >= m.opts.Interval {
					m.evaluate(st)
				}
				st.mu.Unlock()
			}
		}
	}
}

// state returns the model's state, creating it.
func (m *Monitor) state(model string) *modelState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.models[model]
	if st == nil {
		st = &modelState{stateData: &stateData{name: model}}
		m.models[model] = st
	}
	return st
}

// SetProfile sets the reference profile of model at version, resetting its
// window and alert states (Options.Profiles is then not asked for that
// version). A nil profile stops monitoring the model.
func (m *Monitor) SetProfile(model, version string, p *Profile) error {
	if p != nil {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("monitor: model %q: invalid profile: %v", model, err)
		}
	}
	st := m.state(model)
	st.mu.Lock()
	defer st.mu.Unlock()
	m.reset(st, version, p, nil)
	return nil
}

// reset starts model state st over for version with profile p (or the
// reason err there is none).
func (m *Monitor) reset(st *modelState, version string, p *Profile, err error) {
	m.met.forget(st)
	st.stateData = &stateData{name: st.name, version: version, known: true, prof: p, rowsTotal: st.rowsTotal, lastEval: m.opts.Now()}
	if err != nil {
		st.reason = err.Error()
	}
	if p == nil {
		return
	}
	f := len(p.Features)
	w := m.opts.Window
	st.nf = f
	st.bins = make([]uint16, w*f)
	st.times = make([]int64, w)
	st.counts = make([][]float64, f)
	for i, ft := range p.Features {
		st.counts[i] = make([]float64, len(ft.Cuts)+1)
	}
	if p.Classes != nil {
		st.classes = make([]int32, w)
		st.conf = make([]float32, w)
		st.confBin = make([]uint8, w)
		st.classCounts = make([]float64, len(p.Classes.Freq))
		st.confCounts = make([]float64, len(p.Confidence.Cuts)+1)
	}
	st.feat = make([]float64, f)
	st.probs = make([]float64, max(len(st.classCounts), 1))
	st.alerts = make([]alertState, len(m.opts.Rules))
	st.met = m.met.forModel(st.name, p)
}

// modelState is the sliding window and alert state of one model; mu
// guards all of it.
type modelState struct {
	mu sync.Mutex
	*stateData
}

// stateData is a modelState's content, replaced as a whole by reset.
type stateData struct {
	name      string
	version   string
	known     bool // version has been resolved
	prof      *Profile
	reason    string // why there is no profile
	rowsTotal int64
	skipped   int64 // rows that did not fit the profile

	// The window: a ring of the last len(times) rows.
	nf          int
	bins        []uint16 // [row*nf+feature]
	classes     []int32
	conf        []float32
	confBin     []uint8
	times       []int64 // unix nanoseconds
	head, n     int     // next write position, rows held
	counts      [][]float64
	classCounts []float64
	confCounts  []float64
	confSum     float64

	sinceEval int
	lastEval  time.Time
	windows   int64
	last      *Window
	alerts    []alertState
	met       *modelMetrics

	feat  []float64
	probs []float64
	row   []float32
}

// alertState tracks one rule on one model.
type alertState struct {
	consecutive int
	since       time.Time // when the condition began to hold
	firing      bool
	value       float64
	firedAt     time.Time
}

// Observe feeds one executed batch of model at version: input is the
// batched model input [N, ...] and output the model output [N, K] in the
// same row order. It bins the rows into the model's window and evaluates
// the window every Options.Step rows. It is quick (no allocation per row
// in the steady state) and never blocks on alert delivery. Batches that do
// not fit the model's profile are counted as skipped.
func (m *Monitor) Observe(model, version string, input, output *tensor.Tensor) {
	if input == nil || output == nil {
		return
	}
	st := m.state(model)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.known || st.version != version {
		var p *Profile
		var err error
		if m.opts.Profiles != nil {
			p, err = m.opts.Profiles(model, version)
		} else {
			err = ErrNoProfile
		}
		if err == nil && p != nil {
			if verr := p.Validate(); verr != nil {
				p, err = nil, fmt.Errorf("invalid profile: %v", verr)
			}
		} else if err == nil {
			err = ErrNoProfile
		}
		if errors.Is(err, ErrStaleVersion) {
			return // a straggling batch of a replaced version: keep the state
		}
		if err != nil && !errors.Is(err, ErrNoProfile) {
			m.log.Warn("drift monitoring: no reference profile", "model", model, "version", version, "error", err)
		}
		m.reset(st, version, p, err)
	}
	is, os := input.Shape(), output.Shape()
	if len(is) == 0 || len(os) == 0 {
		return
	}
	rows := is[0]
	st.rowsTotal += int64(rows)
	m.met.rows(model, rows)
	p := st.prof
	if p == nil {
		return
	}
	rl := p.Input.rowLen()
	if len(is) != len(p.Input.Shape)+1 || !tensor.SameShape(is[1:], p.Input.Shape) ||
		(p.Classes != nil && (output.DType() != tensor.Float32 || len(os) != 2 || os[0] != rows || os[1] != len(p.Classes.Freq))) {
		st.skipped += int64(rows)
		return
	}
	flat := floats(input, &st.row)
	var out []float32
	k := 0
	if p.Classes != nil {
		out = output.Data()
		k = os[1]
	}
	now := m.opts.Now().UnixNano()
	for r := 0; r < rows; r++ {
		p.Input.extract(flat[r*rl:(r+1)*rl], st.feat)
		if st.n == len(st.times) {
			st.evict(st.head)
		} else {
			st.n++
		}
		i := st.head
		st.head = (st.head + 1) % len(st.times)
		st.times[i] = now
		for f, v := range st.feat {
			b := Bin(p.Features[f].Cuts, v)
			st.bins[i*st.nf+f] = uint16(b)
			st.counts[f][b]++
		}
		if p.Classes != nil {
			cls, c := classify(out[r*k:(r+1)*k], p.Output == OutputLogits, st.probs)
			cb := Bin(p.Confidence.Cuts, c)
			st.classes[i], st.conf[i], st.confBin[i] = int32(cls), float32(c), uint8(cb)
			st.classCounts[cls]++
			st.confCounts[cb]++
			st.confSum += c
			st.met.confidence.Observe(c)
		}
	}
	st.sinceEval += rows
	if st.sinceEval >= m.opts.Step || (m.opts.Interval > 0 && m.opts.Now().Sub(st.lastEval) >= m.opts.Interval) {
		m.evaluate(st)
	}
}

// evict removes ring slot i from the window counts.
func (st *stateData) evict(i int) {
	for f := 0; f < st.nf; f++ {
		st.counts[f][st.bins[i*st.nf+f]]--
	}
	if st.classCounts != nil {
		st.classCounts[st.classes[i]]--
		st.confCounts[st.confBin[i]]--
		st.confSum -= float64(st.conf[i])
	}
}

// expire drops rows older than maxAge (the oldest rows sit at head-n).
func (st *stateData) expire(now time.Time, maxAge time.Duration) {
	if maxAge <= 0 {
		return
	}
	limit := now.Add(-maxAge).UnixNano()
	w := len(st.times)
	for st.n > 0 {
		i := (st.head - st.n + w) % w
		if st.times[i] >= limit {
			break
		}
		st.evict(i)
		st.n--
	}
}

// FeaturePSI is the PSI of one feature group in a window.
type FeaturePSI struct {
	Name string  `json:"name"`
	PSI  float64 `json:"psi"`
	// Mean of the feature in the reference.
	RefMean float64 `json:"ref_mean"`
}

// Window is the result of one evaluated window.
type Window struct {
	// Time the window was evaluated; Rows it held.
	Time time.Time `json:"time"`
	Rows int       `json:"rows"`
	// Features is the PSI of every feature group, in profile order.
	Features []FeaturePSI `json:"features"`
	// FeaturePSIMax is the largest of them, of feature MaxFeature.
	FeaturePSIMax float64 `json:"feature_psi_max"`
	MaxFeature    string  `json:"max_feature"`
	// PredictionPSI and ConfidencePSI are NaN-free only when the profile
	// has prediction statistics (otherwise 0 and HasPredictions false).
	HasPredictions bool    `json:"has_predictions"`
	PredictionPSI  float64 `json:"prediction_psi"`
	ConfidencePSI  float64 `json:"confidence_psi"`
	ConfidenceMean float64 `json:"confidence_mean"`
	// ClassShare is the share of rows predicted as each class;
	// ConfidenceShare the window's confidence histogram (on the profile's
	// cuts).
	ClassShare      []float64 `json:"class_share,omitempty"`
	ConfidenceShare []float64 `json:"confidence_share,omitempty"`
}

// metric returns a rule metric's value in w (NaN when unknown).
func (w *Window) metric(name string) float64 {
	switch name {
	case MetricFeaturePSIMax:
		return w.FeaturePSIMax
	case MetricPredictionPSI:
		if w.HasPredictions {
			return w.PredictionPSI
		}
	case MetricConfidencePSI:
		if w.HasPredictions {
			return w.ConfidencePSI
		}
	case MetricConfidenceMean:
		if w.HasPredictions {
			return w.ConfidenceMean
		}
	default:
		if len(name) > len(MetricFeaturePSI)+1 {
			f := name[len(MetricFeaturePSI)+1:]
			for _, x := range w.Features {
				if x.Name == f {
					return x.PSI
				}
			}
		}
	}
	return math.NaN()
}

// evaluate computes the window's drift, updates the metrics and checks the
// rules. st.mu is held.
func (m *Monitor) evaluate(st *modelState) {
	now := m.opts.Now()
	st.expire(now, m.opts.MaxAge)
	st.sinceEval = 0
	st.lastEval = now
	if st.n < m.opts.MinRows || st.n == 0 {
		st.met.windowRows.Set(float64(st.n))
		return
	}
	p := st.prof
	eps := m.opts.Epsilon
	w := &Window{Time: now, Rows: st.n, FeaturePSIMax: math.Inf(-1)}
	for f, ft := range p.Features {
		v := PSI(ft.Freq, st.counts[f], eps)
		w.Features = append(w.Features, FeaturePSI{Name: ft.Name, PSI: v, RefMean: ft.Mean})
		st.met.psi[f].Set(v)
		if v > w.FeaturePSIMax {
			w.FeaturePSIMax, w.MaxFeature = v, ft.Name
		}
	}
	if len(p.Features) == 0 {
		w.FeaturePSIMax = 0
	}
	if p.Classes != nil {
		w.HasPredictions = true
		w.PredictionPSI = PSI(p.Classes.Freq, st.classCounts, eps)
		w.ConfidencePSI = PSI(p.Confidence.Freq, st.confCounts, eps)
		w.ConfidenceMean = st.confSum / float64(st.n)
		w.ClassShare = normalise(append([]float64(nil), st.classCounts...))
		w.ConfidenceShare = normalise(append([]float64(nil), st.confCounts...))
		st.met.predPSI.Set(w.PredictionPSI)
		st.met.confPSI.Set(w.ConfidencePSI)
		st.met.confMean.Set(w.ConfidenceMean)
		for c, s := range w.ClassShare {
			st.met.classShare[c].Set(s)
		}
	}
	st.windows++
	st.last = w
	st.met.windowRows.Set(float64(st.n))
	st.met.windows.Inc()
	st.met.featMax.Set(w.FeaturePSIMax)
	m.checkRules(st, w)
}

// checkRules advances every rule's state with window w and fires or
// resolves alerts.
func (m *Monitor) checkRules(st *modelState, w *Window) {
	for i, r := range m.opts.Rules {
		a := &st.alerts[i]
		v := w.metric(r.Metric)
		a.value = v
		if !r.holds(v) {
			if a.firing {
				a.firing = false
				st.met.firing[i].Set(0)
				m.alert(st, r, a, w, StatusResolved)
			}
			a.consecutive = 0
			a.since = time.Time{}
			continue
		}
		if a.consecutive == 0 {
			a.since = w.Time
		}
		a.consecutive++
		if !a.firing && a.consecutive >= r.For && w.Time.Sub(a.since) >= r.ForDuration {
			a.firing = true
			a.firedAt = w.Time
			st.met.firing[i].Set(1)
			st.met.fired[i].Inc()
			m.alert(st, r, a, w, StatusFiring)
		}
	}
}

// alert logs a firing or resolved alert and queues it for the webhook.
func (m *Monitor) alert(st *modelState, r Rule, a *alertState, w *Window, status string) {
	al := Alert{
		Status: status, Rule: r.Name, Severity: r.Severity, Model: st.name, Version: st.version,
		Metric: r.Metric, Op: r.Op, Threshold: r.Threshold, Value: jsonFloat(a.value),
		Windows: a.consecutive, WindowRows: w.Rows, StartsAt: a.since, Time: w.Time,
	}
	if r.Metric == MetricFeaturePSIMax {
		al.Feature = w.MaxFeature
	}
	what := r.Metric
	if al.Feature != "" {
		what += " (" + al.Feature + ")"
	}
	if status == StatusFiring {
		al.Summary = fmt.Sprintf("%s: model %s version %s: %s = %.4g %s %g for %d window(s)", r.Severity, st.name, st.version, what, a.value, r.Op, r.Threshold, a.consecutive)
		m.log.Warn("drift alert firing", "rule", r.Name, "severity", r.Severity, "model", st.name, "version", st.version,
			"metric", r.Metric, "feature", al.Feature, "value", a.value, "op", r.Op, "threshold", r.Threshold, "windows", a.consecutive, "window_rows", w.Rows)
	} else {
		al.StartsAt = a.firedAt
		al.Summary = fmt.Sprintf("resolved: model %s version %s: %s = %.4g no longer %s %g", st.name, st.version, what, a.value, r.Op, r.Threshold)
		m.log.Info("drift alert resolved", "rule", r.Name, "severity", r.Severity, "model", st.name, "version", st.version,
			"metric", r.Metric, "value", a.value, "threshold", r.Threshold)
	}
	if m.notify != nil && (status == StatusFiring || !m.opts.NoResolved) {
		m.notify.send(al)
	}
}

// jsonFloat maps NaN and infinities (which JSON cannot hold) to 0.
func jsonFloat(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// AlertStatus is the state of one rule on one model.
type AlertStatus struct {
	Rule
	// State is "ok", "pending" (the condition holds, not yet long enough)
	// or "firing".
	State string `json:"state"`
	// Value is the metric in the last window.
	Value float64 `json:"value"`
	// Windows is the number of consecutive windows the condition held.
	Windows int `json:"windows"`
	// Since is when the condition began to hold (zero when ok).
	Since time.Time `json:"since"`
}

// ModelStatus is the drift state of one model.
type ModelStatus struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Monitored is false when the model has no usable profile; Reason
	// says why.
	Monitored bool   `json:"monitored"`
	Reason    string `json:"reason,omitempty"`
	// RowsTotal counts rows observed; Skipped those that did not fit the
	// profile.
	RowsTotal int64 `json:"rows_total"`
	Skipped   int64 `json:"skipped"`
	// WindowRows is the number of rows in the window now; WindowSize its
	// capacity; Windows the number evaluated.
	WindowRows int   `json:"window_rows"`
	WindowSize int   `json:"window_size"`
	Windows    int64 `json:"windows"`
	// Last is the last evaluated window (nil before the first).
	Last *Window `json:"last,omitempty"`
	// Reference class shares and labels, and confidence cuts and shares,
	// for display.
	Labels        []string  `json:"labels,omitempty"`
	RefClassShare []float64 `json:"ref_class_share,omitempty"`
	ConfidenceCut []float64 `json:"confidence_cuts,omitempty"`
	RefConfShare  []float64 `json:"ref_confidence_share,omitempty"`
	RefConfMean   float64   `json:"ref_confidence_mean,omitempty"`
	// Alerts is the state of every rule.
	Alerts []AlertStatus `json:"alerts"`
}

// Status returns the drift state of every observed model, sorted by name.
// Values are JSON-safe (no NaN or infinities).
func (m *Monitor) Status() []ModelStatus {
	m.mu.Lock()
	states := make([]*modelState, 0, len(m.models))
	for _, st := range m.models {
		states = append(states, st)
	}
	m.mu.Unlock()
	sort.Slice(states, func(i, j int) bool { return states[i].name < states[j].name })
	out := make([]ModelStatus, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		ms := ModelStatus{
			Model: st.name, Version: st.version, Monitored: st.prof != nil, Reason: st.reason,
			RowsTotal: st.rowsTotal, Skipped: st.skipped, WindowRows: st.n, WindowSize: m.opts.Window, Windows: st.windows,
			Alerts: []AlertStatus{},
		}
		if st.last != nil {
			w := *st.last
			w.Features = append([]FeaturePSI(nil), w.Features...)
			for i := range w.Features {
				w.Features[i].PSI = jsonFloat(w.Features[i].PSI)
			}
			w.FeaturePSIMax, w.PredictionPSI, w.ConfidencePSI = jsonFloat(w.FeaturePSIMax), jsonFloat(w.PredictionPSI), jsonFloat(w.ConfidencePSI)
			ms.Last = &w
		}
		if p := st.prof; p != nil {
			if p.Classes != nil {
				ms.Labels = p.Classes.Labels
				ms.RefClassShare = p.Classes.Freq
				ms.ConfidenceCut = p.Confidence.Cuts
				ms.RefConfShare = p.Confidence.Freq
				ms.RefConfMean = p.Confidence.Mean
			}
			for i, r := range m.opts.Rules {
				a := st.alerts[i]
				as := AlertStatus{Rule: r, State: "ok", Value: jsonFloat(a.value), Windows: a.consecutive, Since: a.since}
				switch {
				case a.firing:
					as.State = "firing"
				case a.consecutive > 0:
					as.State = "pending"
				}
				ms.Alerts = append(ms.Alerts, as)
			}
		}
		st.mu.Unlock()
		out = append(out, ms)
	}
	return out
}

// metrics are the monitor's Prometheus collectors.
type metrics struct {
	psi        *prometheus.GaugeVec     // deepgo_drift_psi{model,feature}
	featMax    *prometheus.GaugeVec     // deepgo_drift_psi_max{model}
	predPSI    *prometheus.GaugeVec     // deepgo_drift_prediction_psi{model}
	confPSI    *prometheus.GaugeVec     // deepgo_drift_confidence_psi{model}
	confMean   *prometheus.GaugeVec     // deepgo_drift_confidence_mean{model}
	classShare *prometheus.GaugeVec     // deepgo_drift_predicted_class_share{model,class}
	windowRows *prometheus.GaugeVec     // deepgo_drift_window_rows{model}
	windows    *prometheus.CounterVec   // deepgo_drift_windows_total{model}
	rowsTotal  *prometheus.CounterVec   // deepgo_drift_observed_rows_total{model}
	confidence *prometheus.HistogramVec // deepgo_prediction_confidence{model}
	firing     *prometheus.GaugeVec     // deepgo_drift_alert_firing{model,rule,severity}
	fired      *prometheus.CounterVec   // deepgo_drift_alerts_total{model,rule,severity}
	hooks      *prometheus.CounterVec   // deepgo_drift_webhook_deliveries_total{outcome}
	rules      []Rule
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	mt := &metrics{
		psi:        g("deepgo_drift_psi", "Population stability index of a feature group of the model input in the last drift window, against the training profile.", "model", "feature"),
		featMax:    g("deepgo_drift_psi_max", "Largest feature-group PSI of the last drift window.", "model"),
		predPSI:    g("deepgo_drift_prediction_psi", "PSI of the predicted-class distribution in the last drift window.", "model"),
		confPSI:    g("deepgo_drift_confidence_psi", "PSI of the confidence (max class probability) histogram in the last drift window.", "model"),
		confMean:   g("deepgo_drift_confidence_mean", "Mean confidence (max class probability) in the last drift window.", "model"),
		classShare: g("deepgo_drift_predicted_class_share", "Share of rows predicted as each class in the last drift window.", "model", "class"),
		windowRows: g("deepgo_drift_window_rows", "Rows in the model's drift window.", "model"),
		windows:    c("deepgo_drift_windows_total", "Drift windows evaluated.", "model"),
		rowsTotal:  c("deepgo_drift_observed_rows_total", "Rows seen by the drift monitor.", "model"),
		confidence: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "deepgo_prediction_confidence", Help: "Confidence (max class probability) of each prediction.",
			Buckets: ConfidenceCuts}, []string{"model"}),
		firing: g("deepgo_drift_alert_firing", "1 while a drift alert rule fires for the model.", "model", "rule", "severity"),
		fired:  c("deepgo_drift_alerts_total", "Drift alerts fired.", "model", "rule", "severity"),
		hooks:  c("deepgo_drift_webhook_deliveries_total", "Drift alert webhook deliveries by outcome (delivered, failed, dropped).", "outcome"),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{mt.psi, mt.featMax, mt.predPSI, mt.confPSI, mt.confMean, mt.classShare, mt.windowRows,
			mt.windows, mt.rowsTotal, mt.confidence, mt.firing, mt.fired, mt.hooks} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("monitor: registering metrics: %v", err)
			}
		}
	}
	return mt, nil
}

func (mt *metrics) webhook(outcome string) { mt.hooks.WithLabelValues(outcome).Inc() }

func (mt *metrics) rows(model string, n int) { mt.rowsTotal.WithLabelValues(model).Add(float64(n)) }

// modelMetrics are one model's series, resolved once per profile.
type modelMetrics struct {
	name                      string
	psi                       []prometheus.Gauge
	featMax, predPSI, confPSI prometheus.Gauge
	confMean, windowRows      prometheus.Gauge
	classShare                []prometheus.Gauge
	windows                   prometheus.Counter
	confidence                prometheus.Observer
	firing                    []prometheus.Gauge
	fired                     []prometheus.Counter
	features, classes         []string
	rules, sevs               []string
}

// forModel resolves the series of model name with profile p.
func (mt *metrics) forModel(name string, p *Profile) *modelMetrics {
	mm := &modelMetrics{name: name}
	for _, f := range p.Features {
		mm.psi = append(mm.psi, mt.psi.WithLabelValues(name, f.Name))
		mm.features = append(mm.features, f.Name)
	}
	mm.featMax = mt.featMax.WithLabelValues(name)
	mm.windowRows = mt.windowRows.WithLabelValues(name)
	mm.windows = mt.windows.WithLabelValues(name)
	mm.confidence = mt.confidence.WithLabelValues(name)
	if p.Classes != nil {
		mm.predPSI = mt.predPSI.WithLabelValues(name)
		mm.confPSI = mt.confPSI.WithLabelValues(name)
		mm.confMean = mt.confMean.WithLabelValues(name)
		for i := range p.Classes.Freq {
			c := strconv.Itoa(i)
			if i < len(p.Classes.Labels) && p.Classes.Labels[i] != "" {
				c = p.Classes.Labels[i]
			}
			mm.classes = append(mm.classes, c)
			mm.classShare = append(mm.classShare, mt.classShare.WithLabelValues(name, c))
		}
	}
	for _, r := range mt.rules {
		mm.rules = append(mm.rules, r.Name)
		mm.sevs = append(mm.sevs, r.Severity)
		mm.firing = append(mm.firing, mt.firing.WithLabelValues(name, r.Name, r.Severity))
		mm.fired = append(mm.fired, mt.fired.WithLabelValues(name, r.Name, r.Severity))
	}
	return mm
}

// forget deletes the per-feature series of st's previous profile (a new
// version may have other features). Counters are kept.
func (mt *metrics) forget(st *modelState) {
	mm := st.met
	if mm == nil {
		return
	}
	for _, f := range mm.features {
		mt.psi.DeleteLabelValues(mm.name, f)
	}
	for _, c := range mm.classes {
		mt.classShare.DeleteLabelValues(mm.name, c)
	}
	for i, r := range mm.rules {
		mt.firing.DeleteLabelValues(mm.name, r, mm.sevs[i])
	}
}
