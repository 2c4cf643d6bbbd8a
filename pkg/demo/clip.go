package demo

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// clip is a demuxed sample ready to loop.
type clip struct {
	announcement tsframes.Announcement
	// frames in decode order (stable by DTS), every one within one period
	// of its track's first frame.
	frames []tsframes.Frame
	// period is added to the timestamps on every pass (90 kHz).
	period int64
}

// loadClip demuxes an MPEG-TS sample.
func loadClip(ctx context.Context, ts []byte) (*clip, error) {
	col := &collector{}
	d := tsframes.NewDemuxer(bytes.NewReader(ts), tsframes.Options{})
	if err := d.Run(ctx, col); err != nil {
		return nil, fmt.Errorf("demo: demuxing the clip: %w", err)
	}
	return newClip(col.announcement, col.frames)
}

// collector gathers the sample's announcement and frames.
type collector struct {
	announcement tsframes.Announcement
	frames       []tsframes.Frame
}

func (c *collector) Tracks(a tsframes.Announcement) error {
	c.announcement = a
	return nil
}

func (c *collector) Frame(f tsframes.Frame) error {
	c.frames = append(c.frames, f)
	return nil
}

// newClip orders the frames by DTS, computes the loop period and drops the
// frames that would overlap the next pass. Each pass adds the period to the
// timestamps: the video span plus one frame interval (the audio span when
// there is no video), so that the next pass's first video frame comes one
// frame interval after the last one and its first audio packet one packet
// duration after the last one.
func newClip(a tsframes.Announcement, frames []tsframes.Frame) (*clip, error) {
	var media []tsframes.Frame
	for _, f := range frames {
		if f.Kind == tsframes.KindVideo || f.Kind == tsframes.KindAudio {
			media = append(media, f)
		}
	}
	if len(media) == 0 {
		return nil, ErrEmptySample
	}
	sort.SliceStable(media, func(i, j int) bool { return media[i].DTS < media[j].DTS })

	period := videoPeriod(media)
	if period <= 0 {
		period = audioPeriod(media)
	}
	if period <= 0 {
		return nil, fmt.Errorf("%w: cannot tell its duration (a single frame?)", ErrEmptySample)
	}

	first := map[uint16]int64{}
	kept := media[:0]
	for _, f := range media {
		base, ok := first[f.PID]
		if !ok {
			first[f.PID], base = f.DTS, f.DTS
		}
		if f.DTS-base < period {
			kept = append(kept, f)
		}
	}
	return &clip{announcement: a, frames: kept, period: period}, nil
}

// videoPeriod is the span of the first video track plus its mean frame
// interval, 0 without at least two video frames.
func videoPeriod(frames []tsframes.Frame) int64 {
	var pid uint16
	var n, firstDTS, lastDTS int64
	for _, f := range frames {
		if f.Kind != tsframes.KindVideo {
			continue
		}
		if n == 0 {
			pid, firstDTS = f.PID, f.DTS
		} else if f.PID != pid {
			continue
		}
		lastDTS = f.DTS
		n++
	}
	if n < 2 || lastDTS <= firstDTS {
		return 0
	}
	span := lastDTS - firstDTS
	return span + (span+(n-1)/2)/(n-1)
}

// audioPeriod is the span of the first audio track including its last
// packet's duration.
func audioPeriod(frames []tsframes.Frame) int64 {
	var pid uint16
	var n, firstPTS, end int64
	for _, f := range frames {
		if f.Kind != tsframes.KindAudio {
			continue
		}
		if n == 0 {
			pid, firstPTS = f.PID, f.PTS
		} else if f.PID != pid {
			continue
		}
		end = f.PTS + f.Duration
		n++
	}
	if n == 0 {
		return 0
	}
	return end - firstPTS
}
