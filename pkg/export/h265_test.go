package export

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestExportTSOfH265: an H.265 stream (hevc.ts) exports as MPEG-TS with its
// H.265 access units, byte for byte, from the keyframe at or before the
// range's start, and its Opus.
func TestExportTSOfH265(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "hevc", "hevc.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	from, to := s.video[40].Published, s.video[100].Published
	resp, body := get(t, srv.URL+"/export/hevc.ts?from="+rfc(from)+"&to="+rfc(to), nil)
	if resp.StatusCode != http.StatusOK || resp.Trailer.Get(TrailerEnd) != "range" {
		t.Fatalf("status %d, %s %q: %s", resp.StatusCode, TrailerEnd, resp.Trailer.Get(TrailerEnd), body)
	}
	got := tstest.Demux(t, body)
	if v := got.Announcements[0].Tracks[0]; v.Codec != tsframes.CodecH265 || v.ProfileID != 1 {
		t.Fatalf("exported video track %+v, want H.265 Main", v)
	}
	want := s.between(from, to)
	if f := got.Frames[0]; f.Kind != tsframes.KindVideo || !f.Key {
		t.Fatalf("first frame: %s key=%v, want a keyframe", f.Kind, f.Key)
	}
	for _, k := range []tsframes.Kind{tsframes.KindVideo, tsframes.KindAudio} {
		w, g := kind(want, k), got.Kind(k)
		if len(g) != len(w) || len(w) == 0 {
			t.Fatalf("%s: exported %d frames, the bus holds %d in the range", k, len(g), len(w))
		}
		for i := range w {
			if !bytes.Equal(g[i].Data, w[i].Data) || g[i].PTS != w[i].PTS || g[i].Key != w[i].Key {
				t.Fatalf("%s frame %d: pts %d key=%v %d bytes, want pts %d key=%v %d bytes",
					k, i, g[i].PTS, g[i].Key, len(g[i].Data), w[i].PTS, w[i].Key, len(w[i].Data))
			}
		}
	}

	// fMP4 is H.264 only: nothing is written and the trailer says why.
	resp, body = get(t, srv.URL+"/export/hevc.mp4?from="+rfc(from)+"&to="+rfc(to), nil)
	if end := resp.Trailer.Get(TrailerEnd); resp.StatusCode != http.StatusOK || len(body) != 0 || end != "error: "+errH265MP4.Error() {
		t.Fatalf("fMP4: status %d, %d bytes, %s %q", resp.StatusCode, len(body), TrailerEnd, end)
	}
}
