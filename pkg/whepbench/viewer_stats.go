package whepbench

import (
	"time"
)

// maxFailureKinds bounds the distinct failure messages a report lists.
const maxFailureKinds = 16

// ViewerStats sums up the viewers of a run.
type ViewerStats struct {
	Viewers   int `json:"viewers"`
	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	// Dropped viewers received RTP and then none for more than DropGap.
	Dropped int `json:"dropped"`
	// NoMedia viewers connected but received no RTP; NoKeyframe viewers
	// received RTP but no complete keyframe.
	NoMedia    int `json:"no_media"`
	NoKeyframe int `json:"no_keyframe"`
	// Failures counts the failed viewers by error message.
	Failures     map[string]int `json:"failures,omitempty"`
	DeleteErrors int            `json:"delete_errors"`
	// Malformed counts RTP packets that did not parse.
	Malformed int64 `json:"malformed_rtp"`
	// Connect is POST sent to PeerConnection connected; TTFF is POST sent to
	// the first complete keyframe received.
	Connect Summary `json:"connect"`
	TTFF    Summary `json:"ttff"`
	// MaxGap is each viewer's longest silence between two RTP packets
	// (or from its last packet to the end of the window), over the
	// viewers that received RTP.
	MaxGap Summary `json:"max_gap"`
	// In the steady window, per connected viewer: RTP packets per second
	// and RTP bits per second (headers included, as received from SRTP).
	PacketRate float64 `json:"packets_per_s_per_viewer"`
	Bitrate    float64 `json:"bits_per_s_per_viewer"`
}

// counts are the RTP packets and bytes of a set of viewers.
type counts struct{ packets, bytes int64 }

func countRTP(viewers []*viewer) counts {
	var c counts
	for _, v := range viewers {
		if v != nil && v.err == nil {
			c.packets += v.packets.Load()
			c.bytes += v.bytes.Load()
		}
	}
	return c
}

// viewerStats sums viewers up at the end of the steady window: now is the
// client clock then (coarse), start and end the RTP counts at the window's
// start and end.
func viewerStats(viewers []*viewer, now int64, start, end counts, window time.Duration) ViewerStats {
	s := ViewerStats{Viewers: len(viewers)}
	var connect, ttff, gaps []time.Duration
	for _, v := range viewers {
		if v == nil {
			continue
		}
		if v.err != nil {
			s.Failed++
			if s.Failures == nil {
				s.Failures = map[string]int{}
			}
			msg := v.err.Error()
			if _, ok := s.Failures[msg]; !ok && len(s.Failures) >= maxFailureKinds {
				msg = "other"
			}
			s.Failures[msg]++
			continue
		}
		s.Connected++
		s.Malformed += v.malformed.Load()
		connect = append(connect, time.Duration(v.connectedAt.Load()-v.postAt.Load()))
		last := v.lastAt.Load()
		if last == 0 {
			s.NoMedia++
			continue
		}
		gap := time.Duration(max(v.maxGap.Load(), now-last))
		gaps = append(gaps, gap)
		if gap > DropGap {
			s.Dropped++
		}
		if v.keyframes.Load() == 0 {
			s.NoKeyframe++
		} else {
			ttff = append(ttff, time.Duration(v.ttff.Load()))
		}
	}
	s.Connect = Summarize(connect)
	s.TTFF = Summarize(ttff)
	s.MaxGap = Summarize(gaps)
	if s.Connected > 0 && window > 0 {
		per := float64(s.Connected) * window.Seconds()
		s.PacketRate = float64(end.packets-start.packets) / per
		s.Bitrate = float64(end.bytes-start.bytes) * 8 / per
	}
	return s
}
