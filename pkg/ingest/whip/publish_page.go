package whip

import (
	_ "embed"
	"net/http"
	"path"
	"strings"

	"github.com/whepcast/whepcast/pkg/bus"
)

// PublishPrefix is the path of the browser publishing page,
// /publish/{stream}.
const PublishPrefix = "/publish/"

//go:embed static/publish.html
var publishPage []byte

// PublishPage serves GET /publish/{stream}: a page that publishes the
// browser's camera and microphone to /whip/{stream} (the token, when one
// is needed, is typed in or given as ?token=; ?autostart=1 starts at once).
func PublishPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		stream, ok := strings.CutPrefix(r.URL.Path, PublishPrefix)
		if !ok || strings.Contains(stream, "/") {
			http.NotFound(w, r)
			return
		}
		if err := bus.ValidateName(stream); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(publishPage)
	})
}

// InFrontOf returns a handler that passes the requests of WHIP paths to h
// as they came and every other request to next (an http.ServeMux, say,
// which would redirect a path with dot segments to its cleaned form).
func (h *Handler) InFrontOf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, PathPrefix) || strings.HasPrefix(path.Clean(r.URL.Path)+"/", PathPrefix) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
