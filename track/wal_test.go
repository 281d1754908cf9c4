package track_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/deepgo/deepgo/track"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
}

// The store survives a power-cut style loss of the end of its write-ahead
// log: the files are copied while the store is open (as a disk would hold
// them at the cut), the copy's -wal is truncated, and the copy reopens
// without error, passes integrity_check and holds whole batches only.
func TestSurvivesTruncatedWAL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := open(t, path)
	// An extra connection keeps the WAL from being checkpointed away when
	// the store's connections close.
	keep := sqliteBackend.raw(t, path)
	must(t, keep.Ping())
	r, err := s.CreateRun(ctx, track.NewRun{Name: "walrun"})
	must(t, err)
	const batches, per = 40, 50
	for b := range batches {
		var ms []track.Metric
		for i := range per {
			step := int64(b*per + i)
			ms = append(ms, track.Metric{Key: "loss", Value: float64(step), Step: step})
		}
		must(t, s.LogBatch(ctx, r.ID, track.Batch{Metrics: ms}))
	}
	wal, err := os.Stat(path + "-wal")
	must(t, err)
	if wal.Size() == 0 {
		t.Fatal("the WAL is empty: nothing to truncate")
	}
	for _, size := range []int64{wal.Size(), wal.Size() - 100, wal.Size() / 2, 4096, 0} {
		cdir := t.TempDir()
		cpath := filepath.Join(cdir, "store.db")
		copyFile(t, path, cpath)
		copyFile(t, path+"-wal", cpath+"-wal")
		must(t, os.Truncate(cpath+"-wal", size))

		c, err := track.Open(cpath)
		if err != nil {
			t.Fatalf("WAL truncated to %d of %d bytes: reopening: %v", size, wal.Size(), err)
		}
		var check string
		must(t, sqliteBackend.raw(t, cpath).QueryRow(`PRAGMA integrity_check`).Scan(&check))
		if check != "ok" {
			t.Fatalf("WAL truncated to %d: integrity_check: %s", size, check)
		}
		got, err := c.GetRun(ctx, r.ID)
		n := 0
		if err == nil {
			h, err := c.MetricHistory(ctx, r.ID, "loss")
			must(t, err)
			n = len(h["loss"])
			if n%per != 0 {
				t.Fatalf("WAL truncated to %d: %d points, not whole batches of %d", size, n, per)
			}
			for i, m := range h["loss"] {
				if m.Step != int64(i) {
					t.Fatalf("WAL truncated to %d: point %d has step %d", size, i, m.Step)
				}
			}
			if n > 0 && got.Metrics["loss"].Step != int64(n-1) {
				t.Fatalf("WAL truncated to %d: latest %+v with %d points", size, got.Metrics["loss"], n)
			}
		}
		if size == wal.Size() && n != batches*per {
			t.Fatalf("intact WAL: %d points, want %d (err %v)", n, batches*per, err)
		}
		// The reopened store takes writes.
		r2, err := c.CreateRun(ctx, track.NewRun{Name: "after"})
		must(t, err)
		must(t, c.LogMetric(ctx, r2.ID, track.Metric{Key: "x", Value: 1}))
		must(t, c.Close())
		t.Logf("WAL %d/%d bytes: %d of %d points kept", size, wal.Size(), n, batches*per)
	}
}
