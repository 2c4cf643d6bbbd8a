package player

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// HeartbeatInterval is how often GET /streams/events writes a comment line
// when the catalog is quiet, so that proxies keep the connection open.
const HeartbeatInterval = 20 * time.Second

// events streams catalog changes as server-sent events: one "snapshot" of
// the live streams on connect, then one "entry" per change.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// An events stream outlives any server write timeout; not every
	// ResponseWriter supports deadlines, which is fine.
	_ = rc.SetWriteDeadline(time.Time{})

	// Subscribe before taking the snapshot so that no change falls between.
	changes, stop := h.streams.Subscribe()
	defer stop()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	if err := writeEvent(w, "snapshot", h.liveViews(r.Context())); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		h.logger.Debug("events: cannot flush", "err", err)
		return
	}

	heartbeat := time.NewTicker(HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case e, ok := <-changes:
			if !ok {
				return
			}
			if err := writeEvent(w, "entry", h.entryView(r.Context(), e)); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeEvent writes one server-sent event whose data is v as JSON (one line:
// encoding/json escapes newlines inside strings).
func writeEvent(w http.ResponseWriter, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", name, err)
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return fmt.Errorf("writing %s event: %w", name, err)
	}
	return nil
}
