package bus

import (
	"slices"
	"testing"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestNewAnnouncementSelectsFirstH264AndOpus(t *testing.T) {
	in := tsframes.Announcement{Tracks: []tsframes.Track{
		{PID: 100, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC},
		{PID: 101, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265},
		{PID: 102, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
		{PID: 103, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true},
		{PID: 104, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
		{PID: 105, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true},
	}}
	a := NewAnnouncement("s", 9, in)
	if a.Stream != "s" || a.Epoch != 9 || a.Video != 102 || a.Audio != 103 || len(a.Tracks) != 6 {
		t.Fatalf("announcement = %+v", a)
	}
	in.Tracks[2].PID = 1 // the announcement owns its tracks
	if a.Tracks[2].PID != 102 {
		t.Fatal("announcement shares the caller's track slice")
	}
	if tr, ok := a.Track(105); !ok || tr.Codec != tsframes.CodecOpus {
		t.Fatalf("Track(105) = %+v, %v", tr, ok)
	}
	if _, ok := a.Track(7); ok {
		t.Fatal("Track(7) found")
	}
	if n := NewAnnouncement("s", 1, tsframes.Announcement{Tracks: in.Tracks[:1]}); n.Video != 0 || n.Audio != 0 {
		t.Fatalf("no WebRTC track: video %d audio %d, want 0 0", n.Video, n.Audio)
	}
}

// TestNewAnnouncementSelectsH265WithoutH264: the first H.265 track is the
// video when there is no H.264 track; an H.264 track (a source's, or one
// derived from the H.265 track) wins wherever it is listed.
func TestNewAnnouncementSelectsH265WithoutH264(t *testing.T) {
	h265 := []tsframes.Track{
		{PID: 100, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC},
		{PID: 101, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true},
		{PID: 102, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true},
		{PID: 103, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true},
	}
	if a := NewAnnouncement("s", 1, tsframes.Announcement{Tracks: h265}); a.Video != 101 || a.Audio != 103 {
		t.Fatalf("H.265 stream: video %d audio %d, want 101 103", a.Video, a.Audio)
	}
	derived := append(slices.Clone(h265), tsframes.Track{PID: 7937, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, DerivedFrom: 101})
	if a := NewAnnouncement("s", 1, tsframes.Announcement{Tracks: derived}); a.Video != 7937 || a.Audio != 103 {
		t.Fatalf("H.265 stream with a derived H.264 track: video %d audio %d, want 7937 103", a.Video, a.Audio)
	}
}
