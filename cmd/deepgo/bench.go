package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/bench"
)

// benchCmd runs the standard benchmark workloads (package bench): SGEMM,
// seed-CNN and MLP training, inference, allocations per step and peak RSS.
// bench/compare.sh runs it against the PyTorch reference.
func (a *app) benchCmd() *cobra.Command {
	var opt bench.Options
	var asJSON, list, quiet bool
	c := &cobra.Command{
		Use:   "bench",
		Short: "Run the standard speed benchmarks and print a table or JSON",
		Long: `Run deepgo's standard workloads: SGEMM n=256..2048 on 1 and 2 threads (GFLOPS)
and its 2-thread scaling (measured in alternating spells), seed-CNN training at batch 32 and 128 and MLP 784-128-10 training at batch 64
(images/s), bidirectional-LSTM and Transformer-encoder training at batch 32
(sequences/s), seed-CNN inference at batch 1 (median µs) and 256 (images/s),
allocations per training step and peak RSS. bench/compare.sh runs the same
workloads in PyTorch and prints deepgo/PyTorch ratios (see BENCHMARKS.md).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				for _, n := range bench.Workloads(opt) {
					fmt.Fprintln(a.stdout, n)
				}
				return nil
			}
			if !quiet {
				opt.Progress = func(r bench.Result) {
					fmt.Fprintf(a.stderr, "%-22s %12.2f %s\n", r.Name, r.Value, r.Unit)
				}
			}
			rs, err := bench.Run(cmd.Context(), opt)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := rs.JSON()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(a.stdout, string(b))
				return err
			}
			_, err = fmt.Fprint(a.stdout, rs.Table())
			return err
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	f.BoolVar(&list, "list", false, "list the workload names and exit")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not report each result on stderr as it comes")
	f.StringVar(&opt.Filter, "filter", "", "comma-separated workload patterns (glob or substring; '!' excludes)")
	f.DurationVar(&opt.Duration, "duration", 0, "timed duration of each workload (default 2s)")
	f.IntVar(&opt.Steps, "steps", 0, "fixed number of timed steps per workload (overrides --duration)")
	f.IntVar(&opt.Warmup, "warmup", 0, "untimed warm-up steps (default 3)")
	f.IntVar(&opt.Threads, "threads", 0, "threads for the model workloads (default 2)")
	f.StringVar(&opt.Data, "data", "", "model data: auto (MNIST if found), mnist or random")
	f.StringVar(&opt.MNISTDir, "mnist-dir", "", "directory with the four MNIST files")
	return c
}
