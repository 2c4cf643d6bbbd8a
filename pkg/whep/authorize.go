package whep

import "net/http"

// Authorize checks r's bearer token as the WHEP endpoints do (Authorization:
// Bearer, or ?token=): nil when access is open or the token is accepted, an
// error otherwise. Other endpoints that play the same streams (clip
// exports) use it.
func (s *Server) Authorize(r *http.Request) error { return s.tokens.check(r) }
