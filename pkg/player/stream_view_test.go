package player

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestStreamsJSON(t *testing.T) {
	h := Handler(newFakeLister(avEntry("demo"), aacEntry("cam")), nil)
	rec := get(t, h, "GET", "/streams")
	var got []StreamView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	if len(got) != 2 {
		t.Fatalf("%d streams, want 2", len(got))
	}
	demo, cam := got[0], got[1]
	if demo.Stream != "demo" || demo.Epoch != "1740830400000000001" || !demo.Playable || demo.Play != "play/demo" || len(demo.Notes) != 0 {
		t.Errorf("demo view %+v", demo)
	}
	if !demo.Started.Equal(t0) || demo.Stats.Frames != 30 {
		t.Errorf("demo started %v stats %+v", demo.Started, demo.Stats)
	}
	wantTracks := []TrackView{
		{PID: 256, Kind: "video", Codec: "H264", Detail: "42c01e", Carried: true},
		{PID: 257, Kind: "audio", Codec: "Opus", Detail: "2 ch, 48000 Hz", Carried: true},
	}
	if len(demo.Tracks) != 2 || demo.Tracks[0] != wantTracks[0] || demo.Tracks[1] != wantTracks[1] {
		t.Errorf("demo tracks %+v, want %+v", demo.Tracks, wantTracks)
	}
	if !cam.Playable || len(cam.Notes) != 1 || cam.Notes[0] != "AAC audio cannot be played over WebRTC" || cam.Tracks[1].Carried {
		t.Errorf("cam view %+v", cam)
	}
	// The epoch is JSON text, not a number.
	if !strings.Contains(rec.Body.String(), `"epoch":"1740830400000000001"`) {
		t.Errorf("epoch not sent as a string: %s", rec.Body.String())
	}
}

func TestViewOf(t *testing.T) {
	hevcAAC := avEntry("x")
	hevcAAC.Tracks.Tracks = []tsframes.Track{
		{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265},
		{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC},
		{PID: 258, Kind: tsframes.KindData, Codec: tsframes.CodecKLV},
	}
	hevcAAC.Tracks.Video, hevcAAC.Tracks.Audio = 0, 0
	v := viewOf(hevcAAC, t0)
	want := []string{
		"Not playable: the stream has no H.264 video or Opus audio",
		"H265 video cannot be played over WebRTC",
		"AAC audio cannot be played over WebRTC",
	}
	if v.Playable || strings.Join(v.Notes, "|") != strings.Join(want, "|") {
		t.Errorf("notes %q playable %v, want %q false", v.Notes, v.Playable, want)
	}

	// Without Video/Audio PIDs, the first WebRTC track of each kind is carried.
	twoOpus := avEntry("y")
	twoOpus.Tracks.Video, twoOpus.Tracks.Audio = 0, 0
	twoOpus.Tracks.Tracks = append(twoOpus.Tracks.Tracks, tsframes.Track{PID: 258, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true})
	v = viewOf(twoOpus, t0)
	if !v.Playable || !v.Tracks[0].Carried || !v.Tracks[1].Carried || v.Tracks[2].Carried {
		t.Errorf("carried %+v", v.Tracks)
	}
	if len(v.Notes) != 1 || v.Notes[0] != "Opus audio (PID 258) is not carried: only the first audio track is" {
		t.Errorf("notes %q", v.Notes)
	}

	// No tracks at all (an announcement not seen yet).
	v = viewOf(bus.CatalogEntry{Stream: "z", State: bus.StateLive}, t0)
	if v.Playable || v.Tracks == nil || len(v.Tracks) != 0 || len(v.Notes) != 1 || v.Notes[0] != "Waiting for the stream's tracks" {
		t.Errorf("empty view %+v", v)
	}
	// An invalid name gets no player link.
	if v := viewOf(bus.CatalogEntry{Stream: "a/b"}, t0); v.Play != "" {
		t.Errorf("play link %q for an invalid name", v.Play)
	}
}
