package rtmp

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestAnnouncesAV1AndVP9NotPlayable: an Enhanced RTMP publisher of AV1 or
// VP9 video and Opus gets its video announced (codec named, not playable
// over WebRTC) and only its Opus published, every packet.
func TestAnnouncesAV1AndVP9NotPlayable(t *testing.T) {
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	for _, c := range []struct {
		name  string
		codec codecs.Codec
		want  tsframes.Codec
	}{
		{"av1", &codecs.AV1{}, codecAV1},
		{"vp9", &codecs.VP9{}, codecVP9},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := ingesttest.NewRecorder()
			l := serve(t, Config{}, rec.Publications(t))
			u, err := url.Parse(fmt.Sprintf("rtmp://%s/live/%s", l.Addr(), c.name))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
			defer cancel()
			cl := &gortmplib.Client{URL: u, Publish: true}
			if err := cl.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			_ = cl.NetConn().SetDeadline(time.Now().Add(testDeadline))
			video := &gortmplib.Track{Codec: c.codec}
			audio := &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{Version: 1, ChannelCount: 2, InputSampleRate: 48000}}}
			w := &gortmplib.Writer{Conn: cl, Tracks: []*gortmplib.Track{video, audio}}
			if err := w.Initialize(); err != nil {
				cl.Close()
				t.Fatal(err)
			}
			opusSent := 0
			for _, f := range ref.Frames {
				pts := fromTicks(f.PTS - ref.Frames[0].PTS)
				if f.Kind == tsframes.KindVideo {
					// The payload is not looked into: any bytes are a frame.
					if c.name == "av1" {
						err = w.WriteAV1(video, pts, [][]byte{{0x12, 0x00}, {0x32, 0x01, 0x00}})
					} else {
						err = w.WriteVP9(video, pts, []byte{0x82, 0x49, 0x83, 0x42, 0x00})
					}
				} else {
					err = w.WriteOpus(audio, pts, f.Data)
					opusSent++
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			cl.Close()

			pub := rec.Opened(t, testDeadline)
			pub.WaitEnded(t, testDeadline)
			anns := pub.Announcements()
			if len(anns) != 1 || len(anns[0].Tracks) != 2 {
				t.Fatalf("announcements %+v", anns)
			}
			v, a := anns[0].Tracks[0], anns[0].Tracks[1]
			if v.Kind != tsframes.KindVideo || v.Codec != c.want || v.WebRTC {
				t.Fatalf("video track %+v, want %s announced not playable", v, c.want)
			}
			if a.Codec != tsframes.CodecOpus || !a.WebRTC {
				t.Fatalf("audio track %+v, want playable Opus", a)
			}
			for _, f := range pub.Frames() {
				if f.Kind != tsframes.KindAudio || f.Codec != tsframes.CodecOpus {
					t.Fatalf("a %s %s frame published, want Opus only", f.Kind, f.Codec)
				}
			}
			if got := len(pub.Frames()); got != opusSent {
				t.Fatalf("%d Opus packets published, want %d", got, opusSent)
			}
		})
	}
}
