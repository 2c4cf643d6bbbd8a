package bus

import (
	"slices"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Announcement is the payload of media.NAME.tracks and the Tracks of a
// CatalogEntry: the tracks of the current PMT of a publication and which
// of them the bus carries.
type Announcement struct {
	Stream string           `json:"stream"`
	Epoch  uint64           `json:"epoch"`
	Tracks []tsframes.Track `json:"tracks"`
	// Video and Audio are the PIDs of the tracks published on the bus (the
	// first H.264 track, else the first H.265 track; the first Opus track),
	// 0 when there is none.
	Video uint16 `json:"video_pid,omitempty"`
	Audio uint16 `json:"audio_pid,omitempty"`
}

// NewAnnouncement builds the announcement of stream name in epoch from the
// tracks of a PMT, selecting as Video the first derived H.264 track (a
// transcoding stage's rendition of the source's video), else the first
// H.264 track, else the first H.265 track, and the first Opus track as
// Audio.
func NewAnnouncement(name string, epoch uint64, a tsframes.Announcement) Announcement {
	out := Announcement{Stream: name, Epoch: epoch, Tracks: slices.Clone(a.Tracks)}
	var h265, derived uint16
	for _, t := range a.Tracks {
		switch {
		case t.Codec == tsframes.CodecH264 && t.DerivedFrom != 0 && derived == 0:
			derived = t.PID
		case t.Codec == tsframes.CodecH264 && out.Video == 0:
			out.Video = t.PID
		case t.Codec == tsframes.CodecH265 && h265 == 0:
			h265 = t.PID
		case t.Codec == tsframes.CodecOpus && out.Audio == 0:
			out.Audio = t.PID
		}
	}
	if out.Video == 0 {
		out.Video = h265
	}
	if derived != 0 {
		out.Video = derived
	}
	return out
}

// Track returns the announced track with the given PID.
func (a Announcement) Track(pid uint16) (tsframes.Track, bool) {
	for _, t := range a.Tracks {
		if t.PID == pid {
			return t, true
		}
	}
	return tsframes.Track{}, false
}
