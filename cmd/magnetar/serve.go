package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
)

// roleListeners are the sockets of a replicated role's process (meta,
// bookie): its gRPC service and, if asked for, its HTTP endpoints
// (/healthz, /readyz, /metrics).
type roleListeners struct {
	grpc net.Listener
	http net.Listener // nil: no HTTP endpoints
}

// listenRole opens the role's listeners. A process listens before it opens
// any state, so a port in use fails at once.
func listenRole(grpcAddr, httpAddr string) (*roleListeners, error) {
	grpcLn, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	l := &roleListeners{grpc: grpcLn}
	if httpAddr != "" {
		if l.http, err = net.Listen("tcp", httpAddr); err != nil {
			_ = grpcLn.Close()
			return nil, fmt.Errorf("http listener: %w", err)
		}
	}
	return l, nil
}

// Close closes the listeners (serve has closed them already if it ran).
func (l *roleListeners) Close() {
	_ = l.grpc.Close()
	if l.http != nil {
		_ = l.http.Close()
	}
}

// serve runs gs, and h if there is an HTTP listener, until ctx is done (a
// signal: it returns nil) or a server fails (it returns why). ready is
// called once both serve, with the addresses they listen on (http is ""
// without HTTP), to log that the process is ready. On the way out it stops
// gs with Stop, not GracefulStop: streams such as watches never end on
// their own, and the role's Close, which the caller runs after, drains the
// calls in flight. serve returns once both servers have stopped.
func (l *roleListeners) serve(ctx context.Context, log *slog.Logger, gs *grpc.Server, h http.Handler, ready func(grpc, http string)) error {
	var wg sync.WaitGroup
	failed := make(chan error, 2)
	wg.Go(func() {
		if err := gs.Serve(l.grpc); err != nil {
			failed <- fmt.Errorf("grpc server: %w", err)
		}
	})
	var hs *http.Server
	httpShown := ""
	if l.http != nil {
		httpShown = l.http.Addr().String()
		hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := hs.Serve(l.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("http server: %w", err)
			}
		})
	}
	ready(l.grpc.Addr().String(), httpShown)
	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-failed:
	}
	gs.Stop()
	if hs != nil {
		_ = hs.Close()
	}
	wg.Wait()
	return err
}

// roleHTTP serves /healthz (the process runs), /readyz (a leader is known:
// leaderID returns non-empty) and /metrics (the Go and process collectors
// and the role's gauges).
func roleHTTP(leaderID func() string, gauges ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(gauges...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if leaderID() == "" {
			http.Error(w, "no leader known", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
