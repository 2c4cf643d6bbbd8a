package transcode

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// derivedPIDBase is the first PID tried for a derived track (one the PMT
// does not use is taken).
const derivedPIDBase = 0x1f00

// publisher is a publication's Publisher as the stage wraps it: it adds the
// derived Opus track to announcements whose audio is not playable (the bus
// Publisher then selects it as the audio), publishes the source audio's
// frames under the derived PID (so that the bus carries them, told apart
// from the Opus by their codec) and runs the stream's transcode.
type publisher struct {
	ingest.Publisher
	stage  *Stage
	stream string
	epoch  uint64

	mu      sync.Mutex
	src     tsframes.Track // the source audio track being transcoded
	derived uint16         // its derived PID; 0 when none
	job     *job
	last    tsframes.Announcement // the source's latest (as the ingest announced it)
	video   videoState            // video_publisher.go

	// slotFree is set when a transcode slot freed while the publication
	// waited for one (admission.go); its next frame tries again.
	slotFree atomic.Bool
}

// sourceTrack returns the audio track to transcode: the first audio track,
// when no audio track is playable and its codec is transcodable.
func sourceTrack(a tsframes.Announcement) (tsframes.Track, bool) {
	var first *tsframes.Track
	for i, t := range a.Tracks {
		if t.Kind != tsframes.KindAudio {
			continue
		}
		if t.WebRTC {
			return tsframes.Track{}, false
		}
		if first == nil {
			first = &a.Tracks[i]
		}
	}
	if first == nil || !transcodable(first.Codec) {
		return tsframes.Track{}, false
	}
	return *first, true
}

// derivedPID returns a PID a's tracks do not use.
func derivedPID(a tsframes.Announcement) uint16 {
	p := uint16(derivedPIDBase)
	for slices.ContainsFunc(a.Tracks, func(t tsframes.Track) bool { return t.PID == p }) {
		p++
	}
	return p
}

// derivedTrack is the Opus track made from src.
func derivedTrack(pid uint16, src tsframes.Track) tsframes.Track {
	return tsframes.Track{PID: pid, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true,
		Channels: 2, SampleRate: 48000, DerivedFrom: src.PID}
}

func (p *publisher) Announce(ctx context.Context, a tsframes.Announcement) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = a
	p.last.Tracks = slices.Clone(a.Tracks)
	p.videoAnnounce(a)
	return p.announceLocked(ctx, a)
}

// announceLocked publishes the announcement of the source's a with the
// derived tracks. Called with mu held.
func (p *publisher) announceLocked(ctx context.Context, a tsframes.Announcement) error {
	src, ok := sourceTrack(a)
	switch {
	case !ok:
		p.stopLocked()
		p.stage.unwait(p)
	case p.job != nil && src.PID == p.src.PID && src.Codec == p.src.Codec && src.Channels == p.src.Channels && src.SampleRate == p.src.SampleRate:
		// Same source: the running transcode goes on.
	default:
		// A new source track, or its format changed: a new transcode
		// (the child is started afresh for it).
		p.stopLocked()
		derived := derivedPID(a)
		if j := p.stage.start(p.stream, p.epoch, src, derived, 0); j != nil {
			p.src, p.derived, p.job = src, derived, j
			p.stage.unwait(p)
		} else {
			p.stage.wait(p)
		}
	}
	a.Tracks = p.videoTracks(p.withDerivedAudio(a.Tracks))
	if ok && p.job == nil {
		a.Tracks = markWaiting(a.Tracks, src.PID)
	}
	return p.Publisher.Announce(ctx, a)
}

// withDerivedAudio returns tracks and the derived Opus track while the
// audio transcode runs. Called with mu held.
func (p *publisher) withDerivedAudio(tracks []tsframes.Track) []tsframes.Track {
	if p.derived == 0 {
		return tracks
	}
	return append(slices.Clone(tracks), derivedTrack(p.derived, p.src))
}

// stopLocked ends the transcode, if any. Called with mu held.
func (p *publisher) stopLocked() {
	if p.job != nil {
		p.stage.end(p.job)
	}
	p.src, p.derived, p.job = tsframes.Track{}, 0, nil
}

func (p *publisher) Publish(ctx context.Context, f tsframes.Frame) error {
	p.mu.Lock()
	if p.slotFree.Swap(false) && p.job == nil {
		p.retryLocked(ctx)
	}
	if p.derived != 0 && f.PID == p.src.PID {
		f.PID = p.derived
	}
	if f.Kind == tsframes.KindVideo && p.videoFrame(&f) {
		if err := p.announceLocked(ctx, p.last); err != nil {
			p.stage.cfg.Logger.Warn("announcing the video's tracks", "stream", p.stream, "epoch", p.epoch, "err", err)
		}
	}
	p.mu.Unlock()
	return p.Publisher.Publish(ctx, f)
}

func (p *publisher) Shutdown(ctx context.Context) error {
	err := p.Publisher.Shutdown(ctx)
	p.mu.Lock()
	p.stopLocked()
	p.stopVideoLocked()
	p.stage.unwait(p)
	if p.slotFree.Swap(false) {
		// Told a slot freed, and ending: the next waiting stream tries.
		p.stage.slotFreed()
	}
	p.mu.Unlock()
	return err
}
