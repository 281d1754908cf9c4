package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/train"
)

// version is the release version; set with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit statuses.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError marks errors in the command line (unknown flag, bad value,
// wrong number of arguments); they exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// app carries the writers of one invocation to the subcommands.
type app struct {
	stdout, stderr io.Writer
	// callbacks are added to every training run (tests use them to stop a
	// run at a chosen step).
	callbacks []train.Callback
}

// Main runs the deepgo command line args (without the program name), writing
// to stdout and stderr, and returns the exit status. Cancelling ctx stops a
// training run after its current step. Main never panics: an unexpected
// panic is reported as a one-line error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&app{stdout: stdout, stderr: stderr}).run(ctx, args)
}

// run executes one command line; see Main.
func (a *app) run(ctx context.Context, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(a.stderr, "deepgo: internal error: %s\n", oneLine(fmt.Sprint(r)))
			code = exitError
		}
	}()
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(a.stderr, "deepgo: %s\n", oneLine(err.Error()))
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", strings.Join(commandPath(root, args), " "))
		return exitUsage
	case errors.Is(err, train.ErrInterrupted):
		return exitInterrupted
	}
	return exitError
}

// commandPath returns the names of the subcommands that args select.
func commandPath(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil {
		return []string{root.Name()}
	}
	return strings.Fields(c.CommandPath())
}

// oneLine joins the lines of a message with "; ".
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// usageArgs wraps a cobra argument validator so its errors are usage errors.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "deepgo",
		Short:         "Train, evaluate and run deep learning models in pure Go",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		a.trainCmd(),
		a.pretrainCmd(),
		a.evalCmd(),
		a.predictCmd(),
		a.summaryCmd(),
		a.exportCmd(),
		a.importCmd(),
		a.versionCmd(),
		a.serveCmd(),
		a.runsCmd(),
		a.modelsCmd(),
		a.uiCmd(),
		a.benchCmd(),
	)
	return root
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the deepgo version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, rev := version, ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						rev = " " + s.Value[:12]
					}
				}
			}
			_, err := fmt.Fprintf(a.stdout, "deepgo %s%s %s %s/%s\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
