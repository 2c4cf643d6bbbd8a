package whep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// sessionRequest is a PATCH or DELETE of a session, as received over HTTP
// or forwarded by another node. Token is the caller's credential (see
// credential): the node owning the session authorizes the request with its
// own tokens, whichever node received it.
type sessionRequest struct {
	Method      string   `json:"method"`
	Stream      string   `json:"stream"`
	Session     string   `json:"session"`
	Token       string   `json:"token,omitempty"`
	ContentType string   `json:"content_type,omitempty"`
	IfMatch     []string `json:"if_match,omitempty"`
	Body        []byte   `json:"body,omitempty"`
}

// sessionOp performs req on a session of this node once this node's tokens
// accept req.Token (401 otherwise).
func (s *Server) sessionOp(ctx context.Context, req sessionRequest) response {
	if err := s.tokens.checkCredential(req.Token); err != nil {
		return errorResponse(err)
	}
	resp, err := s.doSessionOp(ctx, req)
	if err != nil {
		st, _ := statusOf(err)
		level := slog.LevelDebug
		if st >= 500 {
			level = slog.LevelWarn
		}
		s.logger.Log(ctx, level, "session request failed", "method", req.Method, "stream", req.Stream,
			"session", req.Session, "status", st, "err", err)
		return errorResponse(err)
	}
	return resp
}

func (s *Server) doSessionOp(ctx context.Context, req sessionRequest) (response, error) {
	ss := s.sessions.get(req.Stream, req.Session)
	if ss == nil {
		return response{}, fmt.Errorf("%w: %q", errSessionNotFound, req.Session)
	}
	switch req.Method {
	case http.MethodDelete:
		ss.close(reasonDelete)
		return response{Status: http.StatusOK}, nil
	case http.MethodPatch:
		return ss.patch(ctx, req)
	case opSeek:
		return ss.seek(ctx, req)
	default:
		return response{}, fmt.Errorf("%w: %s", errMethodNotAllowed, req.Method)
	}
}

// patch applies a trickle-ice-sdpfrag to the session: trickle or restart.
func (ss *session) patch(ctx context.Context, req sessionRequest) (response, error) {
	if err := checkContentTypeValue(req.ContentType, sdpfrag.MediaType); err != nil {
		return response{}, err
	}
	if len(req.Body) > sdpfrag.MaxSize {
		return response{}, fmt.Errorf("%w: fragment of %d bytes, limit %d", errTooLarge, len(req.Body), sdpfrag.MaxSize)
	}
	frag, err := sdpfrag.Parse(req.Body)
	if err != nil {
		return response{}, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	for i, m := range frag.Media {
		if m.Kind != "audio" && m.Kind != "video" {
			return response{}, fmt.Errorf("%w: m= section %d is %q; this session has only audio and video", errUnprocessable, i+1, m.Kind)
		}
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	select {
	case <-ss.done:
		return response{}, fmt.Errorf("%w: %q", errSessionNotFound, ss.id)
	default:
	}
	ufrag, pwd := frag.Credentials()
	restart := ufrag != "" && (ufrag != ss.remoteUfrag || pwd != ss.remotePwd)
	if err := ss.checkMIDs(frag, ufrag != "" && !restart); err != nil {
		return response{}, err
	}
	present, match := ifMatch(req.IfMatch, ss.etag)
	switch {
	case present && !match:
		return response{}, fmt.Errorf("%w: have %s", errPreconditionFailed, ss.etag)
	case !present && restart:
		return response{}, errPreconditionNeeded
	}
	if restart {
		resp, err := ss.restart(ctx, frag, ufrag, pwd)
		if err != nil {
			select {
			case <-ss.done: // closed meanwhile (DELETE, shutdown)
				return response{}, fmt.Errorf("%w: %q: %w", errSessionNotFound, ss.id, err)
			default:
			}
		}
		return resp, err
	}
	ss.addCandidates(frag)
	return response{Status: http.StatusNoContent}, nil
}

// checkMIDs checks the mids of the fragment's sections. A session has one
// transport (max-bundle), so a section whose mid is missing, unknown or the
// string "null" (the medooze client in Firefox) is about that transport: its
// candidates apply when the fragment carries the session's current ICE
// credentials (sameICE). An unknown mid with other credentials, or none, is
// a real mismatch: errUnprocessable. ss.mu is held.
func (ss *session) checkMIDs(frag *sdpfrag.Fragment, sameICE bool) error {
	for i, m := range frag.Media {
		if m.MID == "" {
			continue
		}
		if _, ok := ss.mids[m.MID]; ok {
			continue
		}
		if !sameICE {
			return fmt.Errorf("%w: m= section %d has mid %q, which is not in this session", errUnprocessable, i+1, m.MID)
		}
		ss.logger.Debug("trickle: section with an unknown mid applied to the session's transport (credentials match)",
			"section", i+1, "mid", m.MID)
	}
	return nil
}

func checkContentTypeValue(ct, want string) error {
	r := http.Request{Header: http.Header{"Content-Type": {ct}}}
	return checkContentType(&r, want)
}

// addCandidates adds the fragment's candidates of the current ICE
// generation. Candidates the ICE agent cannot use are ignored.
func (ss *session) addCandidates(frag *sdpfrag.Fragment) {
	end := frag.EndOfCandidates
	for _, m := range frag.Media {
		end = end || m.EndOfCandidates
		for i := range m.Candidates {
			c := &m.Candidates[i]
			if u := c.Ufrag(); u != "" && u != ss.remoteUfrag {
				continue
			}
			if err := ss.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.String()}); err != nil {
				ss.logger.Debug("ignoring remote candidate", "candidate", c.String(), "err", err)
			}
		}
	}
	if end {
		if err := ss.pc.AddICECandidate(webrtc.ICECandidateInit{}); err != nil {
			ss.logger.Debug("end of candidates", "err", err)
		}
	}
}

// restart performs an ICE restart with the client's new credentials and
// answers the server's new credentials and candidates. ss.mu is held.
func (ss *session) restart(ctx context.Context, frag *sdpfrag.Fragment, ufrag, pwd string) (response, error) {
	offerSDP, err := restartOffer(ss.pc.RemoteDescription(), ufrag, pwd)
	if err != nil {
		return response{}, err
	}
	if err := ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return response{}, fmt.Errorf("ice restart: set offer: %w", err)
	}
	ss.remoteUfrag, ss.remotePwd = ufrag, pwd
	answer, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return response{}, fmt.Errorf("ice restart: create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(answer); err != nil {
		return response{}, fmt.Errorf("ice restart: set answer: %w", err)
	}
	if err := waitGathered(ctx, gathered, ss.gatherTimeout, ss.logger); err != nil {
		return response{}, err
	}
	ss.addCandidates(frag)
	body, err := ss.restartFragment(ss.pc.LocalDescription().SDP)
	if err != nil {
		return response{}, err
	}
	ss.etag = newETag()
	ss.logger.Info("ICE restarted")
	h := http.Header{}
	h.Set("Content-Type", sdpfrag.MediaType)
	h.Set("ETag", ss.etag)
	return response{Status: http.StatusOK, Header: h, Body: body}, nil
}

// restartOffer returns the current remote offer with new ICE credentials
// and without candidates: the offer an ICE restart implies.
func restartOffer(cur *webrtc.SessionDescription, ufrag, pwd string) (string, error) {
	if cur == nil {
		return "", errors.New("ice restart: no remote description")
	}
	sd, err := parseSDP(cur.SDP)
	if err != nil {
		return "", fmt.Errorf("ice restart: %w", err)
	}
	sd.Origin.SessionVersion++
	sd.Attributes = replaceICE(sd.Attributes, ufrag, pwd, false)
	for _, md := range sd.MediaDescriptions {
		md.Attributes = replaceICE(md.Attributes, ufrag, pwd, true)
	}
	b, err := sd.Marshal()
	if err != nil {
		return "", fmt.Errorf("ice restart: %w", err)
	}
	return string(b), nil
}

// replaceICE sets the credentials in attrs (adding them at media level when
// absent) and drops candidates.
func replaceICE(attrs []sdp.Attribute, ufrag, pwd string, media bool) []sdp.Attribute {
	out := attrs[:0]
	seen := false
	for _, a := range attrs {
		switch a.Key {
		case "candidate", "end-of-candidates":
			continue
		case "ice-ufrag":
			a.Value, seen = ufrag, true
		case "ice-pwd":
			a.Value = pwd
		}
		out = append(out, a)
	}
	if media && !seen {
		out = append(out, sdp.Attribute{Key: "ice-ufrag", Value: ufrag}, sdp.Attribute{Key: "ice-pwd", Value: pwd})
	}
	return out
}

// restartFragment builds the answer to an ICE restart from the new local
// description: the server's ufrag, pwd and candidates, on the bundle's
// first accepted section.
func (ss *session) restartFragment(local string) ([]byte, error) {
	sd, err := parseSDP(local)
	if err != nil {
		return nil, fmt.Errorf("ice restart: local description: %w", err)
	}
	ufrag, pwd := iceCredentials(sd)
	f := &sdpfrag.Fragment{ICEUfrag: ufrag, ICEPwd: pwd}
	tag := bundleTag(sd)
	if tag == nil {
		return nil, errors.New("ice restart: the local description has no accepted section")
	}
	mid, _ := tag.Attribute("mid")
	m := sdpfrag.Media{Kind: tag.MediaName.Media, Port: 9, Proto: strings.Join(tag.MediaName.Protos, "/"),
		Formats: tag.MediaName.Formats, MID: mid, EndOfCandidates: true}
	for _, md := range sd.MediaDescriptions { // pion may write them into a rejected first section
		for _, a := range md.Attributes {
			if a.Key != "candidate" {
				continue
			}
			c, err := sdpfrag.ParseCandidate(a.Value)
			if err != nil {
				ss.logger.Warn("skipping local candidate", "candidate", a.Value, "err", err)
				continue
			}
			m.Candidates = append(m.Candidates, c)
		}
	}
	f.Media = []sdpfrag.Media{m}
	return f.Marshal()
}

// parseSDP parses an SDP description.
func parseSDP(s string) (*sdp.SessionDescription, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		return nil, err
	}
	return &sd, nil
}

// iceCredentials returns the session-level ICE credentials of sd, or else
// those of its first media section.
func iceCredentials(sd *sdp.SessionDescription) (ufrag, pwd string) {
	ufrag, _ = sd.Attribute("ice-ufrag")
	pwd, _ = sd.Attribute("ice-pwd")
	if ufrag != "" {
		return ufrag, pwd
	}
	for _, md := range sd.MediaDescriptions {
		if u, ok := md.Attribute("ice-ufrag"); ok {
			p, _ := md.Attribute("ice-pwd")
			return u, p
		}
	}
	return "", ""
}
