package bus

import "time"

// Catalog entry states.
const (
	StateLive  = "live"
	StateEnded = "ended"
)

// IngestStats are the counters of an ingest session shown in the catalog.
type IngestStats struct {
	Bytes        uint64 `json:"bytes"`
	Frames       uint64 `json:"frames"`
	Keyframes    uint64 `json:"keyframes"`
	DecodeErrors uint64 `json:"decode_errors"`
	PublishErrs  uint64 `json:"publish_errors"`
}

// CatalogEntry is the value of a stream's key in CatalogBucket.
type CatalogEntry struct {
	Stream  string       `json:"stream"`
	Epoch   uint64       `json:"epoch"`
	State   string       `json:"state"`
	Started time.Time    `json:"started"`
	Updated time.Time    `json:"updated"`
	Tracks  Announcement `json:"tracks"`
	Stats   IngestStats  `json:"stats"`
}
