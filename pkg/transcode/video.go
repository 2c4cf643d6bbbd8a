package transcode

import (
	"cmp"
	"strconv"
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The video stage: an H.264 source with B-frames plays in Chromium at its
// keyframes only (docs/transcoding.md has the measurement), so the stage
// re-encodes it once per stream to H.264 without B-frames (libx264 in the
// ffmpeg child: nothing linked), on the source's PTS timeline and with a
// keyframe wherever the source has one.

// videoArgs are the arguments of a video child: the source's H.264 in
// MPEG-TS on stdin (timestamps kept, the smallest probe); H.264
// constrained baseline (no B-frames, the profile every WebRTC H.264
// decoder takes), zero-latency, at bitrate bit/s (VBV of one
// second, peaks up to 1.5 times), keyframes where the source's are and
// nowhere else (no scene-cut keyframes), every frame kept with its
// timestamp, exactly (the encoder's time base is the 90 kHz clock, not
// 1/frame rate, which would round PTS off the source's grid); MPEG-TS on
// stdout, flushed at once.
func videoArgs(bitrate int) []string {
	b := strconv.Itoa(bitrate)
	return []string{
		"-hide_banner", "-nostats", "-loglevel", "error",
		"-copyts", "-probesize", "32", "-analyzeduration", "0",
		"-f", "mpegts", "-i", "pipe:0",
		"-map", "0:v:0", "-an", "-sn", "-dn",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-bf", "0", "-b:v", b, "-maxrate", strconv.Itoa(bitrate * 3 / 2), "-bufsize", b,
		"-force_key_frames", "source", "-g", "600", "-sc_threshold", "0", "-fps_mode", "passthrough", "-enc_time_base", "1:90000",
		"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-avoid_negative_ts", "disabled",
		"-flush_packets", "1",
		"pipe:1",
	}
}

// childArgs are the arguments of j's child.
func (j *job) childArgs() []string {
	if j.src.Kind == tsframes.KindVideo {
		return videoArgs(j.bitrate)
	}
	return ffmpegArgs(j.stage.cfg.AudioBitrate, cmp.Or(j.src.Channels, j.channels))
}

// tsVideoStreamID is the PES stream id of video.
const tsVideoStreamID = 0xe0

// feedFrame writes one source frame to the child: audio as a PES with its
// PTS; video as a PES with PTS and DTS, from the first keyframe on (false:
// not written).
func (j *job) feedFrame(tw *tsWriter, f tsframes.Frame, keySeen *bool) (bool, error) {
	if j.src.Kind == tsframes.KindVideo {
		if !*keySeen && !f.Key {
			return false, nil
		}
		*keySeen = true
	}
	return true, tw.writePES(f.PTS, f.DTS, f.Data)
}

// videoFrame publishes an access unit of the child's output on the
// source's timeline (its PTS and DTS mapped back to the source's, nearest
// the last input's).
func (s *outputSink) videoFrame(f tsframes.Frame, now time.Time) error {
	if f.Codec != tsframes.CodecH264 {
		return nil
	}
	s.io.pendingSince.Store(0)
	last := s.io.lastPTS.Load()
	f.PTS, f.DTS = toSource(f.PTS, last), toSource(f.DTS, last)
	f.PID, f.Kind = s.j.derived, tsframes.KindVideo
	s.publish(f, f.PTS+1, now)
	return nil
}

// videoTracks keeps the profile-level-id of the child's H.264 output, as
// the demuxer announces it from the output's SPS (before its first frame),
// for the publication to announce (videoState.outputProfile).
func (s *outputSink) videoTracks(a tsframes.Announcement) {
	for _, t := range a.Tracks {
		if t.Codec == tsframes.CodecH264 && t.ProfileLevelID != "" {
			if p := s.j.outProfile.Load(); p == nil || *p != t.ProfileLevelID {
				s.j.outProfile.Store(&t.ProfileLevelID)
			}
			return
		}
	}
}

// derivedVideoTrack is the H.264 track the stage makes from src, with the
// profile-level-id of the re-encode's output ("" until its first SPS: a
// node then offers its default, constrained baseline, which the rendition
// is, and a viewer that negotiated before the profile is known keeps
// playing, an unknown profile matching any).
func derivedVideoTrack(pid uint16, src tsframes.Track, profile string) tsframes.Track {
	return tsframes.Track{PID: pid, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true,
		ProfileLevelID: profile, DerivedFrom: src.PID}
}
