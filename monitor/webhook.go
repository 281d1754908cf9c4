package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is what a webhook receives (as the JSON body of a POST) when a rule
// fires or resolves.
type Alert struct {
	// Status is StatusFiring or StatusResolved.
	Status string `json:"status"`
	// Rule is the rule's name; Severity its severity.
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	// Model and Version are the model the window belongs to.
	Model   string `json:"model"`
	Version string `json:"version"`
	// Metric, Op and Threshold restate the rule; Value is the metric in
	// the window that fired or resolved it.
	Metric    string  `json:"metric"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Value     float64 `json:"value"`
	// Feature is the feature group with the largest PSI when Metric is
	// feature_psi_max.
	Feature string `json:"feature,omitempty"`
	// Windows is the number of consecutive windows the condition held.
	Windows int `json:"windows"`
	// WindowRows is the number of rows of the last window.
	WindowRows int `json:"window_rows"`
	// StartsAt is when the condition began to hold; Time is now.
	StartsAt time.Time `json:"starts_at"`
	Time     time.Time `json:"time"`
	// Summary is a one-line human-readable description.
	Summary string `json:"summary"`
}

// notifier posts alerts to a webhook from one background goroutine with a
// bounded queue.
type notifier struct {
	url      string
	client   *http.Client
	retries  int
	backoff  time.Duration
	log      *slog.Logger
	outcome  func(string) // counts "delivered", "failed", "dropped"
	mu       sync.Mutex
	closed   bool
	ch       chan Alert
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	userAgnt string
}

func newNotifier(url string, timeout time.Duration, retries, queue int, backoff time.Duration, log *slog.Logger, outcome func(string)) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{
		url: url, client: &http.Client{Timeout: timeout}, retries: retries, backoff: backoff, log: log, outcome: outcome,
		ch: make(chan Alert, queue), done: make(chan struct{}), ctx: ctx, cancel: cancel, userAgnt: "deepgo-monitor",
	}
	go n.run()
	return n
}

// send queues a without waiting; a full queue drops it (logged, counted).
func (n *notifier) send(a Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case n.ch <- a:
	default:
		n.outcome("dropped")
		n.log.Warn("drift alert webhook queue is full: alert dropped", "rule", a.Rule, "model", a.Model, "status", a.Status)
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for a := range n.ch {
		n.deliver(a)
	}
}

// deliver posts a, retrying network errors, 429 and 5xx answers with
// doubling backoff.
func (n *notifier) deliver(a Alert) {
	body, err := json.Marshal(a)
	if err != nil {
		n.outcome("failed")
		n.log.Error("drift alert webhook: encoding the alert", "error", err)
		return
	}
	wait := n.backoff
	var last error
	for attempt := 0; attempt <= n.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(wait):
			case <-n.ctx.Done():
				n.outcome("failed")
				n.log.Warn("drift alert webhook: gave up at shutdown", "rule", a.Rule, "model", a.Model, "error", last)
				return
			}
			wait *= 2
		}
		if last = n.post(body); last == nil {
			n.outcome("delivered")
			return
		}
		if pe, ok := last.(permanentError); ok {
			last = pe.error
			break
		}
	}
	n.outcome("failed")
	n.log.Warn("drift alert webhook failed", "url", n.url, "rule", a.Rule, "model", a.Model, "status", a.Status, "error", last)
}

// permanentError is an answer not worth retrying (4xx other than 429).
type permanentError struct{ error }

func (n *notifier) post(body []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.userAgnt)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return permanentError{fmt.Errorf("webhook answered %s", resp.Status)}
}

// close stops taking alerts and waits until the queued ones are delivered
// or ctx ends (then pending retries are abandoned).
func (n *notifier) close(ctx context.Context) {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.ch)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		<-n.done
	}
	n.cancel()
}
