package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/optim"
	"github.com/deepgo/deepgo/safetensors"
	"github.com/deepgo/deepgo/tensor"
)

// Checkpoint saves resumable checkpoints under Dir: Dir/last after every
// epoch (and every EverySteps steps, and when the run is interrupted), and
// Dir/best whenever the Monitor value improves. Each is a complete
// checkpoint directory (see the package documentation) written atomically.
// Resume a run with Config.ResumeFrom = Dir (its "last").
type Checkpoint struct {
	// Dir is the directory holding the "last" and "best" checkpoints.
	Dir string
	// Monitor is the log key deciding "best"; "" saves no best checkpoint.
	Monitor string
	// Mode is "min", "max" or "" (inferred: "max" for names containing
	// "acc", "auc", "f1", "precision" or "recall", else "min").
	Mode string
	// EverySteps, if > 0, also saves "last" after every EverySteps global steps.
	EverySteps int

	mode string
	best float64
}

// NewCheckpoint returns a Checkpoint saving to dir, keeping the best
// checkpoint by monitor ("" for none).
func NewCheckpoint(dir, monitor string) *Checkpoint {
	return &Checkpoint{Dir: dir, Monitor: monitor}
}

// LastDir returns Dir/last.
func (c *Checkpoint) LastDir() string { return filepath.Join(c.Dir, "last") }

// BestDir returns Dir/best.
func (c *Checkpoint) BestDir() string { return filepath.Join(c.Dir, "best") }

// Best returns the best monitored value saved so far.
func (c *Checkpoint) Best() float64 { return c.best }

// OnTrainBegin checks the settings and creates Dir.
func (c *Checkpoint) OnTrainBegin(*State) error {
	if c.Dir == "" {
		return errors.New("train.Checkpoint: Dir is empty")
	}
	m, err := resolveMode("Checkpoint", c.Monitor, c.Mode)
	if err != nil {
		return err
	}
	c.mode, c.best = m, worst(m)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("train.Checkpoint: %w", err)
	}
	return nil
}

// OnEpochBegin does nothing.
func (c *Checkpoint) OnEpochBegin(*State) error { return nil }

// OnBatchEnd saves "last" every EverySteps steps.
func (c *Checkpoint) OnBatchEnd(s *State) error {
	if c.EverySteps > 0 && s.GlobalStep%c.EverySteps == 0 {
		return s.SaveCheckpoint(c.LastDir())
	}
	return nil
}

// OnEpochEnd saves "best" if the monitored value improved, then "last".
func (c *Checkpoint) OnEpochEnd(s *State) error {
	if c.Monitor != "" {
		v, err := monitored("Checkpoint", s.Logs, c.Monitor)
		if err != nil {
			return err
		}
		if improved(c.mode, v, c.best, 0) {
			c.best = v
			if err := s.SaveCheckpoint(c.BestDir()); err != nil {
				return err
			}
		}
	}
	return s.SaveCheckpoint(c.LastDir())
}

// OnTrainEnd saves "last" when the run was interrupted.
func (c *Checkpoint) OnTrainEnd(s *State) error {
	if s.Interrupted {
		return s.SaveCheckpoint(c.LastDir())
	}
	return nil
}

// StateDict returns the best value.
func (c *Checkpoint) StateDict() optim.State {
	return optim.State{Kind: "Checkpoint", Scalars: map[string]float64{"best": c.best}}
}

// LoadStateDict restores the best value.
func (c *Checkpoint) LoadStateDict(st optim.State) error {
	if err := checkKind("Checkpoint", st, "best"); err != nil {
		return err
	}
	c.best = st.Scalars["best"]
	return nil
}

// jsonFloat is a float64 that JSON-encodes NaN and ±Inf as strings.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte(`"` + strconv.FormatFloat(v, 'g', -1, 64) + `"`), nil
	}
	return []byte(strconv.FormatFloat(v, 'g', -1, 64)), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("bad number %s", b)
	}
	*f = jsonFloat(v)
	return nil
}

// MarshalJSON encodes the logs as a JSON object; NaN and ±Inf become the
// strings "NaN", "+Inf" and "-Inf".
func (l Logs) MarshalJSON() ([]byte, error) {
	m := make(map[string]jsonFloat, len(l))
	for k, v := range l {
		m[k] = jsonFloat(v)
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes logs written by MarshalJSON.
func (l *Logs) UnmarshalJSON(b []byte) error {
	var m map[string]jsonFloat
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*l = make(Logs, len(m))
	for k, v := range m {
		(*l)[k] = float64(v)
	}
	return nil
}

// checkpoint format identification.
const (
	ckptFormat  = "deepgo-train-checkpoint"
	ckptVersion = 1
	stateFile   = "state.json"
	modelFile   = "model.safetensors"
	optimFile   = "optimizer.safetensors"
	schedFile   = "scheduler.safetensors"
)

func callbackFile(i int) string { return fmt.Sprintf("callback-%d.safetensors", i) }

type fileSum struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type loaderInfo struct {
	Len       int    `json:"len"`
	BatchSize int    `json:"batch_size"`
	Shuffle   bool   `json:"shuffle"`
	DropLast  bool   `json:"drop_last"`
	Seed      uint64 `json:"seed"`
}

type ckptState struct {
	Format     string             `json:"format"`
	Version    int                `json:"version"`
	Epoch      int                `json:"epoch"`
	Step       int                `json:"step"`
	GlobalStep int                `json:"global_step"`
	Epochs     int                `json:"epochs"`
	EpochLR    jsonFloat          `json:"epoch_lr"`
	Examples   float64            `json:"examples"`
	Sums       []jsonFloat        `json:"sums"`
	Loader     loaderInfo         `json:"loader"`
	Scheduler  bool               `json:"scheduler"`
	Callbacks  []string           `json:"callbacks"`
	History    *History           `json:"history"`
	Files      map[string]fileSum `json:"files"`
	// RNG holds the generator state of each random module (dropout), by
	// module path, so a resumed run draws the same masks.
	RNG map[string][]byte `json:"rng,omitempty"`
}

// beforeInstall, when set (by tests), runs after a checkpoint's files are
// written into the temporary directory and before it is renamed into place;
// an error aborts the save.
var beforeInstall func(tmp string) error

// SaveCheckpoint writes a complete, resumable checkpoint of the run to the
// directory dir, atomically: the files go to a temporary sibling directory
// which then replaces dir. Taken in OnEpochEnd it resumes at the next epoch;
// taken in OnBatchEnd or OnTrainEnd it resumes after the current step.
func (s *State) SaveCheckpoint(dir string) error {
	if s.t == nil {
		return errors.New("train: SaveCheckpoint needs the State passed to a callback by Fit")
	}
	if err := s.t.save(dir); err != nil {
		return fmt.Errorf("train: saving checkpoint %s: %w", dir, err)
	}
	return nil
}

func (t *trainer) save(dir string) (err error) {
	s := &t.state
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	st := ckptState{
		Format: ckptFormat, Version: ckptVersion, GlobalStep: s.GlobalStep, Epochs: t.cfg.Epochs,
		Loader: loaderOf(t), Scheduler: t.cfg.Scheduler != nil, History: t.hist,
		Files: map[string]fileSum{},
	}
	if t.atEpochEnd {
		st.Epoch, st.Step, st.Sums, st.EpochLR = s.Epoch+1, 0, make([]jsonFloat, len(t.sums)), jsonFloat(t.cfg.Optimizer.LR())
	} else {
		st.Epoch, st.Step, st.Examples, st.EpochLR = s.Epoch, s.Step, t.n, jsonFloat(t.epochLR)
		for _, v := range t.sums {
			st.Sums = append(st.Sums, jsonFloat(v))
		}
	}
	for name, r := range nn.RandomSources(t.model) {
		b, err := r.MarshalBinary()
		if err != nil {
			return fmt.Errorf("random state of module %q: %w", name, err)
		}
		if st.RNG == nil {
			st.RNG = map[string][]byte{}
		}
		st.RNG[name] = b
	}
	if err := nn.SaveStateDict(filepath.Join(tmp, modelFile), nn.StateDict(t.model)); err != nil {
		return err
	}
	files := []string{modelFile, optimFile}
	if err := optim.SaveState(filepath.Join(tmp, optimFile), t.cfg.Optimizer.StateDict()); err != nil {
		return fmt.Errorf("optimizer state: %w", err)
	}
	if t.cfg.Scheduler != nil {
		files = append(files, schedFile)
		if err := optim.SaveState(filepath.Join(tmp, schedFile), t.cfg.Scheduler.StateDict()); err != nil {
			return fmt.Errorf("scheduler state: %w", err)
		}
	}
	for i, cb := range t.stateful {
		cs := cb.StateDict()
		st.Callbacks = append(st.Callbacks, cs.Kind)
		files = append(files, callbackFile(i))
		if err := optim.SaveState(filepath.Join(tmp, callbackFile(i)), cs); err != nil {
			return fmt.Errorf("callback %d (%T) state: %w", i, cb, err)
		}
	}
	for _, f := range files {
		sum, err := hashFile(filepath.Join(tmp, f))
		if err != nil {
			return err
		}
		st.Files[f] = sum
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := safetensors.WriteFileAtomic(filepath.Join(tmp, stateFile), js); err != nil {
		return err
	}
	syncDir(tmp)
	if beforeInstall != nil {
		if err := beforeInstall(tmp); err != nil {
			return err
		}
	}
	return install(tmp, dir)
}

func loaderOf(t *trainer) loaderInfo {
	c := t.cfg.Train.Config()
	return loaderInfo{Len: t.cfg.Train.Dataset().Len(), BatchSize: c.BatchSize, Shuffle: c.Shuffle, DropLast: c.DropLast, Seed: c.Seed}
}

func hashFile(path string) (fileSum, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileSum{}, err
	}
	h := sha256.Sum256(b)
	return fileSum{Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}, nil
}

// syncDir flushes a directory's entries to disk where the OS supports it.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// install moves the finished checkpoint tmp to final. An existing final is
// first renamed to the sibling ".<base>.old" and removed after tmp is in
// place, so that at every moment either final or .<base>.old is a complete
// checkpoint (ReadCheckpoint falls back to the latter).
func install(tmp, final string) error {
	parent, base := filepath.Dir(final), filepath.Base(final)
	old := filepath.Join(parent, "."+base+".old")
	if _, err := os.Lstat(final); err == nil {
		if err := os.RemoveAll(old); err != nil {
			return err
		}
		if err := os.Rename(final, old); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, e := os.Lstat(final); errors.Is(e, fs.ErrNotExist) {
			os.Rename(old, final)
		}
		return err
	}
	syncDir(parent)
	os.RemoveAll(old)
	// Remove temporary directories left by crashed saves.
	if ents, err := os.ReadDir(parent); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "."+base+".tmp-") {
				os.RemoveAll(filepath.Join(parent, e.Name()))
			}
		}
	}
	return nil
}

// CheckpointData is a checkpoint read back by ReadCheckpoint.
type CheckpointData struct {
	// Dir is the checkpoint directory that was read.
	Dir string
	// Epoch and Step are where training resumes: batch Step of epoch Epoch.
	Epoch, Step int
	// GlobalStep is the number of optimizer steps taken.
	GlobalStep int
	// History is the run's history up to the checkpoint.
	History *History
	// Model is the model's state dict.
	Model map[string]*tensor.Tensor
	// Optimizer is the optimizer's state.
	Optimizer optim.State
	// Scheduler is the LR scheduler's state, nil if the run had none.
	Scheduler *optim.State
	// Callbacks holds the state of each stateful callback, in order.
	Callbacks []optim.State

	st ckptState
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// resolveCheckpoint finds the checkpoint directory for path: path itself,
// path/last, or a ".<name>.old" left by an interrupted swap.
func resolveCheckpoint(path string) (string, error) {
	cands := []string{
		path,
		filepath.Join(path, "last"),
		filepath.Join(path, ".last.old"),
		filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".old"),
	}
	for _, c := range cands {
		if isFile(filepath.Join(c, stateFile)) {
			return c, nil
		}
	}
	return "", fmt.Errorf("train: no checkpoint at %s (no %s there or in %s)", path, stateFile, filepath.Join(path, "last"))
}

// ReadCheckpoint reads and verifies the checkpoint at path: a checkpoint
// directory, or a Checkpoint callback's Dir (meaning its "last"). Every file
// is checked against the size and SHA-256 recorded in state.json; a damaged
// or missing file gives an error naming it.
func ReadCheckpoint(path string) (*CheckpointData, error) {
	dir, err := resolveCheckpoint(path)
	if err != nil {
		return nil, err
	}
	sp := filepath.Join(dir, stateFile)
	raw, err := os.ReadFile(sp)
	if err != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", err)
	}
	var st ckptState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("train: checkpoint file %s is damaged: %v", sp, err)
	}
	if st.Format != ckptFormat || st.Version != ckptVersion {
		return nil, fmt.Errorf("train: %s is not a deepgo checkpoint of version %d (format %q, version %d)", sp, ckptVersion, st.Format, st.Version)
	}
	if st.History == nil || st.Epoch < 0 || st.Step < 0 || st.GlobalStep < 0 {
		return nil, fmt.Errorf("train: checkpoint file %s is damaged: bad position or no history", sp)
	}
	names := make([]string, 0, len(st.Files))
	for f := range st.Files {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		want := st.Files[f]
		fp := filepath.Join(dir, f)
		got, err := hashFile(fp)
		if err != nil {
			return nil, fmt.Errorf("train: checkpoint file %s: %w", fp, err)
		}
		if got.Size != want.Size {
			return nil, fmt.Errorf("train: checkpoint file %s is truncated or damaged: %d bytes, want %d", fp, got.Size, want.Size)
		}
		if got.SHA256 != want.SHA256 {
			return nil, fmt.Errorf("train: checkpoint file %s is damaged: SHA-256 %s, want %s", fp, got.SHA256, want.SHA256)
		}
	}
	need := []string{modelFile, optimFile}
	if st.Scheduler {
		need = append(need, schedFile)
	}
	for i := range st.Callbacks {
		need = append(need, callbackFile(i))
	}
	for _, f := range need {
		if _, ok := st.Files[f]; !ok {
			return nil, fmt.Errorf("train: checkpoint %s: %s does not list %s", dir, sp, f)
		}
	}
	ck := &CheckpointData{Dir: dir, Epoch: st.Epoch, Step: st.Step, GlobalStep: st.GlobalStep, History: st.History, st: st}
	if ck.Model, err = nn.LoadStateDictFile(filepath.Join(dir, modelFile)); err != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", err)
	}
	if ck.Optimizer, err = optim.LoadState(filepath.Join(dir, optimFile)); err != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", err)
	}
	if st.Scheduler {
		s, err := optim.LoadState(filepath.Join(dir, schedFile))
		if err != nil {
			return nil, fmt.Errorf("train: checkpoint: %w", err)
		}
		ck.Scheduler = &s
	}
	for i, kind := range st.Callbacks {
		s, err := optim.LoadState(filepath.Join(dir, callbackFile(i)))
		if err != nil {
			return nil, fmt.Errorf("train: checkpoint: %w", err)
		}
		if s.Kind != kind {
			return nil, fmt.Errorf("train: checkpoint %s: %s holds %q state, state.json says %q", dir, callbackFile(i), s.Kind, kind)
		}
		ck.Callbacks = append(ck.Callbacks, s)
	}
	return ck, nil
}

// restore applies a checkpoint to the trainer before training starts.
func (t *trainer) restore(ck *CheckpointData) error {
	s := &t.state
	fail := func(format string, a ...any) error {
		return fmt.Errorf("train.Fit: cannot resume from %s: "+format, append([]any{ck.Dir}, a...)...)
	}
	if got, want := ck.st.Loader, loaderOf(t); got != want {
		return fail("the training loader differs (checkpoint %+v, now %+v); the data order would not match", got, want)
	}
	if !slices.Equal(ck.History.Names, t.hist.Names) {
		return fail("the logged metrics differ (checkpoint %v, now %v)", ck.History.Names, t.hist.Names)
	}
	if len(ck.st.Sums) != len(t.sums) {
		return fail("state.json has %d running sums, want %d", len(ck.st.Sums), len(t.sums))
	}
	if ck.Step > s.StepsPerEpoch {
		return fail("step %d is beyond the %d batches of an epoch", ck.Step, s.StepsPerEpoch)
	}
	if (ck.Scheduler != nil) != (t.cfg.Scheduler != nil) {
		return fail("the checkpoint has a scheduler: %v, the run has one: %v", ck.Scheduler != nil, t.cfg.Scheduler != nil)
	}
	if len(ck.Callbacks) != len(t.stateful) {
		return fail("it holds the state of %d stateful callbacks, the run has %d", len(ck.Callbacks), len(t.stateful))
	}
	for i, cb := range t.stateful {
		if k := cb.StateDict().Kind; k != ck.Callbacks[i].Kind {
			return fail("callback state %d is for %q, the run's callback is %q", i, ck.Callbacks[i].Kind, k)
		}
	}
	rngs := nn.RandomSources(t.model)
	for name := range ck.st.RNG {
		if rngs[name] == nil {
			return fail("state.json holds random state for module %q, which the model lacks", name)
		}
	}
	for name, r := range rngs {
		b, ok := ck.st.RNG[name]
		if !ok {
			return fail("state.json holds no random state for module %q", name)
		}
		if err := r.UnmarshalBinary(b); err != nil {
			return fail("module %q: %v", name, err)
		}
	}
	if err := nn.LoadStateDict(t.model, ck.Model, true); err != nil {
		return fail("%v", err)
	}
	if err := t.cfg.Optimizer.LoadStateDict(ck.Optimizer); err != nil {
		return fail("%v", err)
	}
	if ck.Scheduler != nil {
		if err := t.cfg.Scheduler.LoadStateDict(*ck.Scheduler); err != nil {
			return fail("%v", err)
		}
	}
	t.hist.Epochs = slices.Clone(ck.History.Epochs)
	s.Epoch, s.Step, s.GlobalStep, s.Resumed = ck.Epoch, ck.Step, ck.GlobalStep, true
	t.n, t.epochLR = ck.st.Examples, float64(ck.st.EpochLR)
	for i, v := range ck.st.Sums {
		t.sums[i] = float64(v)
	}
	return nil
}

// loadCallbackStates restores the stateful callbacks (after OnTrainBegin).
func (t *trainer) loadCallbackStates(states []optim.State) error {
	for i, cb := range t.stateful {
		if err := cb.LoadStateDict(states[i]); err != nil {
			return fmt.Errorf("train.Fit: resuming callback %d (%T): %w", i, cb, err)
		}
	}
	return nil
}
