package bus

import "github.com/whepcast/whepcast/pkg/tsframes"

// Announcement is the payload of media.NAME.tracks and the Tracks of a
// CatalogEntry: the tracks of the current PMT of an ingest session and which
// of them the bus carries.
type Announcement struct {
	Stream string           `json:"stream"`
	Epoch  uint64           `json:"epoch"`
	Tracks []tsframes.Track `json:"tracks"`
	// Video and Audio are the PIDs of the tracks published on the bus (the
	// first H.264 and the first Opus track), 0 when there is none.
	Video uint16 `json:"video_pid,omitempty"`
	Audio uint16 `json:"audio_pid,omitempty"`
}
