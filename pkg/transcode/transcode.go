// Package transcode is whepcast's transcoding stage: it makes a stream whose
// audio WebRTC cannot carry (AAC, MPEG-1/2 audio, AC-3, E-AC-3) playable,
// once per stream, never per viewer or per node. It reads the source audio
// from the bus, has a supervised ffmpeg child turn it into Opus (48 kHz,
// stereo, 20 ms) and publishes that on the same stream, epoch and PTS
// timeline as a derived track, which the publication announces as the
// audio to play; whep-nodes stay codec-agnostic. Likewise H.264 video with
// B-frames (which browsers play at its keyframes only) is detected and
// re-encoded without B-frames into a derived H.264 track.
//
// A Stage wraps the publications' publishers (Publishers) to announce the
// derived track and let the source audio onto the bus; it bounds the
// transcodes running at once (MaxTranscodes), restarts a child that dies or
// stalls with backoff, logs its stderr rate-limited and keeps per-stream
// metrics. docs/transcoding.md describes the design and its measurements.
package transcode

import (
	"fmt"
	"log/slog"
	"time"
)

// Mode says what the stage transcodes.
type Mode string

// Modes.
const (
	// ModeAuto transcodes whatever it can make playable (audio, and
	// video with B-frames) when ffmpeg is found, and nothing, said once
	// at start, when not.
	ModeAuto Mode = "auto"
	// ModeAudio transcodes audio only (video with B-frames is detected
	// and announced, not re-encoded); ffmpeg must be found.
	ModeAudio Mode = "audio"
	// ModeOff transcodes nothing.
	ModeOff Mode = "off"
)

// Defaults.
const (
	DefaultMode          = ModeAuto
	DefaultMaxTranscodes = 8
	DefaultFFmpeg        = "ffmpeg"
	DefaultAudioBitrate  = 64000
	// DefaultStallTimeout is how long a child may produce nothing while it
	// has input before it is restarted.
	DefaultStallTimeout = 2 * time.Second
	// DefaultRestartMin and DefaultRestartMax bound the backoff between
	// restarts of a child (doubling; back to the minimum after a child
	// ran for restartReset).
	DefaultRestartMin = 100 * time.Millisecond
	DefaultRestartMax = 5 * time.Second
)

// Config configures a Stage. The zero value means the defaults.
type Config struct {
	Mode Mode
	// MaxTranscodes bounds the transcodes running at once (default 8; a
	// stream's audio and its video re-encode count one each); beyond it a
	// stream keeps its source audio only (the player says it cannot be
	// played), or its B-frame video, and
	// whepcast_transcode_rejected_total counts it.
	MaxTranscodes int
	// FFmpeg is the ffmpeg binary, a path or a name looked up in PATH
	// (default "ffmpeg").
	FFmpeg string
	// AudioBitrate is the Opus bitrate in bit/s (default 64000).
	AudioBitrate int
	// StallTimeout: see DefaultStallTimeout.
	StallTimeout time.Duration
	// RestartMin and RestartMax bound the restart backoff.
	RestartMin, RestartMax time.Duration
	// Logger receives the stage's logs (default: discarded).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.MaxTranscodes == 0 {
		c.MaxTranscodes = DefaultMaxTranscodes
	}
	if c.FFmpeg == "" {
		c.FFmpeg = DefaultFFmpeg
	}
	if c.AudioBitrate == 0 {
		c.AudioBitrate = DefaultAudioBitrate
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.RestartMin == 0 {
		c.RestartMin = DefaultRestartMin
	}
	if c.RestartMax == 0 {
		c.RestartMax = DefaultRestartMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ParseMode returns the Mode named s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeAudio, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("transcode: mode %q: want auto, audio or off", s)
}

// Validate reports the first invalid field of c. Zero fields are valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	switch {
	case c.MaxTranscodes < 0:
		return fmt.Errorf("transcode: max transcodes %d: want 0 (default) or more", c.MaxTranscodes)
	case c.AudioBitrate < 6000 || c.AudioBitrate > 510000:
		return fmt.Errorf("transcode: audio bitrate %d: want 6000 to 510000 (Opus)", c.AudioBitrate)
	case c.StallTimeout < 100*time.Millisecond:
		return fmt.Errorf("transcode: stall timeout %v: want at least 100ms", c.StallTimeout)
	case c.RestartMin <= 0 || c.RestartMax < c.RestartMin:
		return fmt.Errorf("transcode: restart backoff %v..%v: want 0 < min <= max", c.RestartMin, c.RestartMax)
	}
	return nil
}
