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
