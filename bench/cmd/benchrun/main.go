// Command benchrun runs deepgo's benchmark suite (package bench) and prints
// the results as a table or, with -json, as JSON. It stands in for
// `deepgo bench` in bench/compare.sh.
//
// Usage:
//
//	go run ./bench/cmd/benchrun [-json] [-filter PATTERNS] [-duration 2s] [-steps N] [-threads 2] [-data auto|mnist|random]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/deepgo/deepgo/bench"
)

func main() {
	var opt bench.Options
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	quiet := flag.Bool("q", false, "do not report progress on stderr")
	flag.StringVar(&opt.Filter, "filter", "", "comma-separated workload patterns (glob or substring; '!' excludes)")
	flag.DurationVar(&opt.Duration, "duration", 0, "timed duration of each workload (default 2s)")
	flag.IntVar(&opt.Steps, "steps", 0, "fixed number of timed steps per workload (overrides -duration)")
	flag.IntVar(&opt.Warmup, "warmup", 0, "untimed warm-up steps (default 3)")
	flag.IntVar(&opt.Threads, "threads", 0, "Sgemm threads for the model workloads (default 2)")
	flag.StringVar(&opt.Data, "data", "", "model data: auto (MNIST if found), mnist or random")
	flag.StringVar(&opt.MNISTDir, "mnist-dir", "", "directory with the four MNIST files")
	list := flag.Bool("list", false, "list the workload names and exit")
	flag.Parse()
	if *list {
		for _, n := range bench.Workloads(opt) {
			fmt.Println(n)
		}
		return
	}
	if !*quiet {
		opt.Progress = func(r bench.Result) {
			fmt.Fprintf(os.Stderr, "%-22s %12.2f %s\n", r.Name, r.Value, r.Unit)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rs, err := bench.Run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	if *asJSON {
		b, err := rs.JSON()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		fmt.Println(string(b))
		return
	}
	fmt.Print(rs.Table())
}
