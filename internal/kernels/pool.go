package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool behind Sgemm and ParallelFor: persistent goroutines that
// a parallel call borrows for its duration, hands one share each, and
// returns when all shares are done.
//
// Handing over work through the scheduler (a channel send to a parked
// goroutine) costs up to about 100 µs on a virtual machine, where the idle
// vCPU has to be woken first; that is a seventh of a 512×512 product's
// share on two threads. So an idle worker polls for its next share for
// spinWait before it parks, and a caller waiting for its workers polls as
// long before it parks: back-to-back calls then hand work over in about a
// microsecond. Polling keeps the Go processor (P), so that the scheduler
// cannot move the worker to the global run queue while the other P
// sleeps; it yields the P every yieldEvery, so that other goroutines and
// the garbage collector wait no longer than that. Between polls it offers
// the CPU to other threads of the machine (sched_yield): on a busy machine
// a polling thread then costs others little and keeps the standing of a
// thread that sleeps, instead of competing with them as a CPU hog.
//
// A call takes only idle workers and never waits for one: a call made while
// the workers are busy (concurrent calls, or a call nested inside a share)
// runs with fewer threads instead. Callers split work so that results do
// not depend on how many threads they got.

// spinWait is how long an idle worker polls for a new share, and a caller
// for its workers to finish, before parking.
const spinWait = 100 * time.Microsecond

// yieldEvery is how often a polling goroutine yields the processor.
const yieldEvery = 20 * time.Microsecond

// pollsPerCheck is how many polls of a flag run between two looks at the
// clock (and two offers of the CPU).
const pollsPerCheck = 256

// job is the work of one parallel call; runShare(i) does share i.
type job interface {
	runShare(i int)
}

// Worker states.
const (
	workerIdle    int32 = iota // no share assigned; polling
	workerReady                // a share is assigned and not yet taken
	workerRunning              // running its share
	workerParked               // blocked on wake; no share assigned
)

// poolWorker is one persistent worker goroutine.
type poolWorker struct {
	state atomic.Int32
	j     job
	share int
	tm    *team
	wake  chan struct{} // capacity 1; a send wakes a parked worker
	_     [64]byte      // keep each worker's state on its own cache line
}

// pool holds the idle workers, most recently released last.
var pool struct {
	mu      sync.Mutex
	idle    []*poolWorker
	started int
}

// team is one parallel call: the workers it borrowed and its completion
// state. Teams are recycled through teams.
type team struct {
	workers []*poolWorker
	pending atomic.Int32 // shares given to workers and not yet finished
	parked  atomic.Int32 // 1 while the caller is (about to be) parked on done
	done    chan struct{}
}

var teams = sync.Pool{New: func() any { return &team{done: make(chan struct{}, 1)} }}

// newTeam borrows up to helpers idle workers, starting new ones while fewer
// than helpers exist in all. len(t.workers) tells how many it got.
func newTeam(helpers int) *team {
	t := teams.Get().(*team)
	t.workers = t.workers[:0]
	if helpers <= 0 {
		return t
	}
	pool.mu.Lock()
	for len(t.workers) < helpers && len(pool.idle) > 0 {
		w := pool.idle[len(pool.idle)-1]
		pool.idle[len(pool.idle)-1] = nil
		pool.idle = pool.idle[:len(pool.idle)-1]
		t.workers = append(t.workers, w)
	}
	for len(t.workers) < helpers && pool.started < helpers {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		pool.started++
		go w.loop()
		t.workers = append(t.workers, w)
	}
	pool.mu.Unlock()
	return t
}

// trim gives back all but the first n workers.
func (t *team) trim(n int) {
	if n >= len(t.workers) {
		return
	}
	pool.mu.Lock()
	pool.idle = append(pool.idle, t.workers[n:]...)
	pool.mu.Unlock()
	clear(t.workers[n:])
	t.workers = t.workers[:n]
}

// start hands share i+1 of j to worker i; the caller runs share 0 itself.
func (t *team) start(j job) {
	t.pending.Store(int32(len(t.workers)))
	for i, w := range t.workers {
		w.j, w.share, w.tm = j, i+1, t
		if w.state.Swap(workerReady) == workerParked {
			w.wake <- struct{}{}
		}
	}
}

// wait returns when every share handed out by start is done, gives the
// workers back and recycles t.
func (t *team) wait() {
	if len(t.workers) > 0 && t.pending.Load() != 0 {
		t.await()
	}
	pool.mu.Lock()
	pool.idle = append(pool.idle, t.workers...)
	pool.mu.Unlock()
	clear(t.workers)
	t.workers = t.workers[:0]
	teams.Put(t)
}

// await polls pending for spinWait, then parks on done. While polling it
// takes back every share a worker has not started yet and runs it itself,
// so that a worker that is slow to wake up delays the call by no more than
// running that share here would.
func (t *team) await() {
	var p poller
	for polls := 0; t.pending.Load() != 0; polls++ {
		if polls%pollsPerCheck != 0 {
			continue
		}
		t.takeBack()
		if t.pending.Load() == 0 {
			return
		}
		if p.expired() {
			t.parked.Store(1)
			// The last worker to finish sends on done if it sees parked;
			// whoever clears parked first decides whether a send comes.
			if t.pending.Load() != 0 || !t.parked.CompareAndSwap(1, 0) {
				<-t.done
			}
			return
		}
	}
}

// takeBack runs, on the calling goroutine, the shares that no worker has
// taken yet.
func (t *team) takeBack() {
	for _, w := range t.workers {
		if w.state.Load() == workerReady && w.state.CompareAndSwap(workerReady, workerIdle) {
			j, share := w.j, w.share
			w.j, w.tm = nil, nil
			j.runShare(share)
			t.pending.Add(-1)
		}
	}
}

// finish marks one worker's share done. When it wakes the parked caller,
// it yields at once: the caller is queued on this worker's processor,
// and would otherwise wait there until this worker's next yield or
// until another processor wakes up to take it.
func (t *team) finish() {
	if t.pending.Add(-1) == 0 && t.parked.CompareAndSwap(1, 0) {
		t.done <- struct{}{}
		runtime.Gosched()
	}
}

func (w *poolWorker) loop() {
	for {
		w.await()
		j, share, t := w.j, w.share, w.tm
		w.j, w.tm = nil, nil
		j.runShare(share)
		w.state.Store(workerIdle)
		t.finish()
	}
}

// await returns once the worker has taken a share: it polls for spinWait,
// then parks until start wakes it, and so on.
func (w *poolWorker) await() {
	var p poller
	for polls := 0; ; polls++ {
		if w.state.Load() == workerReady && w.state.CompareAndSwap(workerReady, workerRunning) {
			return
		}
		if polls%pollsPerCheck != pollsPerCheck-1 || !p.expired() {
			continue
		}
		if w.state.CompareAndSwap(workerIdle, workerParked) {
			<-w.wake
		}
		p = poller{}
	}
}

// poller paces a polling loop: each call of expired offers the CPU to
// other threads, yields the Go processor if yieldEvery has passed since it
// last did, and reports whether spinWait has passed since the first call.
type poller struct {
	start, yielded time.Time
}

func (p *poller) expired() bool {
	osYield()
	now := time.Now()
	if p.start.IsZero() {
		p.start, p.yielded = now, now
		return false
	}
	if now.Sub(p.start) > spinWait {
		return true
	}
	if now.Sub(p.yielded) > yieldEvery {
		runtime.Gosched()
		p.yielded = time.Now()
	}
	return false
}
