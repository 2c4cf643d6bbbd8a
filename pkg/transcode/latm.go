package transcode

import (
	"context"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// LATM configuration search bounds: a LOAS stream repeats its
// StreamMuxConfig every few frames (ffmpeg: every 20), so the child's
// start waits for one at most latmSearchFrames source frames or
// latmSearchWait.
const (
	latmSearchFrames = 64
	latmSearchWait   = 2 * time.Second
)

// latmChannels returns the channel count the first StreamMuxConfig of an
// AAC LATM/LOAS payload (one PES) gives, 0 when it carries none or it
// cannot be read.
func latmChannels(data []byte) int {
	var ss mpeg4audio.AudioSyncStream
	if err := ss.Unmarshal(data); err != nil {
		return 0
	}
	for _, el := range ss.AudioMuxElements {
		// A config must be present in the element, so no mux config is
		// carried over from one element to the next.
		e := mpeg4audio.AudioMuxElement{MuxConfigPresent: true}
		if err := e.Unmarshal(el); err != nil || e.StreamMuxConfig == nil {
			continue
		}
		for _, p := range e.StreamMuxConfig.Programs {
			for _, l := range p.Layers {
				if asc := l.AudioSpecificConfig; asc != nil {
					return tsframes.AACChannels(asc.ChannelConfig)
				}
			}
		}
	}
	return 0
}

// learnLATMChannels reads the job's first source frames until one carries
// a LATM configuration (bounded: latmSearchFrames, latmSearchWait, ctx),
// keeps them to be fed to the child first (j.first), and sets j.channels
// from it. An AAC LATM track's announcement has no channel count (the PMT
// does not carry it), and a mono source must be known as such to keep its
// level in stereo (ffmpegArgs).
func (j *job) learnLATMChannels(ctx context.Context) {
	j.latmSearched = true
	timer := time.NewTimer(latmSearchWait)
	defer timer.Stop()
	for len(j.first) < latmSearchFrames {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			j.log.Info("no LATM configuration in the first frames: channels unknown", "frames", len(j.first))
			return
		case f := <-j.in:
			j.first = append(j.first, f)
			if n := latmChannels(f.Data); n > 0 {
				j.channels = n
				j.log.Info("AAC LATM configuration", "channels", n)
				return
			}
		}
	}
}

// needsLATMChannels reports whether the job's child must wait for the
// source's LATM configuration: not searched for yet (once per job).
func (j *job) needsLATMChannels() bool {
	return j.src.Codec == tsframes.CodecAACLATM && j.src.Channels == 0 && !j.latmSearched
}
