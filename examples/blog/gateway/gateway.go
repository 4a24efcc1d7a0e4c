// Package gateway is the blog's HTTP JSON API, a //molgen:main: it runs on
// the nodes that list "gateway" and reaches users and posts wherever they
// are placed.
//
//	POST /users            {"name": "ada"}                        -> user
//	GET  /users/{id}                                               -> user
//	POST /posts            {"author": "u1", "title": "...", ...}  -> post
//	GET  /posts                                                    -> [post]
//	GET  /posts/{id}                                               -> post (counts a view)
//
// It listens on $BLOG_ADDR (default 127.0.0.1:8080).
package gateway

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/examples/blog/posts"
	"github.com/molgen/molgen/examples/blog/users"
)

// Gateway serves the HTTP API until ctx is cancelled.
//
//molgen:main
func Gateway(ctx context.Context, p posts.Posts, u users.Users) error {
	addr := os.Getenv("BLOG_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: Handler(p, u), ReadHeaderTimeout: 5 * time.Second,
		// Requests run in the main's context (without its cancellation):
		// the calls they make are attributed to the gateway in traffic
		// profiles and traces.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	slog.Info("gateway listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// traced gives each HTTP request a span of its own, continuing the trace
// of a traceparent header when the request has one, so that the calls it
// makes across nodes form one trace. It uses OpenTelemetry's global
// provider, which node binaries configure from the OTEL_* variables (a
// no-op when tracing is off).
func traced(mux *http.ServeMux) http.Handler {
	tracer := otel.Tracer("github.com/molgen/molgen/examples/blog/gateway")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))}
		remote := otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(r.Header))
		ctx := r.Context()
		if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		} else {
			// Requests run in the main's context, whose root span would
			// otherwise hold every request: each is a trace of its own.
			opts = append(opts, trace.WithNewRoot())
		}
		name := r.Method
		if _, pattern := mux.Handler(r); pattern != "" {
			name = pattern
		}
		ctx, span := tracer.Start(ctx, name, opts...)
		defer span.End()
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Handler returns the API's routes.
func Handler(p posts.Posts, u users.Users) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if !decode(w, r, &in) {
			return
		}
		user, err := u.Create(r.Context(), in.Name)
		reply(w, http.StatusCreated, user, err)
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		user, err := u.Get(r.Context(), users.UserID(r.PathValue("id")))
		reply(w, http.StatusOK, user, err)
	})
	mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Author      users.UserID
			Title, Body string
			Tags        []string
		}
		if !decode(w, r, &in) {
			return
		}
		post, err := p.Publish(r.Context(), in.Author, in.Title, in.Body, in.Tags)
		reply(w, http.StatusCreated, post, err)
	})
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		list, err := p.List(r.Context())
		reply(w, http.StatusOK, list, err)
	})
	mux.HandleFunc("GET /posts/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, `{"error":"bad post id"}`, http.StatusBadRequest)
			return
		}
		view, err := p.Get(r.Context(), posts.PostID(id))
		if err == nil {
			err = p.View(r.Context(), posts.PostID(id))
		}
		reply(w, http.StatusOK, view, err)
	})
	return traced(mux)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return false
	}
	return true
}

// reply writes v, or err with a status chosen by its identity: errors.Is
// sees users.ErrNotFound even when users runs on another node.
func reply(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, status, v)
	case errors.Is(err, users.ErrNotFound), errors.Is(err, posts.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, users.ErrInvalidName), errors.Is(err, posts.ErrEmptyTitle):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
