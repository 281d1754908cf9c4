package track

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deepgo/deepgo/train"
)

// Logger is a train.Callback that records a train.Fit run in a Store:
//
//   - OnTrainBegin creates the run (unless Start already did) with Params,
//     Tags and the system info tags (SystemInfo);
//   - OnBatchEnd logs "batch_loss" at step = the global step;
//   - OnEpochEnd logs every key of the epoch's logs ("loss", "acc",
//     "val_loss", "lr"…) at step = the 0-based epoch;
//   - OnTrainEnd flushes and ends the run: FINISHED, KILLED when the run was
//     interrupted (context cancelled, Ctrl-C), FAILED when Fit failed.
//
// Points go into a buffered channel that one goroutine drains, writing them
// in one transaction every FlushInterval or once FlushPoints points are
// queued, whichever comes first, and refreshing the run's heartbeat. The
// writer does not wait on the channel point by point, so queueing a point
// costs the training goroutine a channel send and no wake-up, and it never
// waits for the database (unless BufferSize points are pending, when it
// waits rather than drop points). Tracking errors do not stop training:
// they go to OnError and Err.
//
// After OnTrainEnd the Logger still writes (synchronously) so that final
// test metrics and artifacts can be added; Close releases it.
type Logger struct {
	// Store receives the run.
	Store Store
	// Experiment is the experiment's name ("" is DefaultExperiment).
	Experiment string
	// RunName is the run's name ("" generates one).
	RunName string
	// Params are logged at the start of the run.
	Params map[string]string
	// Tags are set at the start of the run.
	Tags map[string]string
	// FlushInterval is the longest a point waits before being written
	// (default 200 ms).
	FlushInterval time.Duration
	// FlushPoints is the number of pending points that triggers a write
	// (default 1000).
	FlushPoints int
	// BufferSize is the channel's capacity in points (default 65536).
	BufferSize int
	// HeartbeatInterval is how often the heartbeat is refreshed when nothing
	// is written (default 5 s; must stay well under StaleAfter).
	HeartbeatInterval time.Duration
	// OnError, if set, receives every tracking error (from any goroutine);
	// if nil they are printed once to stderr.
	OnError func(error)

	mu      sync.Mutex
	sendMu  sync.RWMutex // held for reading while sending on ch, for writing to close it
	run     Run
	started bool
	ended   bool
	errs    []error
	warned  bool
	ch      chan Metric     // queued points
	kick    chan struct{}   // FlushPoints points are queued
	flushes chan chan error // Flush requests
	stop    chan struct{}   // closed by End
	done    chan struct{}   // closed when the writer has returned
}

// NewLogger returns a Logger on s with these params (see Logger).
func NewLogger(s Store, experiment, runName string, params map[string]string) *Logger {
	return &Logger{Store: s, Experiment: experiment, RunName: runName, Params: params}
}

func (l *Logger) report(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.errs = append(l.errs, err)
	warn := l.OnError == nil && !l.warned
	l.warned = true
	onErr := l.OnError
	l.mu.Unlock()
	if onErr != nil {
		onErr(err)
	} else if warn {
		fmt.Fprintf(os.Stderr, "deepgo: tracking: %v (training continues; later tracking errors are not printed)\n", err)
	}
}

// Err returns the tracking errors so far, joined (nil if none).
func (l *Logger) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}

// Run returns the run as created (zero before Start).
func (l *Logger) Run() Run {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.run
}

// RunID returns the run's ID ("" before Start).
func (l *Logger) RunID() string { return l.Run().ID }

// Start creates the run, logs Params, Tags and SystemInfo, and starts the
// writer goroutine. OnTrainBegin calls it if it was not called before; a
// second call does nothing.
func (l *Logger) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return nil
	}
	if l.Store == nil {
		return errors.New("track.Logger: Store is nil")
	}
	tags := SystemInfo()
	for k, v := range l.Tags {
		tags[k] = v
	}
	for k, v := range l.Params {
		if err := checkParam(k, v); err != nil {
			return fmt.Errorf("track.Logger: %w", err)
		}
	}
	for k, v := range tags {
		if err := checkTag(k, v); err != nil {
			return fmt.Errorf("track.Logger: %w", err)
		}
	}
	r, err := l.Store.CreateRun(ctx, NewRun{Experiment: l.Experiment, Name: l.RunName, Tags: tags})
	if err != nil {
		return fmt.Errorf("track.Logger: creating the run: %w", err)
	}
	if len(l.Params) > 0 {
		if err := l.Store.LogBatch(ctx, r.ID, Batch{Params: l.Params}); err != nil {
			l.Store.EndRun(ctx, r.ID, StatusFailed, time.Time{})
			return fmt.Errorf("track.Logger: logging params: %w", err)
		}
		for k, v := range l.Params {
			r.Params[k] = v
		}
	}
	l.run, l.started = r, true
	size := l.BufferSize
	if size <= 0 {
		size = 1 << 16
	}
	l.ch, l.kick, l.flushes = make(chan Metric, size), make(chan struct{}, 1), make(chan chan error)
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.write(r.ID)
	return nil
}

// write is the writer goroutine: it batches points and writes them.
func (l *Logger) write(runID string) {
	defer close(l.done)
	every, maxPts, beat := l.FlushInterval, l.flushPoints(), l.HeartbeatInterval
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	if beat <= 0 {
		beat = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var buf []Metric
	last := time.Now()
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		// Kept on failure and retried at the next flush (points were
		// validated when queued, so failures are the database's).
		if err := l.Store.LogBatch(context.Background(), runID, Batch{Metrics: buf}); err != nil {
			l.report(err)
			return err
		}
		buf, last = buf[:0], time.Now()
		return nil
	}
	drain := func() {
		for {
			select {
			case m := <-l.ch:
				buf = append(buf, m)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-l.stop:
			drain()
			flush()
			return
		case ack := <-l.flushes:
			drain()
			ack <- flush()
		case <-l.kick:
			drain()
			if len(buf) >= maxPts {
				flush()
			}
		case <-tick.C:
			drain()
			if len(buf) > 0 {
				flush()
			} else if time.Since(last) >= beat {
				if err := l.Store.Heartbeat(context.Background(), runID); err != nil {
					l.report(err)
				} else {
					last = time.Now()
				}
			}
		}
	}
}

// running reports whether the writer goroutine is accepting points.
func (l *Logger) running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started && !l.ended
}

// enqueue queues m for the writer goroutine and reports whether it could
// (false before Start and after End).
func (l *Logger) enqueue(m Metric) bool {
	l.sendMu.RLock()
	defer l.sendMu.RUnlock()
	if !l.running() {
		return false
	}
	l.ch <- m
	if len(l.ch) >= l.flushPoints() {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return true
}

func (l *Logger) flushPoints() int {
	if l.FlushPoints <= 0 {
		return 1000
	}
	return l.FlushPoints
}

// LogMetric logs one point: queued while the run is being trained,
// written at once after OnTrainEnd. The key is checked here, so a bad key is
// an error from this call.
func (l *Logger) LogMetric(key string, value float64, step int64) error {
	m := Metric{Key: key, Value: value, Step: step, Time: time.Now()}
	if err := checkMetric(m); err != nil {
		return err
	}
	if l.enqueue(m) {
		return nil
	}
	id := l.RunID()
	if id == "" {
		return errors.New("track.Logger.LogMetric: the run has not started")
	}
	return l.Store.LogMetric(context.Background(), id, m)
}

// LogMetrics logs several points at one step (keys sorted).
func (l *Logger) LogMetrics(values map[string]float64, step int64) error {
	for _, k := range sortedKeys(values) {
		if err := l.LogMetric(k, values[k], step); err != nil {
			return err
		}
	}
	return nil
}

// LogParams logs params now (write-once: a different value for a logged
// key is an error).
func (l *Logger) LogParams(params map[string]string) error {
	id := l.RunID()
	if id == "" {
		return errors.New("track.Logger.LogParams: the run has not started")
	}
	return l.Store.LogBatch(context.Background(), id, Batch{Params: params})
}

// SetTag sets a tag on the run now.
func (l *Logger) SetTag(key, value string) error {
	id := l.RunID()
	if id == "" {
		return errors.New("track.Logger.SetTag: the run has not started")
	}
	return l.Store.SetTag(context.Background(), id, key, value)
}

// LogArtifact copies a file or directory into the run's artifacts (see
// Store.LogArtifact).
func (l *Logger) LogArtifact(src, dest string) ([]Artifact, error) {
	id := l.RunID()
	if id == "" {
		return nil, errors.New("track.Logger.LogArtifact: the run has not started")
	}
	return l.Store.LogArtifact(context.Background(), id, src, dest)
}

// Flush waits until every point queued so far is written and returns the
// write's error.
func (l *Logger) Flush() error {
	l.sendMu.RLock()
	if !l.running() {
		l.sendMu.RUnlock()
		return nil
	}
	ack := make(chan error, 1)
	l.flushes <- ack
	l.sendMu.RUnlock()
	return <-ack
}

// End flushes, stops the writer goroutine and sets the run's final status.
// Later calls do nothing.
func (l *Logger) End(status Status) error {
	l.sendMu.Lock()
	l.mu.Lock()
	if !l.started || l.ended {
		l.mu.Unlock()
		l.sendMu.Unlock()
		return nil
	}
	l.ended = true
	id := l.run.ID
	l.mu.Unlock()
	close(l.stop)
	l.sendMu.Unlock()
	<-l.done
	err := l.Store.EndRun(context.Background(), id, status, time.Time{})
	l.report(err)
	return l.Err()
}

// Close ends the run as FINISHED if OnTrainEnd or End did not end it. It
// does not close the Store.
func (l *Logger) Close() error { return l.End(StatusFinished) }

// OnTrainBegin starts the run (see Start).
func (l *Logger) OnTrainBegin(s *train.State) error {
	if err := l.Start(context.Background()); err != nil {
		return err
	}
	if s != nil && s.Resumed {
		return l.SetTag("resumed", "true")
	}
	return nil
}

// OnEpochBegin does nothing.
func (l *Logger) OnEpochBegin(*train.State) error { return nil }

// OnBatchEnd queues the batch loss at the global step.
func (l *Logger) OnBatchEnd(s *train.State) error {
	l.enqueue(Metric{Key: "batch_loss", Value: s.BatchLoss, Step: int64(s.GlobalStep), Time: time.Now()})
	return nil
}

// OnEpochEnd queues the epoch's logs at step = epoch.
func (l *Logger) OnEpochEnd(s *train.State) error {
	if !l.running() {
		return nil
	}
	now := time.Now()
	keys := make([]string, 0, len(s.Logs))
	for k := range s.Logs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := Metric{Key: k, Value: s.Logs[k], Step: int64(s.Epoch), Time: now}
		if err := checkMetric(m); err != nil {
			l.report(err)
			continue
		}
		l.enqueue(m)
	}
	return nil
}

// OnTrainEnd flushes and ends the run with the status s implies. Tracking
// errors are reported (OnError, Err), not returned, so they never turn a
// finished training into a failed one.
func (l *Logger) OnTrainEnd(s *train.State) error {
	st := StatusFinished
	switch {
	case s.Interrupted:
		st = StatusKilled
	case s.Err != nil:
		st = StatusFailed
	}
	if s.Err != nil && l.running() {
		msg := s.Err.Error()
		if len(msg) > MaxTagValueLen {
			msg = strings.ToValidUTF8(msg[:MaxTagValueLen], "")
		}
		msg = strings.ReplaceAll(msg, "\x00", "")
		l.report(l.SetTag("error", msg))
	}
	if l.running() {
		l.report(l.SetTag("global_steps", strconv.Itoa(s.GlobalStep)))
	}
	l.End(st)
	return nil
}
