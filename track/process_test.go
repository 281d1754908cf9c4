package track_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deepgo/deepgo/track"
	"github.com/deepgo/deepgo/train"
)

// Child processes are this test binary re-executed with TRACK_HELPER set:
// TestMain runs the helper instead of the tests.
const (
	envHelper = "TRACK_HELPER"
	envStore  = "TRACK_HELPER_STORE"
	envPoints = "TRACK_HELPER_POINTS"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		if err := helper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper is a child process's work.
//
//	log:  print "READY", wait for a line on stdin, then log points of "x"
//	      (step i, value i) through a Logger flushing every 37 points: at
//	      least N, and on until the other child's run has points in the
//	      store (so the two writers surely overlap); end the run and print
//	      "COUNT <points>".
//	kill: log N batch losses through a Logger, flush, print "READY <run id>"
//	      and wait to be killed.
func helper(mode string) error {
	n, err := strconv.Atoi(os.Getenv(envPoints))
	if err != nil {
		return err
	}
	s, err := track.Open(os.Getenv(envStore))
	if err != nil {
		return err
	}
	defer s.Close()
	l := track.NewLogger(s, "procs", mode+"-"+strconv.Itoa(os.Getpid()), map[string]string{"pid": strconv.Itoa(os.Getpid())})
	l.FlushPoints = 37
	l.OnError = func(err error) { fmt.Fprintln(os.Stderr, "tracking error:", err) }
	if err := l.OnTrainBegin(&train.State{}); err != nil {
		return err
	}
	switch mode {
	case "log":
		fmt.Println("READY")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		i := 0
		for ; ; i++ {
			if i >= n && i%100 == 0 {
				if err := l.Flush(); err != nil {
					return err
				}
				if other, err := othersWrote(s, l.RunID()); err != nil || other {
					if err != nil {
						return err
					}
					break
				}
				if i > 1_000_000 {
					return fmt.Errorf("the other child never wrote")
				}
			}
			if err := l.LogMetric("x", float64(i), int64(i)); err != nil {
				return err
			}
		}
		if err := l.OnTrainEnd(&train.State{}); err != nil {
			return err
		}
		fmt.Printf("COUNT %d\n", i)
		return l.Err()
	case "kill":
		for i := 1; i <= n; i++ {
			l.OnBatchEnd(&train.State{GlobalStep: i, BatchLoss: 1 / float64(i)})
		}
		if err := l.Flush(); err != nil {
			return err
		}
		fmt.Printf("READY %s\n", l.RunID())
		time.Sleep(time.Minute) // the parent kills us long before
		return fmt.Errorf("not killed")
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// othersWrote reports whether a run in "procs" other than id has points.
func othersWrote(s track.Store, id string) (bool, error) {
	runs, err := s.ListRuns(context.Background(), track.RunFilter{Experiment: "procs"})
	if err != nil {
		return false, err
	}
	for _, r := range runs {
		if _, ok := r.Metrics["x"]; ok && r.ID != id {
			return true, nil
		}
	}
	return false, nil
}

func helperCmd(t *testing.T, mode, store string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envStore+"="+store, envPoints+"="+strconv.Itoa(n))
	cmd.Stderr = &strings.Builder{}
	return cmd
}

// Two processes logging into one SQLite store at the same time lose no
// point.
func TestTwoProcessesOneSQLiteStore(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store.db")
	// Create the schema first so both children race on data, not DDL
	// (concurrent migration is serialized too, but that is not the point).
	s := open(t, store)
	const n = 2000
	var (
		cmds  []*exec.Cmd
		ins   []io.WriteCloser
		outs  []*bufio.Reader
		count = map[string]int{} // run name -> points its child logged
	)
	for range 2 {
		c := helperCmd(t, "log", store, n)
		in, err := c.StdinPipe()
		must(t, err)
		out, err := c.StdoutPipe()
		must(t, err)
		must(t, c.Start())
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		cmds, ins, outs = append(cmds, c), append(ins, in), append(outs, bufio.NewReader(out))
	}
	for i, o := range outs {
		if line, err := o.ReadString('\n'); line != "READY\n" {
			t.Fatalf("child %d said %q, %v\n%s", i, line, err, cmds[i].Stderr)
		}
	}
	for _, in := range ins { // both go at once
		_, err := io.WriteString(in, "GO\n")
		must(t, err)
	}
	for i, c := range cmds {
		line, _ := outs[i].ReadString('\n')
		var k int
		if _, err := fmt.Sscanf(line, "COUNT %d", &k); err != nil {
			t.Fatalf("child %d said %q\n%s", i, line, c.Stderr)
		}
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v\n%s", err, c.Stderr)
		}
		count["log-"+strconv.Itoa(c.Process.Pid)] = k
	}
	runs, err := s.ListRuns(ctx, track.RunFilter{Experiment: "procs"})
	must(t, err)
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for _, r := range runs {
		if r.Status != track.StatusFinished {
			t.Fatalf("run %s: %s", r.Name, r.Status)
		}
		want := count[r.Name]
		if want < n {
			t.Fatalf("run %s: its child logged %d points, want >= %d", r.Name, want, n)
		}
		h, err := s.MetricHistory(ctx, r.ID, "x")
		must(t, err)
		if len(h["x"]) != want {
			t.Fatalf("run %s has %d points, want %d", r.Name, len(h["x"]), want)
		}
		for i, m := range h["x"] {
			if m.Step != int64(i) || m.Value != float64(i) {
				t.Fatalf("run %s point %d: %+v", r.Name, i, m)
			}
		}
		if r.Metrics["x"].Step != int64(want-1) {
			t.Fatalf("latest x %+v", r.Metrics["x"])
		}
	}
}

// A process SIGKILLed mid-run leaves a run that reads as KILLED, with every
// point it flushed.
func TestSIGKILLedRunIsKilled(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.newURL(t)
			s := open(t, u)
			const n = 2500
			cmd := helperCmd(t, "kill", u, n)
			out, err := cmd.StdoutPipe()
			must(t, err)
			must(t, cmd.Start())
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q, %v\n%s", line, err, cmd.Stderr)
			}
			id, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
			if !ok {
				t.Fatalf("child said %q", line)
			}
			before, err := s.GetRun(ctx, id)
			must(t, err)
			if before.Status != track.StatusRunning {
				t.Fatalf("live child's run is %s", before.Status)
			}
			must(t, cmd.Process.Signal(syscall.SIGKILL))
			go io.Copy(io.Discard, out)
			err = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v", err)
			}
			s2 := open(t, u) // as `deepgo runs ls` would
			r, err := s2.GetRun(ctx, id)
			must(t, err)
			if r.Status != track.StatusKilled || r.EndTime.IsZero() {
				t.Fatalf("killed child's run: %s (end %v)", r.Status, r.EndTime)
			}
			h, err := s2.MetricHistory(ctx, id, "batch_loss")
			must(t, err)
			if len(h["batch_loss"]) != n {
				t.Fatalf("%d points survived, want all %d", len(h["batch_loss"]), n)
			}
			for i, m := range h["batch_loss"] {
				if m.Step != int64(i+1) || m.Value != 1/float64(i+1) {
					t.Fatalf("point %d: %+v", i, m)
				}
			}
			if r.Params["pid"] != strconv.Itoa(cmd.Process.Pid) || r.Tags["sys.go_version"] == "" {
				t.Fatalf("params %v tags %v", r.Params, r.Tags)
			}
		})
	}
}
