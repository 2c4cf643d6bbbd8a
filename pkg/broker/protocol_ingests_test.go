package broker

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	gosrt "github.com/datarhei/gosrt"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestSRTAndRTMPIngestsReachTheBus publishes a fixture over SRT and its
// video over RTMP through a broker, and finds the frames on the bus.
func TestSRTAndRTMPIngestsReachTheBus(t *testing.T) {
	data := readFixture(t, "av.ts")
	want := demux(t, data)
	b := startBroker(t, testConfig(t, "--storage", "memory", "--srt-addr", "127.0.0.1:0", "--rtmp-addr", "127.0.0.1:0"), Options{})

	// SRT: the TS, paced as a live sender paces it.
	c := gosrt.DefaultConfig()
	c.StreamId = "publish:srtcam"
	conn, err := gosrt.Dial("srt", b.SRTAddr().String(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for rest := data; len(rest) > 0; {
		<-tick.C
		n := min(len(rest), 1316)
		if _, err := conn.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	// The last frames are delivered at the end of the input.
	msgs := subscribe(t, b.Conn(), "srtcam", countFrames(nil, len(want.Frames)-4))
	got := framesOf(msgs, 0)
	sameFramesPrefix(t, got, want.Frames)

	// RTMP: the video access units.
	video := want.Kind(tsframes.KindVideo)
	var au h264.AnnexB
	if err := au.Unmarshal(video[0].Data); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(fmt.Sprintf("rtmp://%s/live/rtmpcam", b.RTMPAddr()))
	rc := &gortmplib.Client{URL: u, Publish: true}
	if err := rc.Initialize(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	track := &gortmplib.Track{Codec: &codecs.H264{SPS: au[0], PPS: au[1]}}
	w := &gortmplib.Writer{Conn: rc, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	for _, f := range video {
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(f.Data); err != nil {
			t.Fatal(err)
		}
		pts := time.Duration(f.PTS) * time.Second / 90000
		if err := w.WriteH264(track, pts, time.Duration(f.DTS)*time.Second/90000, nalus); err != nil {
			t.Fatal(err)
		}
	}
	msgs = subscribe(t, b.Conn(), "rtmpcam", countFrames(nil, len(video)))
	for i, f := range framesOf(msgs, 0) {
		if f.Key != video[i].Key || len(f.Data) != len(video[i].Data) {
			t.Fatalf("rtmp frame %d: key %v %d bytes, want key %v %d bytes", i, f.Key, len(f.Data), video[i].Key, len(video[i].Data))
		}
	}
}
