package player

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

//go:embed templates
var templateFiles embed.FS

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"bitrate": formatBitrate,
	"ago":     formatSeconds,
	"deref":   func(p *int) int { return *p },
}).ParseFS(templateFiles, "templates/*.html"))

// formatBitrate writes bits per second for people: "850 kb/s", "6.2 Mb/s".
func formatBitrate(bps int64) string {
	switch {
	case bps >= 1_000_000:
		return strconv.FormatFloat(float64(bps)/1e6, 'f', 1, 64) + " Mb/s"
	case bps >= 1000:
		return strconv.FormatInt(bps/1000, 10) + " kb/s"
	}
	return strconv.FormatInt(bps, 10) + " b/s"
}

// formatSeconds writes a duration in seconds as "45 s", "12 min" or
// "2 h 05 min".
func formatSeconds(s float64) string {
	d := time.Duration(s) * time.Second
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

// index serves the list of live streams.
func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	h.render(w, "index.html", struct{ Streams []StreamView }{h.liveViews(r.Context())})
}

// list serves the live streams as JSON.
func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	h.writeJSON(w, h.liveViews(r.Context()))
}

// stream serves one stream's view as JSON (the player's timeline reads its
// retention window): 404 for a stream that is not live or a bad name.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if bus.ValidateName(name) != nil {
		http.Error(w, "invalid stream name", http.StatusNotFound)
		return
	}
	for _, e := range h.streams.Live() {
		if e.Stream == name {
			h.writeJSON(w, h.entryView(r.Context(), e))
			return
		}
	}
	http.Error(w, "stream "+name+" is not live", http.StatusNotFound)
}

func (h *handler) writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
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
