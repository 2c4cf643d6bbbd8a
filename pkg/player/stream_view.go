package player

import (
	"context"
	"errors"
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
	// Protocol is the ingest protocol (http, udp, srt, rtmp), empty when
	// the broker does not tell.
	Protocol string `json:"protocol,omitempty"`
	// Bitrate is the ingest's average bitrate since the publication
	// started, in bits per second (0 before its first catalog refresh).
	Bitrate int64 `json:"bitrate"`
	// Health is "ok", "errors" (the ingest counted decode or publish
	// errors: see Stats) or "stale" (the broker has not refreshed the
	// entry for StaleAfter); HealthNote says why when not ok.
	Health     string `json:"health"`
	HealthNote string `json:"health_note,omitempty"`
	// Viewers is the number of WHEP sessions of the stream summed over the
	// ViewerNodes nodes that answered; nil when unknown (no ViewerCounter,
	// or no answer).
	Viewers     *int `json:"viewers,omitempty"`
	ViewerNodes int  `json:"viewer_nodes,omitempty"`
	// DVRFrom is the store time of the oldest keyframe the bus still holds:
	// the stream can be played from then on (?start= of WHEP, the player's
	// timeline); DVRSeconds is how far back that is. Both are absent when
	// unknown (no Retention).
	DVRFrom    *time.Time `json:"dvr_from,omitempty"`
	DVRSeconds float64    `json:"dvr_seconds,omitempty"`
	// Now is the server's time when the view was made, the reference of
	// DVRSeconds and of relative ?start= times.
	Now time.Time `json:"now"`
	// Thumbnail is always empty: a still of the stream needs the
	// transcoding stage to decode a keyframe, which does not publish one.
	Thumbnail string `json:"thumbnail,omitempty"`
}

// StaleAfter is how long after its last refresh a live entry is shown as
// stale: three of the broker's catalog refresh periods.
const StaleAfter = 3 * bus.DefaultCatalogRefresh

// TrackView is one track of a StreamView.
type TrackView struct {
	PID   uint16 `json:"pid"`
	Kind  string `json:"kind"`
	Codec string `json:"codec"`
	// Detail is the H.264 profile-level-id or the audio channels and rate.
	Detail string `json:"detail,omitempty"`
	// Carried is true for the tracks sent to WebRTC viewers.
	Carried bool `json:"carried"`
	// DerivedFrom is the PID of the track this one was transcoded from
	// (docs/transcoding.md), 0 for a track of the source.
	DerivedFrom uint16 `json:"derived_from,omitempty"`
	// BFrames is true for a video track with B-frames (docs/transcoding.md).
	BFrames bool `json:"b_frames,omitempty"`
}

// viewOf builds the StreamView of a catalog entry at now.
func viewOf(e bus.CatalogEntry, now time.Time) StreamView {
	v := StreamView{
		Stream:   e.Stream,
		State:    e.State,
		Epoch:    strconv.FormatUint(e.Epoch, 10),
		Started:  e.Started,
		Updated:  e.Updated,
		Tracks:   []TrackView{},
		Stats:    publicStats(e.Stats),
		Protocol: e.Stats.Protocol,
		Now:      now,
	}
	if d := e.Updated.Sub(e.Started); d >= time.Second {
		v.Bitrate = int64(float64(e.Stats.Bytes) * 8 / d.Seconds())
	}
	v.Health, v.HealthNote = health(e, now)
	if bus.ValidateName(e.Stream) == nil {
		v.Play = "play/" + url.PathEscape(e.Stream)
	}
	carried := carriedPIDs(e.Tracks)
	transcoded := map[uint16]tsframes.Track{} // source PID -> its carried derived track
	for _, t := range e.Tracks.Tracks {
		if t.DerivedFrom != 0 && carried[t.PID] {
			transcoded[t.DerivedFrom] = t
		}
	}
	for _, t := range e.Tracks.Tracks {
		tv := TrackView{PID: t.PID, Kind: string(t.Kind), Codec: string(t.Codec), Detail: trackDetail(t), Carried: carried[t.PID],
			DerivedFrom: t.DerivedFrom, BFrames: t.BFrames}
		v.Tracks = append(v.Tracks, tv)
		if tv.Carried {
			v.Playable = true
			if t.Codec == tsframes.CodecH265 {
				v.Notes = append(v.Notes, "H265 video: plays in browsers that decode H.265 (Safari, Chrome with hardware decoding); there is no H264 rendition for the others")
			}
			if t.BFrames {
				v.Notes = append(v.Notes, "B-frames: not re-encoded (browsers show only the keyframes)")
			}
			continue
		}
		if d, ok := transcoded[t.PID]; ok && t.BFrames && d.Codec == t.Codec {
			v.Notes = append(v.Notes, "B-frames: re-encoded")
			continue
		}
		if d, ok := transcoded[t.PID]; ok && t.Codec == tsframes.CodecH265 && d.Codec == tsframes.CodecH264 {
			v.Notes = append(v.Notes, "H265 video: sent as is to browsers that decode H.265, transcoded to H264 for the others")
			continue
		}
		if d, ok := transcoded[t.PID]; ok {
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s: transcoded to %s", codecName(t.Codec), t.Kind, codecName(d.Codec)))
			continue
		}
		switch {
		case t.Kind != tsframes.KindVideo && t.Kind != tsframes.KindAudio:
			// Data tracks are never played; nothing to say.
		case t.TranscodeWaiting:
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s: waiting to be transcoded (all transcoding slots, --max-transcodes, are in use; it plays when one frees)", codecName(t.Codec), t.Kind))
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

// health rates a live entry: stale when the broker stopped refreshing it,
// errors when the ingest counted any.
func health(e bus.CatalogEntry, now time.Time) (string, string) {
	switch {
	case e.State == bus.StateLive && !e.Updated.IsZero() && now.Sub(e.Updated) > StaleAfter:
		return "stale", fmt.Sprintf("no update from the broker for %s", now.Sub(e.Updated).Round(time.Second))
	case e.Stats.DecodeErrors > 0 || e.Stats.PublishErrs > 0:
		return "errors", fmt.Sprintf("%d decode errors, %d publish errors since the start", e.Stats.DecodeErrors, e.Stats.PublishErrs)
	}
	return "ok", ""
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
	case t.ProfileID > 0: // H.265
		return fmt.Sprintf("profile-id %d, tier-flag %d, level-id %d", t.ProfileID, t.TierFlag, t.LevelID)
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

// liveViews returns the views of the live entries, with the viewers and
// the retention window when the handler has them.
func (h *handler) liveViews(ctx context.Context) []StreamView {
	entries := h.streams.Live()
	now := h.now()
	out := make([]StreamView, 0, len(entries))
	for _, e := range entries {
		out = append(out, viewOf(e, now))
	}
	h.addViewers(ctx, out)
	for i := range out {
		h.addRetention(ctx, &out[i])
	}
	return out
}

// entryView is the view of one catalog change.
func (h *handler) entryView(ctx context.Context, e bus.CatalogEntry) StreamView {
	v := []StreamView{viewOf(e, h.now())}
	if e.State == bus.StateLive {
		h.addViewers(ctx, v)
		h.addRetention(ctx, &v[0])
	}
	return v[0]
}

// lookupTimeout bounds the viewer count and retention lookups of a page.
const lookupTimeout = 2 * time.Second

func (h *handler) addViewers(ctx context.Context, views []StreamView) {
	if h.viewers == nil || len(views) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	t, err := h.viewers.ViewerCounts(ctx)
	if err != nil {
		h.logger.Debug("viewer counts", "err", err)
		return
	}
	if t.Nodes == 0 {
		return
	}
	for i := range views {
		n := t.Streams[views[i].Stream]
		views[i].Viewers, views[i].ViewerNodes = &n, t.Nodes
	}
}

func (h *handler) addRetention(ctx context.Context, v *StreamView) {
	if h.retention == nil || bus.ValidateName(v.Stream) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	from, err := h.retention.Oldest(ctx, v.Stream)
	if err != nil {
		if !errors.Is(err, bus.ErrNotFound) {
			h.logger.Debug("retention window", "stream", v.Stream, "err", err)
		}
		return
	}
	v.DVRFrom = &from
	v.DVRSeconds = max(0, v.Now.Sub(from).Seconds())
}

// publicStats are the ingest counters a viewer may see: the publisher's
// address is for operators (the catalog), never in the pages.
func publicStats(s bus.IngestStats) bus.IngestStats {
	s.Publisher = ""
	return s
}
