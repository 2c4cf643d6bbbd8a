package player

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/whepcast/whepcast/pkg/bus"
)

//go:embed templates
var templateFiles embed.FS

var pages = template.Must(template.ParseFS(templateFiles, "templates/*.html"))

// index serves the list of live streams.
func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	h.render(w, "index.html", struct{ Streams []StreamView }{liveViews(h.streams)})
}

// list serves the live streams as JSON.
func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(liveViews(h.streams))
	if err != nil {
		h.logger.Error("encoding the stream list", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// play serves the player page of one stream.
func (h *handler) play(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if err := bus.ValidateName(name); err != nil {
		h.notFound(w, r)
		return
	}
	h.render(w, "play.html", struct{ Stream string }{name})
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "404 page not found", http.StatusNotFound)
}

func (h *handler) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.logger.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
