package transcode

import "github.com/whepcast/whepcast/pkg/tsframes"

// B-frame detection. A stream has B-frames when its frames are reordered:
// in decode order (the order they arrive in), a frame's PTS is lower than
// the previous frame's. Without B-frames PTS only grow. PTS ≠ DTS alone is
// not taken as a sign (some muxers offset DTS from PTS without reordering),
// and a backward jump larger than maxReorder is a discontinuity of the
// source's clock, not reordering.
const (
	// maxReorder is the largest backward PTS step counted as reordering
	// (1 s: x264 reorders a few frames at most).
	maxReorder = 90000
	// reorderedToDetect is how many reordered frames make the verdict:
	// two, so that one odd timestamp is not enough.
	reorderedToDetect = 2
)

// reorderDetector tells whether a video track has B-frames, from its
// frames in decode order. It is used by one goroutine.
type reorderDetector struct {
	seen      bool
	lastPTS   int64
	reordered int
}

// frame takes the next frame of the track (decode order) and reports
// whether the track is known to have B-frames.
func (d *reorderDetector) frame(f tsframes.Frame) bool {
	if d.seen {
		if back := d.lastPTS - f.PTS; back > 0 && back <= maxReorder {
			d.reordered++
		}
	}
	d.seen, d.lastPTS = true, f.PTS
	return d.detected()
}

// detected reports whether the track is known to have B-frames.
func (d *reorderDetector) detected() bool { return d.reordered >= reorderedToDetect }

// Bitrate estimate of the source video, for the re-encoder's target.
const (
	// rateWindow is how much video (DTS span, 90 kHz) the estimate needs.
	rateWindow = 90000
	// minVideoBitrate and maxVideoBitrate bound the re-encoder's target.
	minVideoBitrate = 200_000
	maxVideoBitrate = 20_000_000
)

// rateMeter measures a video track's bitrate over its first rateWindow.
type rateMeter struct {
	seen         bool
	first, last  int64 // DTS of the first and the latest frame
	bytes, count int64
}

// frame counts f; it reports whether the window is complete.
func (r *rateMeter) frame(f tsframes.Frame) bool {
	if !r.seen {
		r.seen, r.first = true, f.DTS
	}
	if r.last-r.first < rateWindow {
		r.bytes += int64(len(f.Data))
		r.count++
		r.last = f.DTS
	}
	return r.last-r.first >= rateWindow
}

// bitrate is the measured rate in bit/s (the frames' bytes over their DTS
// span, one frame interval added), within the re-encoder's bounds.
func (r *rateMeter) bitrate() int {
	span := r.last - r.first
	if r.count > 1 {
		span += span / (r.count - 1)
	}
	if span <= 0 {
		return minVideoBitrate
	}
	bps := r.bytes * 8 * 90000 / span
	return int(min(max(bps, minVideoBitrate), maxVideoBitrate))
}
