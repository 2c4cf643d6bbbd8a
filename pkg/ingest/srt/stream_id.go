package srt

import (
	"fmt"
	"strings"
)

// maxStreamIDSize bounds the streamid parsed (SRT itself carries at most
// 512 bytes).
const maxStreamIDSize = 512

// request is what a caller's streamid asks for.
type request struct {
	stream string
	token  string // empty when none was given
}

// parseStreamID reads the two streamid forms a publisher may send:
//
//	publish:{stream}                  MediaMTX's convention
//	#!::r={stream},m=publish          SRT's access-control syntax
//
// In both, the stream may end with "?token=T", as an RTMP stream key. The
// access-control form must name the resource and the publish mode; other
// keys (u, s, t, h) are ignored. Errors wrap errStreamID or errMode.
func parseStreamID(id string) (request, error) {
	if len(id) > maxStreamIDSize {
		return request{}, fmt.Errorf("%w: %d bytes, more than %d", errStreamID, len(id), maxStreamIDSize)
	}
	var resource string
	switch {
	case strings.HasPrefix(id, "#!::"):
		var mode string
		var haveR, haveM bool
		for kv := range strings.SplitSeq(id[len("#!::"):], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return request{}, fmt.Errorf("%w: %q is not key=value", errStreamID, kv)
			}
			switch k {
			case "r":
				resource, haveR = v, true
			case "m":
				mode, haveM = v, true
			}
		}
		if !haveR {
			return request{}, fmt.Errorf("%w: no resource (r=)", errStreamID)
		}
		if !haveM || mode != "publish" {
			return request{}, fmt.Errorf("%w: m=%q (only m=publish is served)", errMode, mode)
		}
	case strings.HasPrefix(id, "publish:"):
		resource = id[len("publish:"):]
	case strings.HasPrefix(id, "read:"), strings.HasPrefix(id, "request:"):
		return request{}, fmt.Errorf("%w: %q (only publish is served)", errMode, id)
	default:
		return request{}, fmt.Errorf("%w: %q: want publish:{stream} or #!::r={stream},m=publish", errStreamID, id)
	}
	stream, query, hasQuery := strings.Cut(resource, "?")
	req := request{stream: stream}
	if hasQuery {
		for kv := range strings.SplitSeq(query, "&") {
			if v, ok := strings.CutPrefix(kv, "token="); ok {
				req.token = v
			}
		}
	}
	if req.stream == "" {
		return request{}, fmt.Errorf("%w: no stream name", errStreamID)
	}
	return req, nil
}
