package bus

import (
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
	if n := NewAnnouncement("s", 1, tsframes.Announcement{Tracks: in.Tracks[:2]}); n.Video != 0 || n.Audio != 0 {
		t.Fatalf("no WebRTC track: video %d audio %d, want 0 0", n.Video, n.Audio)
	}
}
