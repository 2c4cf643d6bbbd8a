package whep

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/whepcast/whepcast/pkg/relay"
)

// SessionInfo describes one session in GET /sessions.
type SessionInfo struct {
	ID      string            `json:"id"`
	Stream  string            `json:"stream"`
	Epoch   uint64            `json:"epoch"`
	Created time.Time         `json:"created"`
	State   string            `json:"state"`
	Stats   relay.ViewerStats `json:"stats"`
}

// Sessions returns this node's sessions, oldest first.
func (s *Server) Sessions() []SessionInfo {
	list := s.sessions.list()
	out := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		out = append(out, SessionInfo{
			ID:      ss.id,
			Stream:  ss.stream,
			Epoch:   ss.epoch,
			Created: ss.created.UTC(),
			State:   ss.state(),
			Stats:   ss.viewer.Stats(),
		})
	}
	return out
}

// SessionsHandler serves GET (and HEAD) with the JSON array of Sessions. It
// needs one of Config.AdminTokens as Bearer; without admin tokens it serves
// loopback clients only (with a token when Config.Tokens are set), 401
// otherwise.
func (s *Server) SessionsHandler() http.Handler {
	auth := newAdminAuth(s.cfg.AdminTokens, s.tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(r.Method, "GET, HEAD").write(w)
			return
		}
		if err := auth.check(r); err != nil {
			errorResponse(err).write(w)
			return
		}
		body, err := json.MarshalIndent(s.Sessions(), "", "  ")
		if err != nil {
			errorResponse(err).write(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}
