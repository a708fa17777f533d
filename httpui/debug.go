package httpui

import (
	"net/http"
	"net/http/pprof"
)

// debugRoutes serves the Go runtime's profiles under /debug/pprof/ to the
// owner only (the API token or a logged-in session), so that someone with a
// slow or growing plug can send one:
//
//	curl -H "Authorization: Bearer $(cat DIR/api.token)" \
//	     http://$(cat DIR/api.addr)/debug/pprof/profile?seconds=30 > cpu.pprof
//
// /debug/pprof/goroutine?debug=1 counts the goroutines, heap the memory.
func (s *Server) debugRoutes() {
	serve := func(h http.HandlerFunc) http.Handler {
		return s.api(func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil })
	}
	s.mux.Handle("GET /debug/pprof/", serve(pprof.Index)) // the named profiles: heap, goroutine, allocs, …
	s.mux.Handle("GET /debug/pprof/profile", serve(pprof.Profile))
	s.mux.Handle("GET /debug/pprof/trace", serve(pprof.Trace))
	s.mux.Handle("GET /debug/pprof/symbol", serve(pprof.Symbol))
}
