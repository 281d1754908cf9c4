package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// Serve serves the REST API on httpLn, and the gRPC API on grpcLn when it
// is not nil and GRPCServe is set, until ctx is cancelled. It then shuts
// down gracefully: readiness turns false, the listeners close, requests
// already accepted finish (within Options.ShutdownTimeout), queued batches
// drain and the models are unloaded. It returns nil after a clean shutdown,
// or the first serving error.
func (s *Server) Serve(ctx context.Context, httpLn, grpcLn net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	var fs *fastServer
	if s.fastPathOK() {
		// Infer requests are answered on the fast path; net/http serves
		// the connections handed to it.
		fs = newFastServer(s, httpLn, hs.IdleTimeout, hs.ReadHeaderTimeout)
		httpLn = fs
	}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(httpLn) }()
	grpcCtx, stopGRPC := context.WithCancel(context.Background())
	defer stopGRPC()
	grpcDone := make(chan error, 1)
	var grpcErrc chan error // nil (never ready) without gRPC
	if grpcLn != nil && GRPCServe != nil {
		grpcErrc = make(chan error, 1)
		go func() {
			err := GRPCServe(grpcCtx, s, grpcLn)
			grpcErrc <- err
			grpcDone <- err
		}()
	} else {
		grpcDone <- nil
		if grpcLn != nil {
			grpcLn.Close()
		}
	}
	s.log.Info("serving", "http", httpLn.Addr().String(), "grpc", addrOf(grpcLn), "models", len(s.Models()))
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	case serveErr = <-grpcErrc:
	}
	s.log.Info("shutting down: draining in-flight requests")
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	ferrc := make(chan error, 1)
	if fs != nil {
		go func() { ferrc <- fs.shutdown(sctx) }()
	} else {
		ferrc <- nil
	}
	herr := hs.Shutdown(sctx)
	if ferr := <-ferrc; herr == nil {
		herr = ferr
	}
	stopGRPC()
	gerr := <-grpcDone
	s.Close()
	s.log.Info("shut down")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if herr != nil {
		return herr
	}
	return gerr
}

// fastPathOK reports whether Serve answers infer requests on the fast path
// (see fasthttp.go): not with Options.NetHTTPOnly, nor when a handler added
// with Handle could match an infer path.
func (s *Server) fastPathOK() bool {
	if s.opts.NetHTTPOnly {
		return false
	}
	for _, r := range s.handlers {
		if strings.Contains(r.pattern, "/infer") || strings.Contains(r.pattern, "{") && strings.Contains(r.pattern, "/v2/") {
			return false
		}
	}
	return true
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
