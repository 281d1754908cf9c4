package kernels

import (
	"sync/atomic"
	"testing"
	"time"
)

// countJob records which shares ran, and how often.
type countJob struct {
	runs  [4]atomic.Int32
	sleep time.Duration // share 1 sleeps this long
}

func (j *countJob) runShare(i int) {
	if i == 1 {
		time.Sleep(j.sleep)
	}
	j.runs[i].Add(1)
}

// TestTeamTakesBackUnstartedShares gives a share to a worker whose
// goroutine never runs: the caller must run it itself and return.
func TestTeamTakesBackUnstartedShares(t *testing.T) {
	tm := &team{done: make(chan struct{}, 1)}
	stuck := []*poolWorker{{wake: make(chan struct{}, 1)}, {wake: make(chan struct{}, 1)}}
	stuck[1].state.Store(workerParked)
	tm.workers = stuck
	var j countJob
	tm.start(&j)
	j.runShare(0)
	tm.await()
	for i := 0; i < 3; i++ {
		if n := j.runs[i].Load(); n != 1 {
			t.Errorf("share %d ran %d times, want 1", i, n)
		}
	}
	if tm.pending.Load() != 0 {
		t.Errorf("pending = %d after await, want 0", tm.pending.Load())
	}
	for i, w := range stuck {
		if s := w.state.Load(); s != workerIdle {
			t.Errorf("worker %d: state %d after take-back, want idle (%d)", i, s, workerIdle)
		}
	}
	// The parked worker was sent exactly one wake-up.
	if len(stuck[1].wake) != 1 || len(stuck[0].wake) != 0 {
		t.Errorf("wake tokens %d/%d, want 0/1", len(stuck[0].wake), len(stuck[1].wake))
	}
}

// TestTeamParksAndWakes runs calls whose worker share outlasts the caller's
// polling (so the caller parks) and calls spaced further apart than a
// worker polls (so the worker parks); every share must run exactly once
// and the pool must reuse its workers instead of starting new ones.
func TestTeamParksAndWakes(t *testing.T) {
	started := -1
	for round := 0; round < 6; round++ {
		tm := newTeam(1)
		if len(tm.workers) != 1 {
			tm.wait()
			t.Fatalf("round %d: no idle worker while nothing else runs", round)
		}
		j := &countJob{}
		if round%2 == 0 {
			j.sleep = 3 * spinWait
		}
		tm.start(j)
		j.runShare(0)
		tm.wait()
		if j.runs[0].Load() != 1 || j.runs[1].Load() != 1 {
			t.Fatalf("round %d: shares ran %d and %d times, want 1 and 1", round, j.runs[0].Load(), j.runs[1].Load())
		}
		pool.mu.Lock()
		n := pool.started
		pool.mu.Unlock()
		if started < 0 {
			started = n
		} else if n != started {
			t.Fatalf("round %d: %d workers started, was %d: idle workers not reused", round, n, started)
		}
		time.Sleep(3 * spinWait)
	}
}
