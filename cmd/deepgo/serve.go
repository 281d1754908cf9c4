package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/serve"
	"github.com/deepgo/deepgo/track"
)

// serveFlags lets other files of this command add flags to `deepgo serve`
// (drift monitoring, web page); they append in an init function.
var serveFlags []func(fs *pflag.FlagSet)

// serveSetup runs after the models are loaded and before the server
// starts; other files append in an init function to mount handlers
// (Server.Handle), register metrics (Server.Registry) or observe batches
// (Server.Observe). ctx ends when the server shuts down.
var serveSetup []func(ctx context.Context, s *serve.Server) error

// serveOptions are the flags of `deepgo serve`.
type serveOptions struct {
	models    []string
	registry  []string
	store     string
	host      string
	httpPort  int
	grpcPort  int
	maxBatch  int
	maxDelay  time.Duration
	queue     int
	instances int
	netHTTP   bool
	maxBody   int64
	timeout   time.Duration
	shutdown  time.Duration
	logFormat string
	logLevel  string
}

func (a *app) serveCmd() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve --model DIR [--model DIR ...]",
		Short: "Serve model packages over the Open Inference Protocol (REST, gRPC) with metrics",
		Long: `Serve model packages over the Open Inference Protocol v2 (KServe/Triton "v2"):
REST on --http-port (with the binary tensor extension, TF-Serving's
/v1/models/M:predict and Prometheus /metrics) and gRPC on --grpc-port.

--model takes a package directory (holding model.json), a directory of
numbered version subdirectories (the highest is served), or NAME=DIR to
choose the model name (default: the package's name, else the directory
name). --registry NAME@ALIAS serves the registered version an alias points
at, from the tracking store (--store, default $DEEPGO_STORE or the user's
data directory). Requests arriving together run as one batch (--max-batch
rows, waiting at most --max-delay); a full queue (--queue) answers 503.
SIGINT or SIGTERM drains in-flight requests and exits.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runServe(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&o.models, "model", nil, "model package directory, or NAME=DIR (repeatable)")
	f.StringArrayVar(&o.registry, "registry", nil, "registered model alias NAME@ALIAS (or NAME@VERSION) to serve (repeatable)")
	f.StringVar(&o.store, "store", "", "tracking store URL for --registry (default $DEEPGO_STORE or the user data directory)")
	f.StringVar(&o.host, "host", "0.0.0.0", "address to listen on")
	f.IntVar(&o.httpPort, "http-port", 8000, "REST port (/v2, /v1, /metrics)")
	f.IntVar(&o.grpcPort, "grpc-port", 8001, "gRPC port (-1 disables gRPC)")
	f.IntVar(&o.maxBatch, "max-batch", 16, "largest batch in rows")
	f.DurationVar(&o.maxDelay, "max-delay", 2*time.Millisecond, "longest a request waits for others to batch with")
	f.IntVar(&o.queue, "queue", 1024, "requests a model queues before answering 503")
	f.IntVar(&o.instances, "instances", 2, "batches of one model run at the same time")
	f.BoolVar(&o.netHTTP, "net-http-only", false, "answer every REST request with net/http (no infer fast path)")
	f.Int64Var(&o.maxBody, "max-body", 64<<20, "largest request body in bytes")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	f.DurationVar(&o.shutdown, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	f.StringVar(&o.logFormat, "log-format", "text", "request log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	for _, add := range serveFlags {
		add(f)
	}
	return c
}

func (a *app) runServe(ctx context.Context, o serveOptions) error {
	if len(o.models) == 0 && len(o.registry) == 0 {
		return usageError{errors.New("serve needs at least one --model DIR or --registry NAME@ALIAS")}
	}
	if o.httpPort < 0 || o.httpPort > 65535 || o.grpcPort < -1 || o.grpcPort > 65535 {
		return usageError{errors.New("ports must be in 0..65535 (--grpc-port -1 disables gRPC)")}
	}
	if o.maxBatch < 1 || o.queue < 1 || o.instances < 1 || o.maxBody < 1 {
		return usageError{errors.New("--max-batch, --queue, --instances and --max-body must be positive")}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level: %v", err)}
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch o.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(a.stderr, hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(a.stderr, hopts))
	default:
		return usageError{fmt.Errorf("--log-format must be text or json, got %q", o.logFormat)}
	}
	serve.Version = version
	delay := o.maxDelay
	if delay == 0 {
		delay = -1 // no waiting
	}
	s := serve.New(serve.Options{
		MaxBatch: o.maxBatch, MaxDelay: delay, QueueSize: o.queue, Instances: o.instances, NetHTTPOnly: o.netHTTP,
		MaxBodyBytes: o.maxBody, RequestTimeout: o.timeout, ShutdownTimeout: o.shutdown, Logger: logger,
	})
	defer s.Close()
	for _, spec := range o.models {
		name, dir := modelSpec(spec)
		if name == "" {
			return usageError{fmt.Errorf("--model %q: empty name or directory", spec)}
		}
		if err := s.Repository().Load(name, dir); err != nil {
			return err
		}
	}
	if err := loadRegistry(ctx, s, o); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, setup := range serveSetup {
		if err := setup(sctx, s); err != nil {
			return err
		}
	}
	httpLn, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.httpPort)))
	if err != nil {
		return err
	}
	var grpcLn net.Listener
	if o.grpcPort >= 0 && serve.GRPCServe != nil {
		if grpcLn, err = net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.grpcPort))); err != nil {
			httpLn.Close()
			return err
		}
	}
	for _, m := range s.Models() {
		fmt.Fprintf(a.stdout, "serving %s version %s\n", m.Name, m.Version)
	}
	fmt.Fprintf(a.stdout, "REST on http://%s (metrics at /metrics)\n", httpLn.Addr())
	if grpcLn != nil {
		fmt.Fprintf(a.stdout, "gRPC on %s\n", grpcLn.Addr())
	}
	return s.Serve(ctx, httpLn, grpcLn)
}

// modelSpec splits NAME=DIR; without a name, the package's name is used,
// else the directory's base name.
func modelSpec(spec string) (name, dir string) {
	if i := strings.IndexByte(spec, '='); i > 0 && !strings.ContainsAny(spec[:i], `/\`) {
		return spec[:i], spec[i+1:]
	}
	dir = spec
	if m, err := model.ReadManifest(dir); err == nil && m.Name != "" && !strings.ContainsAny(m.Name, "/?#%: ") {
		return m.Name, dir
	}
	base := filepath.Base(filepath.Clean(dir))
	if _, err := strconv.Atoi(base); err == nil { // a version directory: name it after its parent
		base = filepath.Base(filepath.Dir(filepath.Clean(dir)))
	}
	return base, dir
}

// loadRegistry serves the --registry NAME@ALIAS entries from the tracking
// store, under NAME at the registered version.
func loadRegistry(ctx context.Context, s *serve.Server, o serveOptions) error {
	if len(o.registry) == 0 {
		return nil
	}
	for _, ref := range o.registry {
		if name, alias, ok := strings.Cut(ref, "@"); !ok || name == "" || alias == "" {
			return usageError{fmt.Errorf("--registry %q: want NAME@ALIAS or NAME@VERSION", ref)}
		}
	}
	st, err := track.Open(o.store)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, ref := range o.registry {
		name, alias, _ := strings.Cut(ref, "@")
		var mv track.ModelVersion
		if n, err := strconv.Atoi(alias); err == nil {
			mv, err = st.GetModelVersion(ctx, name, n)
			if err != nil {
				return fmt.Errorf("--registry %s: %v", ref, err)
			}
		} else if mv, err = st.ResolveAlias(ctx, name, alias); err != nil {
			return fmt.Errorf("--registry %s: %v", ref, err)
		}
		pkg, err := model.Load(mv.Source)
		if err != nil {
			return fmt.Errorf("--registry %s: %v", ref, err)
		}
		if err := s.Repository().LoadPackage(name, int64(mv.Version), pkg); err != nil {
			return fmt.Errorf("--registry %s: %v", ref, err)
		}
	}
	return nil
}
