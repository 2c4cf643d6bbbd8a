package transcode

import (
	"slices"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// videoState is a publication's B-frame detection and video re-encode, as
// its publisher wrapper keeps them (under the wrapper's lock).
type videoState struct {
	src     tsframes.Track // the source video track watched (sourceVideo); PID 0: none
	det     reorderDetector
	rate    rateMeter
	tried   bool   // a re-encode was asked for (started, or refused by the bound)
	derived uint16 // the derived track's PID while the re-encode runs
	profile string // the derived track's profile-level-id, once the output's SPS is known
	job     *job
}

// sourceVideo returns the video track of a the stage would re-encode: the
// first H.264 track of the source (when it has B-frames), else its first
// H.265 track (into an H.264 rendition for viewers without H.265).
func sourceVideo(a tsframes.Announcement) (tsframes.Track, bool) {
	var h265 *tsframes.Track
	for i, t := range a.Tracks {
		if t.Kind != tsframes.KindVideo || t.DerivedFrom != 0 {
			continue
		}
		switch {
		case t.Codec == tsframes.CodecH264:
			return t, true
		case t.Codec == tsframes.CodecH265 && h265 == nil:
			h265 = &a.Tracks[i]
		}
	}
	if h265 != nil {
		return *h265, true
	}
	return tsframes.Track{}, false
}

// h265RateFactor scales an H.265 source's bitrate into the H.264
// rendition's target (H.264 needs about half as much again for the same
// picture).
const h265RateFactor = 1.5

// videoAnnounce updates the video state for a new source announcement a:
// a different source video track (PID or codec) starts over (detection
// again, the re-encode stopped). A re-encode refused by the bound is
// tried again. Called with mu held.
func (p *publisher) videoAnnounce(a tsframes.Announcement) {
	v := &p.video
	src, ok := sourceVideo(a)
	if !ok || src.PID != v.src.PID || src.Codec != v.src.Codec {
		p.stopVideoLocked()
		p.video = videoState{src: src}
		return
	}
	if v.job == nil {
		v.tried = false
	}
}

// videoTracks returns tracks with the video state applied: the source's
// track marked BFrames once detected, and the derived H.264 track while
// the re-encode runs (the bus Publisher then selects it as the video).
func (p *publisher) videoTracks(tracks []tsframes.Track) []tsframes.Track {
	v := &p.video
	if v.src.PID == 0 || (!v.det.detected() && v.derived == 0) {
		return tracks
	}
	tracks = slices.Clone(tracks)
	for i := range tracks {
		if tracks[i].PID == v.src.PID && v.det.detected() {
			tracks[i].BFrames = true
		}
	}
	if v.derived != 0 {
		tracks = append(tracks, derivedVideoTrack(v.derived, v.src, v.profile))
	}
	return tracks
}

// videoFrame watches a video frame of the source before it is published:
// it runs the detection and, once B-frames are detected and the source's
// bitrate measured (rateWindow of video), starts the re-encode (ModeAuto);
// while the re-encode runs the frame goes out under the derived PID, so
// that the bus Publisher, whose video is then the derived track, carries
// it for the stage to read. It reports whether the announcement must be
// published again (B-frames detected, the derived track added, or the
// profile-level-id of the re-encode's output learnt or changed). Called
// with mu held.
func (p *publisher) videoFrame(f *tsframes.Frame) (reannounce bool) {
	v := &p.video
	if v.src.PID == 0 || f.PID != v.src.PID {
		return false
	}
	if v.derived != 0 {
		f.PID = v.derived
		return p.outputProfile()
	}
	was := v.det.detected()
	detected := v.det.frame(*f)
	measured := v.rate.frame(*f)
	reannounce = detected && !was
	if reannounce {
		p.stage.cfg.Logger.Info("video has B-frames (reordered frames)", "stream", p.stream, "epoch", p.epoch, "pid", v.src.PID)
	}
	// H.264 is re-encoded when it has B-frames; H.265 always (an H.264
	// rendition).
	h265 := v.src.Codec == tsframes.CodecH265
	if (!detected && !h265) || !measured || v.tried || p.stage.cfg.Mode != ModeAuto {
		return reannounce
	}
	v.tried = true
	rate := v.rate.bitrate()
	if h265 {
		rate = min(int(float64(rate)*h265RateFactor), maxVideoBitrate)
	}
	derived := derivedPID(tsframes.Announcement{Tracks: p.withDerivedAudio(p.last.Tracks)})
	if j := p.stage.start(p.stream, p.epoch, v.src, derived, rate); j != nil {
		v.derived, v.job = derived, j
		f.PID = derived
		return true
	}
	return reannounce
}

// outputProfile takes the profile-level-id of the re-encode's output once
// the job has seen its SPS (the child's output arrives on the job's
// goroutine; the publication announces on its own, at its next source
// frame). It reports whether the profile is new. Called with mu held.
func (p *publisher) outputProfile() bool {
	v := &p.video
	pp := v.job.outProfile.Load()
	if pp == nil || *pp == v.profile {
		return false
	}
	v.profile = *pp
	p.stage.cfg.Logger.Info("re-encoded video's profile known", "stream", p.stream, "epoch", p.epoch, "pid", v.derived, "profile_level_id", v.profile)
	return true
}

// stopVideoLocked ends the video re-encode, if any. Called with mu held.
func (p *publisher) stopVideoLocked() {
	if p.video.job != nil {
		p.stage.end(p.video.job)
	}
	p.video.job, p.video.derived, p.video.profile = nil, 0, ""
}
