package player

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// StreamView is one catalog entry as the pages and GET /streams show it.
type StreamView struct {
	Stream string `json:"stream"`
	State  string `json:"state"`
	// Epoch is decimal text: it exceeds the integers JavaScript holds exactly.
	Epoch   string    `json:"epoch"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Play is the player page relative to the list page ("play/NAME"), empty
	// when the name is not a valid stream name.
	Play   string      `json:"play,omitempty"`
	Tracks []TrackView `json:"tracks"`
	// Playable is true when at least one track is carried over WebRTC.
	Playable bool `json:"playable"`
	// Notes say what cannot be played and why ("AAC audio cannot be played
	// over WebRTC").
	Notes []string        `json:"notes,omitempty"`
	Stats bus.IngestStats `json:"stats"`
}

// TrackView is one track of a StreamView.
type TrackView struct {
	PID   uint16 `json:"pid"`
	Kind  string `json:"kind"`
	Codec string `json:"codec"`
	// Detail is the H.264 profile-level-id or the audio channels and rate.
	Detail string `json:"detail,omitempty"`
	// Carried is true for the tracks sent to WebRTC viewers.
	Carried bool `json:"carried"`
}

// viewOf builds the StreamView of a catalog entry.
func viewOf(e bus.CatalogEntry) StreamView {
	v := StreamView{
		Stream:  e.Stream,
		State:   e.State,
		Epoch:   strconv.FormatUint(e.Epoch, 10),
		Started: e.Started,
		Updated: e.Updated,
		Tracks:  []TrackView{},
		Stats:   e.Stats,
	}
	if bus.ValidateName(e.Stream) == nil {
		v.Play = "play/" + url.PathEscape(e.Stream)
	}
	carried := carriedPIDs(e.Tracks)
	for _, t := range e.Tracks.Tracks {
		tv := TrackView{PID: t.PID, Kind: string(t.Kind), Codec: string(t.Codec), Detail: trackDetail(t), Carried: carried[t.PID]}
		v.Tracks = append(v.Tracks, tv)
		if tv.Carried {
			v.Playable = true
			continue
		}
		switch {
		case t.Kind != tsframes.KindVideo && t.Kind != tsframes.KindAudio:
			// Data tracks are never played; nothing to say.
		case !t.WebRTC:
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s cannot be played over WebRTC", codecName(t.Codec), t.Kind))
		default:
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s (PID %d) is not carried: only the first %s track is", codecName(t.Codec), t.Kind, t.PID, t.Kind))
		}
	}
	switch {
	case len(e.Tracks.Tracks) == 0:
		v.Notes = []string{"Waiting for the stream's tracks"}
	case !v.Playable:
		v.Notes = append([]string{"Not playable: the stream has no H.264 video or Opus audio"}, v.Notes...)
	}
	return v
}

// carriedPIDs returns the PIDs sent to viewers: the announcement's Video and
// Audio PIDs, or, when the announcement names neither, the first WebRTC
// track of each kind.
func carriedPIDs(a bus.Announcement) map[uint16]bool {
	m := map[uint16]bool{}
	if a.Video != 0 || a.Audio != 0 {
		for _, p := range []uint16{a.Video, a.Audio} {
			if p != 0 {
				m[p] = true
			}
		}
		return m
	}
	seen := map[tsframes.Kind]bool{}
	for _, t := range a.Tracks {
		if t.WebRTC && !seen[t.Kind] && (t.Kind == tsframes.KindVideo || t.Kind == tsframes.KindAudio) {
			seen[t.Kind] = true
			m[t.PID] = true
		}
	}
	return m
}

func trackDetail(t tsframes.Track) string {
	switch {
	case t.ProfileLevelID != "":
		return t.ProfileLevelID
	case t.Channels > 0 && t.SampleRate > 0:
		return fmt.Sprintf("%d ch, %d Hz", t.Channels, t.SampleRate)
	case t.Channels > 0:
		return fmt.Sprintf("%d ch", t.Channels)
	case t.SampleRate > 0:
		return fmt.Sprintf("%d Hz", t.SampleRate)
	}
	return ""
}

func codecName(c tsframes.Codec) string {
	if c == "" {
		return string(tsframes.CodecUnknown)
	}
	return string(c)
}

// liveViews returns the views of the live entries.
func liveViews(l Lister) []StreamView {
	entries := l.Live()
	out := make([]StreamView, 0, len(entries))
	for _, e := range entries {
		out = append(out, viewOf(e))
	}
	return out
}
