package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/metrics"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
	"github.com/deepgo/deepgo/track"
)

// storeFlag adds --store to a command.
func storeFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "store", "", "tracking store: a SQLite file or a postgres:// URL (default $"+track.EnvStore+" or "+track.DefaultURL()+")")
}

// openStore opens the tracking store named by --store (or the default).
func openStore(u string) (track.Store, error) {
	s, err := track.Open(u)
	if err != nil {
		return nil, fmt.Errorf("tracking store: %w", err)
	}
	return s, nil
}

// trackFlags are the training commands' tracking options.
type trackFlags struct {
	NoTrack bool
	Store   string
	RunName string
}

// add registers --no-track, --store and --run-name.
func (t *trackFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&t.NoTrack, "no-track", false, "do not record the run in the tracking store")
	storeFlag(f, &t.Store)
	f.StringVar(&t.RunName, "run-name", "", "name of the run in the tracking store (default: generated)")
}

// tracking is a training command's link to the tracking store; a nil
// *tracking does nothing.
type tracking struct {
	a       *app
	store   track.Store
	logger  *track.Logger
	restore []func()
}

// startTracking opens the store and adds a track.Logger to the app's
// training callbacks, recording params under the experiment named task. It
// returns nil (no tracking) with --no-track, and also, after a warning, when
// the default store cannot be opened (an explicit --store must work).
func (a *app) startTracking(t trackFlags, task string, params map[string]string) (*tracking, error) {
	if t.NoTrack {
		return nil, nil
	}
	s, err := openStore(t.Store)
	if err != nil {
		if t.Store != "" || os.Getenv(track.EnvStore) != "" {
			return nil, fmt.Errorf("%w (or train without tracking: --no-track)", err)
		}
		fmt.Fprintf(a.stderr, "deepgo: warning: %v; training without tracking\n", err)
		return nil, nil
	}
	l := track.NewLogger(s, task, t.RunName, params)
	l.OnError = func(err error) { fmt.Fprintf(a.stderr, "deepgo: tracking: %v\n", oneLine(err.Error())) }
	if err := l.Start(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("tracking store: %w (or train without tracking: --no-track)", err)
	}
	saved := a.callbacks
	a.callbacks = append(slices.Clip(a.callbacks), l)
	fmt.Fprintf(a.stderr, "Tracking: run %s (%s) in %s\n", l.RunID(), l.Run().Name, s.URL())
	return &tracking{a: a, store: s, logger: l, restore: []func(){func() { a.callbacks = saved }}}, nil
}

// finish logs the final metrics (at step = epochs) and copies the model
// package into the run's artifacts ("model"), recording its path in the tag
// "model_path".
func (t *tracking) finish(metrics map[string]float64, epochs int, modelDir string) {
	if t == nil {
		return
	}
	report := func(err error) {
		if err != nil {
			fmt.Fprintf(t.a.stderr, "deepgo: tracking: %v\n", oneLine(err.Error()))
		}
	}
	report(t.logger.LogMetrics(metrics, int64(epochs)))
	if modelDir != "" {
		if abs, err := filepath.Abs(modelDir); err == nil {
			report(t.logger.SetTag("model_path", abs))
		}
		_, err := t.logger.LogArtifact(modelDir, "model")
		report(err)
	}
}

// close ends the run (if OnTrainEnd did not), closes the store and removes
// the Logger from the app's callbacks.
func (t *tracking) close() {
	if t == nil {
		return
	}
	t.logger.Close()
	t.store.Close()
	for _, f := range t.restore {
		f()
	}
}

// resolveRun finds a run by ID, unique ID prefix or unique name.
func resolveRun(ctx context.Context, s track.Store, ref string) (track.Run, error) {
	if r, err := s.GetRun(ctx, ref); err == nil {
		return r, nil
	} else if !errors.Is(err, track.ErrNotFound) {
		return track.Run{}, err
	}
	runs, err := s.ListRuns(ctx, track.RunFilter{})
	if err != nil {
		return track.Run{}, err
	}
	var byPrefix, byName []track.Run
	for _, r := range runs {
		if ref != "" && strings.HasPrefix(r.ID, ref) {
			byPrefix = append(byPrefix, r)
		}
		if r.Name == ref {
			byName = append(byName, r)
		}
	}
	for _, m := range [][]track.Run{byPrefix, byName} {
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0], nil
		default:
			ids := make([]string, len(m))
			for i, r := range m {
				ids[i] = r.ID[:12]
			}
			return track.Run{}, fmt.Errorf("run %q is ambiguous: it matches runs %s", ref, strings.Join(ids, ", "))
		}
	}
	return track.Run{}, fmt.Errorf("no run %q in %s (see: deepgo runs ls)", ref, s.URL())
}

// withStore opens the store for a command and closes it after f.
func withStore(u string, f func(s track.Store) error) error {
	s, err := openStore(u)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}

func (a *app) runsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "runs",
		Short: "List, show, compare and delete tracked training runs",
		Long: `Training runs are recorded in a tracking store (SQLite file by default, or
PostgreSQL with --store postgres://...): params, metrics per step, system info,
artifacts. RUN is a run ID, a unique ID prefix or a unique run name.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.runsLsCmd(), a.runsShowCmd(), a.runsCompareCmd(), a.runsRmCmd())
	return c
}

// experimentNames maps experiment IDs to names.
func experimentNames(ctx context.Context, s track.Store) (map[string]string, error) {
	exps, err := s.ListExperiments(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, e := range exps {
		m[e.ID] = e.Name
	}
	return m, nil
}

func duration(r track.Run) string {
	end := r.EndTime
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.StartTime).Round(time.Second).String()
}

func (a *app) runsLsCmd() *cobra.Command {
	var (
		store, exp, status string
		limit              int
		asJSON             bool
	)
	c := &cobra.Command{
		Use:   "ls",
		Short: "List runs, newest first",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := track.RunFilter{Experiment: exp, Limit: limit}
			if status != "" {
				for _, st := range strings.Split(strings.ToUpper(status), ",") {
					if !track.Status(st).Valid() {
						return usageError{fmt.Errorf("--status %q: want RUNNING, FINISHED, FAILED or KILLED (comma-separated)", st)}
					}
					f.Statuses = append(f.Statuses, track.Status(st))
				}
			}
			return withStore(store, func(s track.Store) error {
				runs, err := s.ListRuns(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					if runs == nil {
						runs = []track.Run{}
					}
					return a.writeJSON(runs)
				}
				names, err := experimentNames(cmd.Context(), s)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tEXPERIMENT\tSTATUS\tSTARTED\tDURATION\tMETRICS")
				for _, r := range runs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID[:12], r.Name, names[r.ExperimentID], r.Status,
						r.StartTime.Local().Format("2006-01-02 15:04:05"), duration(r), len(r.Metrics))
				}
				return w.Flush()
			})
		},
	}
	f := c.Flags()
	storeFlag(f, &store)
	f.StringVar(&exp, "experiment", "", "only runs of this experiment (e.g. mnist, tabular)")
	f.StringVar(&status, "status", "", "only runs with these statuses (comma-separated)")
	f.IntVar(&limit, "limit", 0, "at most N runs (0: all)")
	f.BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return c
}

func (a *app) runsShowCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run's params, tags, final metrics and artifacts",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(store, func(s track.Store) error {
				ctx := cmd.Context()
				r, err := resolveRun(ctx, s, args[0])
				if err != nil {
					return err
				}
				arts, err := s.ListArtifacts(ctx, r.ID)
				if err != nil {
					return err
				}
				if arts == nil {
					arts = []track.Artifact{}
				}
				if asJSON {
					return a.writeJSON(struct {
						track.Run
						Artifacts []track.Artifact `json:"artifacts"`
					}{r, arts})
				}
				names, err := experimentNames(ctx, s)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "run\t%s\nname\t%s\nexperiment\t%s (%s)\nstatus\t%s\nstarted\t%s\nduration\t%s\nartifacts\t%s\n",
					r.ID, r.Name, names[r.ExperimentID], r.ExperimentID, r.Status,
					r.StartTime.Local().Format(time.RFC3339), duration(r), r.ArtifactDir)
				section(w, "params", r.Params)
				section(w, "tags", r.Tags)
				fmt.Fprintln(w, "\nmetrics\tvalue\tstep")
				for _, k := range slices.Sorted(maps.Keys(r.Metrics)) {
					m := r.Metrics[k]
					fmt.Fprintf(w, "  %s\t%s\t%d\n", k, track.FormatFloat(m.Value), m.Step)
				}
				if len(arts) > 0 {
					fmt.Fprintln(w, "\nartifact\tbytes")
					for _, x := range arts {
						fmt.Fprintf(w, "  %s\t%d\n", x.Path, x.Size)
					}
				}
				return w.Flush()
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	return c
}

func section(w io.Writer, title string, m map[string]string) {
	fmt.Fprintf(w, "\n%s\t\n", title)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(w, "  %s\t%s\n", k, m[k])
	}
}

func (a *app) runsCompareCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "compare RUN RUN...",
		Short: "Compare runs side by side: params and final metrics",
		Args:  usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(store, func(s track.Store) error {
				var runs []track.Run
				for _, ref := range args {
					r, err := resolveRun(cmd.Context(), s, ref)
					if err != nil {
						return err
					}
					runs = append(runs, r)
				}
				if asJSON {
					return a.writeJSON(runs)
				}
				params, metrics := map[string]bool{}, map[string]bool{}
				for _, r := range runs {
					for k := range r.Params {
						params[k] = true
					}
					for k := range r.Metrics {
						metrics[k] = true
					}
				}
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				row := func(label string, cell func(r track.Run) string) {
					fmt.Fprint(w, label)
					for _, r := range runs {
						fmt.Fprint(w, "\t"+cell(r))
					}
					fmt.Fprintln(w)
				}
				row("run", func(r track.Run) string { return r.ID[:12] })
				row("name", func(r track.Run) string { return r.Name })
				row("status", func(r track.Run) string { return string(r.Status) })
				row("duration", duration)
				if len(params) > 0 {
					row("params", func(track.Run) string { return "" })
					for _, k := range slices.Sorted(maps.Keys(params)) {
						row("  "+k, func(r track.Run) string { return orDash(r.Params[k], hasKey(r.Params, k)) })
					}
				}
				if len(metrics) > 0 {
					row("metrics (final)", func(track.Run) string { return "" })
					for _, k := range slices.Sorted(maps.Keys(metrics)) {
						row("  "+k, func(r track.Run) string {
							m, ok := r.Metrics[k]
							return orDash(track.FormatFloat(m.Value), ok)
						})
					}
				}
				return w.Flush()
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return c
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func orDash(s string, ok bool) string {
	if !ok {
		return "-"
	}
	return s
}

func (a *app) runsRmCmd() *cobra.Command {
	var (
		store  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "rm RUN...",
		Short: "Delete runs with their metrics and artifacts",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(store, func(s track.Store) error {
				var deleted []string
				for _, ref := range args {
					r, err := resolveRun(cmd.Context(), s, ref)
					if err != nil {
						return err
					}
					if err := s.DeleteRun(cmd.Context(), r.ID); err != nil {
						return err
					}
					deleted = append(deleted, r.ID)
					if !asJSON {
						fmt.Fprintf(a.stdout, "deleted run %s (%s)\n", r.ID, r.Name)
					}
				}
				if asJSON {
					return a.writeJSON(map[string]any{"deleted": deleted})
				}
				return nil
			})
		},
	}
	storeFlag(c.Flags(), &store)
	c.Flags().BoolVar(&asJSON, "json", false, "print the deleted run IDs as JSON")
	return c
}

// logClassReport records the test confusion matrix of m on ds as the run's
// artifact confusion_matrix.json and per-class precision, recall, F1 and
// support as metrics test_class_<label>_<score> at step (the layout the
// dashboard reads, docs/ui-api.md).
func (t *tracking) logClassReport(ctx context.Context, m nn.Module, ds data.Dataset, labels []string, step int64) {
	if t == nil {
		return
	}
	report := func(err error) {
		if err != nil {
			fmt.Fprintf(t.a.stderr, "deepgo: tracking: %v\n", oneLine(err.Error()))
		}
	}
	cm, err := confusionMatrix(ctx, m, ds, len(labels))
	if err != nil {
		report(err)
		return
	}
	b, err := json.Marshal(map[string]any{"labels": labels, "counts": cm.Counts})
	if err != nil {
		report(err)
		return
	}
	dir, err := os.MkdirTemp("", "deepgo-cm-")
	if err != nil {
		report(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "confusion_matrix.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		report(err)
		return
	}
	_, err = t.logger.LogArtifact(path, "confusion_matrix.json")
	report(err)
	ms := map[string]float64{}
	for i, c := range cm.Report().PerClass {
		p := "test_class_" + labels[i] + "_"
		ms[p+"precision"], ms[p+"recall"], ms[p+"f1"], ms[p+"support"] = c.Precision, c.Recall, c.F1, float64(c.Support)
	}
	report(t.logger.LogMetrics(ms, step))
}

// confusionMatrix evaluates m (in eval mode, without gradients) on ds.
func confusionMatrix(ctx context.Context, m nn.Module, ds data.Dataset, classes int) (*metrics.ConfusionMatrix, error) {
	nn.Eval(m)
	defer nn.Train(m)
	cm := metrics.NewConfusionMatrix(nil, nil, classes)
	it := data.NewLoader(ds, data.LoaderConfig{BatchSize: 500}).Epoch(0)
	defer it.Close()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := it.Batch()
		var out *tensor.Tensor
		tensor.NoGrad(func() { out = m.Forward(b.Input) })
		cm.Add(metrics.ArgMax(out), b.Target.Int64s())
	}
	return cm, it.Err()
}
