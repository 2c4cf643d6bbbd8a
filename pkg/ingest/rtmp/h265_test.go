package rtmp

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestPublishesH265AndOpus: an Enhanced RTMP publisher of H.265 (hevc.ts's
// access units, its VPS, SPS and PPS in the configuration) and Opus gets the
// same announcement and frames as the MPEG-TS demuxer makes of the fixture:
// the H.265 track with its profile, WebRTC set, every access unit byte for
// byte.
func TestPublishesH265AndOpus(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "hevc.ts"))

	var vps, sps, pps []byte
	for _, f := range ref.Kind(tsframes.KindVideo) {
		if f.Key {
			for _, n := range splitAnnexB(t, f.Data) {
				switch h265.NALUType(n[0] >> 1 & 0x3f) {
				case h265.NALUType_VPS_NUT:
					vps = n
				case h265.NALUType_SPS_NUT:
					sps = n
				case h265.NALUType_PPS_NUT:
					pps = n
				}
			}
			break
		}
	}
	u, err := url.Parse(fmt.Sprintf("rtmp://%s/live/cam265", l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.NetConn().SetDeadline(time.Now().Add(testDeadline))
	video := &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
	audio := &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{Version: 1, ChannelCount: 2, InputSampleRate: 48000}}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	for _, f := range ref.Frames {
		if f.Kind == tsframes.KindVideo {
			err = w.WriteH265(video, fromTicks(f.PTS), fromTicks(f.DTS), splitAnnexB(t, f.Data))
		} else {
			err = w.WriteOpus(audio, fromTicks(f.PTS), f.Data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
	anns := pub.Announcements()
	want := ref.Announcements[len(ref.Announcements)-1]
	if len(anns) != 1 || len(anns[0].Tracks) != 2 {
		t.Fatalf("announcements %+v", anns)
	}
	for i, tr := range anns[0].Tracks {
		w := want.Tracks[i]
		if tr.Kind != w.Kind || tr.Codec != w.Codec || !tr.WebRTC || tr.ProfileID != w.ProfileID || tr.TierFlag != w.TierFlag || tr.LevelID != w.LevelID {
			t.Errorf("track %d: %+v, want %+v", i, tr, w)
		}
	}
	sameFrames(t, pub.Frames(), ref.Frames)
}
