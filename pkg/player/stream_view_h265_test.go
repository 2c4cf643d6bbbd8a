package player

import (
	"slices"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestViewSaysWhoPlaysH265: an H.265 stream is playable, its track shows its
// profile, and the notes say that only browsers that decode H.265 play it;
// with an H.264 rendition (a derived track), that the others get that.
func TestViewSaysWhoPlaysH265(t *testing.T) {
	h265 := tsframes.Track{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true, ProfileID: 1, LevelID: 93}
	opus := tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000}
	e := bus.CatalogEntry{Stream: "cam", State: bus.StateLive, Tracks: bus.NewAnnouncement("cam", 1, tsframes.Announcement{Tracks: []tsframes.Track{h265, opus}})}
	v := viewOf(e, time.Now())
	if !v.Playable || !v.Tracks[0].Carried || v.Tracks[0].Detail != "profile-id 1, tier-flag 0, level-id 93" {
		t.Fatalf("view %+v", v)
	}
	want := []string{"H265 video: plays in browsers that decode H.265 (Safari, Chrome with hardware decoding); there is no H264 rendition for the others"}
	if !slices.Equal(v.Notes, want) {
		t.Fatalf("notes %q, want %q", v.Notes, want)
	}

	derived := tsframes.Track{PID: 7937, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01f", DerivedFrom: 256}
	e.Tracks = bus.NewAnnouncement("cam", 1, tsframes.Announcement{Tracks: []tsframes.Track{h265, opus, derived}})
	v = viewOf(e, time.Now())
	want = []string{"H265 video: sent as is to browsers that decode H.265, transcoded to H264 for the others"}
	if !v.Playable || !v.Tracks[2].Carried || v.Tracks[0].Carried || !slices.Equal(v.Notes, want) {
		t.Fatalf("with a rendition: playable %v tracks %+v notes %q, want %q", v.Playable, v.Tracks, v.Notes, want)
	}
}
