package nodemain

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/molgen/molgen/runtime"
)

// probeHandler serves a node's /metrics, /healthz and /readyz.
//
//   - /metrics: the node's metrics in Prometheus text format;
//   - /healthz: liveness: 200 unless the process is wedged; never
//     depends on Kafka;
//   - /readyz: 200 once the node has started, every hosted service has
//     been assigned its partitions (or knows that other instances hold
//     them) and the reply topic is read, while Kafka answers; 503 before
//     that, within seconds of Kafka becoming unreachable or hung, and
//     while the node drains. A 503 says why in its body.
func probeHandler(n *runtime.Node, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	probe := func(check func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(err.Error() + "\n"))
				return
			}
			w.Write([]byte("ok\n"))
		}
	}
	mux.Handle("GET /healthz", probe(n.Healthy))
	mux.Handle("GET /readyz", probe(n.Ready))
	return mux
}

// httpServer is a node's HTTP endpoint (-http).
type httpServer struct {
	srv  *http.Server
	done chan struct{}
}

// serveHTTP listens on addr and serves h until stop.
func serveHTTP(addr string, h http.Handler, log *slog.Logger) (*httpServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &httpServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	log.Info("serving HTTP: /metrics, /healthz, /readyz", "addr", l.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving HTTP", "err", err)
		}
	}()
	return s, nil
}

// stop ends the endpoint, letting requests in progress finish briefly.
func (s *httpServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	<-s.done
}
