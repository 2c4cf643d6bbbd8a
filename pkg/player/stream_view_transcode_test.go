package player

import (
	"slices"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestViewSaysAudioIsTranscoded: a stream whose AAC audio the transcoding
// stage made into Opus is playable, the Opus track says what it comes from
// and the notes say that the AAC was transcoded, not that it cannot play.
func TestViewSaysAudioIsTranscoded(t *testing.T) {
	e := bus.CatalogEntry{Stream: "cam", State: bus.StateLive, Tracks: bus.Announcement{
		Stream: "cam",
		Tracks: []tsframes.Track{
			{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
			{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 44100},
			{PID: 7936, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000, DerivedFrom: 257},
		},
		Video: 256, Audio: 7936,
	}}
	v := viewOf(e, time.Now())
	if !v.Playable {
		t.Fatal("not playable")
	}
	if got := v.Tracks[2]; !got.Carried || got.DerivedFrom != 257 {
		t.Fatalf("Opus track %+v: want carried, derived from 257", got)
	}
	if v.Tracks[1].Carried {
		t.Fatal("the AAC source is shown as carried")
	}
	if !slices.Equal(v.Notes, []string{"AAC audio: transcoded to Opus"}) {
		t.Fatalf("notes %q", v.Notes)
	}
}

// TestViewSaysBFramesReencoded: a stream whose H.264 with B-frames the
// stage re-encoded plays the derived track, and the notes say
// "B-frames: re-encoded"; without the re-encode (--transcode audio, or
// the bound reached) they say that it was not.
func TestViewSaysBFramesReencoded(t *testing.T) {
	tracks := []tsframes.Track{
		{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, BFrames: true},
		{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true},
	}
	e := bus.CatalogEntry{Stream: "bf", State: bus.StateLive, Tracks: bus.Announcement{Stream: "bf",
		Tracks: append(tracks, tsframes.Track{PID: 7936, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, DerivedFrom: 256}),
		Video:  7936, Audio: 257}}
	v := viewOf(e, time.Now())
	if !v.Playable || v.Tracks[0].Carried || !v.Tracks[0].BFrames || !v.Tracks[2].Carried || v.Tracks[2].DerivedFrom != 256 {
		t.Fatalf("tracks %+v", v.Tracks)
	}
	if !slices.Equal(v.Notes, []string{"B-frames: re-encoded"}) {
		t.Fatalf("notes %q", v.Notes)
	}
	e.Tracks = bus.Announcement{Stream: "bf", Tracks: tracks, Video: 256, Audio: 257}
	v = viewOf(e, time.Now())
	if !v.Playable || !slices.Equal(v.Notes, []string{"B-frames: not re-encoded (browsers show only the keyframes)"}) {
		t.Fatalf("without the re-encode: playable %v, notes %q", v.Playable, v.Notes)
	}
}

// TestViewSaysAudioWaitsForATranscodeSlot: a stream whose AAC the stage
// would transcode but has no slot for says so (and that it will play),
// not that AAC cannot be played.
func TestViewSaysAudioWaitsForATranscodeSlot(t *testing.T) {
	e := bus.CatalogEntry{Stream: "cam", State: bus.StateLive, Tracks: bus.Announcement{
		Stream: "cam",
		Tracks: []tsframes.Track{
			{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
			{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 44100, TranscodeWaiting: true},
		},
		Video: 256,
	}}
	v := viewOf(e, time.Now())
	want := []string{"AAC audio: waiting to be transcoded (all transcoding slots, --max-transcodes, are in use; it plays when one frees)"}
	if !v.Playable || !slices.Equal(v.Notes, want) {
		t.Fatalf("playable %v, notes %q: want the video playable and %q", v.Playable, v.Notes, want)
	}
}
