package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/deepgo/deepgo/track"
	"github.com/deepgo/deepgo/track/ui"
)

// uiShutdownTimeout is how long `deepgo ui` waits for open requests when it
// is stopped.
const uiShutdownTimeout = 5 * time.Second

func (a *app) uiCmd() *cobra.Command {
	var store, addr string
	c := &cobra.Command{
		Use:   "ui [--store URL] [--addr 127.0.0.1:5000]",
		Short: "Serve the experiment-tracking web dashboard",
		Long: `Serve the experiment-tracking web dashboard: runs with filters and sorting,
metric curves of several runs overlaid (log scale, smoothing), confusion
matrices and per-class metrics, and the model registry with versions,
aliases and links to the runs that made them. Its JSON API under /api/ is
documented in docs/ui-api.md and can be used by scripts.

--store is the tracking store (a SQLite file or a postgres:// URL; default
$DEEPGO_STORE, else the user's data directory). The dashboard only reads
the store. It listens on --addr (loopback by default: the API has no
authentication, so bind other addresses only on trusted networks).
SIGINT or SIGTERM shuts it down gracefully.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runUI(cmd.Context(), store, addr)
		},
	}
	f := c.Flags()
	f.StringVar(&store, "store", "", "tracking store: SQLite file or postgres:// URL (default $DEEPGO_STORE or the user data directory)")
	f.StringVar(&addr, "addr", "127.0.0.1:5000", "address to listen on (host:port; port 0 picks a free one)")
	return c
}

// runUI serves the dashboard until ctx ends (main cancels it on SIGINT and
// SIGTERM), then shuts the server down, letting open requests finish.
func (a *app) runUI(ctx context.Context, storeURL, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageError{fmt.Errorf("--addr %q: want host:port (e.g. 127.0.0.1:5000): %v", addr, err)}
	}
	st, err := track.Open(storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	srv := &http.Server{
		Handler:           ui.Handler(st),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	fmt.Fprintf(a.stdout, "deepgo ui: store %s\ndeepgo ui: serving http://%s/ (Ctrl-C to stop)\n", st.URL(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ui: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), uiShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("ui: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("ui: shutting down: %w", err)
	}
	fmt.Fprintln(a.stdout, "deepgo ui: stopped")
	return nil
}
