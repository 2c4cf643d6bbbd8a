package rtmp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDeadline bounds every wait of a test.
const testDeadline = 20 * time.Second

// serve starts a Listener on a loopback port, serving pubs until the test
// ends.
func serve(t *testing.T, cfg Config, pubs *ingest.Publications) *Listener {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	l, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ingesttest.Serve(t, func(ctx context.Context) error { return l.Serve(ctx, pubs) })
	return l
}

// publisher is a gortmplib client publishing H.264 and Opus.
type publisher struct {
	c            *gortmplib.Client
	w            *gortmplib.Writer
	video, audio *gortmplib.Track
}

// dial connects to l and publishes on path (app/stream?query), with the SPS
// and PPS of the reference's first keyframe.
func dial(t *testing.T, l *Listener, path string, ref *tstest.Demuxed) (*publisher, error) {
	t.Helper()
	u, err := url.Parse(fmt.Sprintf("rtmp://%s/%s", l.Addr(), path))
	if err != nil {
		t.Fatal(err)
	}
	return dialURL(t, u, nil, ref)
}

// dialURL is dial to a URL (rtmp:// or, with tlsConf, rtmps://).
func dialURL(t *testing.T, u *url.URL, tlsConf *tls.Config, ref *tstest.Demuxed) (*publisher, error) {
	t.Helper()
	var sps, pps []byte
	for _, f := range ref.Kind(tsframes.KindVideo) {
		if f.Key {
			for _, n := range splitAnnexB(t, f.Data) {
				switch h264.NALUType(n[0] & 0x1F) {
				case h264.NALUTypeSPS:
					sps = n
				case h264.NALUTypePPS:
					pps = n
				}
			}
			break
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	p := &publisher{
		c:     &gortmplib.Client{URL: u, Publish: true, TLSConfig: tlsConf},
		video: &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}},
		audio: &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{Version: 1, ChannelCount: 2, InputSampleRate: 48000}}},
	}
	if err := p.c.Initialize(ctx); err != nil {
		return nil, err
	}
	_ = p.c.NetConn().SetDeadline(time.Now().Add(testDeadline))
	p.w = &gortmplib.Writer{Conn: p.c, Tracks: []*gortmplib.Track{p.video, p.audio}}
	if err := p.w.Initialize(); err != nil {
		p.c.Close()
		return nil, err
	}
	return p, nil
}

func splitAnnexB(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var au h264.AnnexB
	if err := au.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return au
}

func fromTicks(t int64) time.Duration { return time.Duration(t) * time.Second / 90000 }

// send writes the reference's frames, in order.
func (p *publisher) send(t *testing.T, frames []tsframes.Frame) {
	t.Helper()
	for _, f := range frames {
		var err error
		if f.Kind == tsframes.KindVideo {
			err = p.w.WriteH264(p.video, fromTicks(f.PTS), fromTicks(f.DTS), splitAnnexB(t, f.Data))
		} else {
			err = p.w.WriteOpus(p.audio, fromTicks(f.PTS), f.Data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// sameFrames compares what went through RTMP with the reference: the same
// access units and packets, in the same order, with RTMP's millisecond
// timestamps.
func sameFrames(t *testing.T, got, want []tsframes.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	near := func(a, b int64) bool { return a-b <= 90 && b-a <= 90 }
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || !near(g.PTS, w.PTS) || !near(g.DTS, w.DTS) || g.Key != w.Key || g.Duration != w.Duration || g.Codec != w.Codec || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("frame %d differs: got %s pts %d dts %d key %v %d bytes, want %s pts %d dts %d key %v %d bytes",
				i, g.Kind, g.PTS, g.DTS, g.Key, len(g.Data), w.Kind, w.PTS, w.DTS, w.Key, len(w.Data))
		}
	}
}

func TestPublishesH264AndOpus(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	p, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	p.send(t, ref.Frames)
	p.c.Close()

	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
	if pub.Stream != "cam1" {
		t.Errorf("stream %q, want cam1", pub.Stream)
	}
	anns := pub.Announcements()
	want := ref.Announcements[len(ref.Announcements)-1]
	if len(anns) != 1 || len(anns[0].Tracks) != 2 {
		t.Fatalf("announcements %+v", anns)
	}
	for i, tr := range anns[0].Tracks {
		w := want.Tracks[i]
		if tr.Kind != w.Kind || tr.Codec != w.Codec || !tr.WebRTC || tr.ProfileLevelID != w.ProfileLevelID {
			t.Errorf("track %d: %+v, want %+v", i, tr, w)
		}
	}
	sameFrames(t, pub.Frames(), ref.Frames)
}

func TestRefusesAtPublish(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Tokens: []string{"s3cret"}}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	for _, path := range []string{"live/cam1", "live/cam1?token=nope", "live/a.b?token=s3cret"} {
		p, err := dial(t, l, path, ref)
		if err == nil {
			p.c.Close()
			t.Errorf("%s: publishing", path)
		}
	}
	// The server counts a refusal after the client has read it.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testDeadline)
	for l.Refused() < 3 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d refused, want 3", l.Refused())
		}
	}
	if got := l.Refused(); got != 3 {
		t.Errorf("%d refused, want 3", got)
	}

	p, err := dial(t, l, "live/cam1?token=s3cret", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer p.c.Close()
	p.send(t, ref.Frames[:len(ref.Frames)/2]) // 3 s: gortmplib reads 2 s to find the tracks
	pub := rec.Opened(t, testDeadline)
	pub.WaitFrames(t, 10, testDeadline)
	if pub.Stream != "cam1" || rec.Count() != 1 {
		t.Errorf("stream %q, %d publications", pub.Stream, rec.Count())
	}
}

func TestIdlePublisherEndsItsPublication(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Idle: 300 * time.Millisecond}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	p, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer p.c.Close()
	p.send(t, ref.Frames[:len(ref.Frames)/2]) // then nothing, the connection kept open
	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
}

// TestPublishesAACAsADTS publishes H.264 and AAC: the AAC track is
// announced as not playable over WebRTC, and its access units reach the
// publication as an MPEG-TS source's do (one ADTS frame each, the source's
// PTS), for the transcoding stage.
func TestPublishesAACAsADTS(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	p, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	p.c.Close()
	// The same publisher with AAC in place of Opus.
	u, _ := url.Parse(fmt.Sprintf("rtmp://%s/live/cam1", l.Addr()))
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	aac := &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{p.video, aac}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	video := ref.Kind(tsframes.KindVideo)
	for _, f := range video {
		if err := w.WriteH264(p.video, fromTicks(f.PTS), fromTicks(f.DTS), splitAnnexB(t, f.Data)); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(aac, fromTicks(f.PTS), []byte{0x21, 0x10, 0x04}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
	anns := pub.Announcements()
	if len(anns) != 1 || len(anns[0].Tracks) != 2 {
		t.Fatalf("announcements %+v", anns)
	}
	if a := anns[0].Tracks[1]; a.Codec != tsframes.CodecAAC || a.WebRTC || a.SampleRate != 48000 || a.Channels != 2 {
		t.Errorf("audio track %+v, want AAC 48 kHz stereo, not WebRTC", a)
	}
	// Both tracks go through RTMP's millisecond timestamps: each AAC unit
	// was sent with the timestamp of a video frame.
	var gotVideo, gotAAC int
	var videoTimes []int64
	for _, f := range pub.Frames() {
		if f.Kind == tsframes.KindVideo {
			videoTimes = append(videoTimes, f.DTS)
		}
	}
	for _, f := range pub.Frames() {
		switch {
		case f.Kind == tsframes.KindVideo:
			gotVideo++
		case f.Codec == tsframes.CodecAAC && f.PID == anns[0].Tracks[1].PID:
			if gotAAC >= len(videoTimes) {
				t.Fatalf("more AAC frames than the %d video frames", len(videoTimes))
			}
			var pkts mpeg4audio.ADTSPackets
			if err := pkts.Unmarshal(f.Data); err != nil || len(pkts) != 1 {
				t.Fatalf("AAC frame %x: %v, %d ADTS packets", f.Data, err, len(pkts))
			}
			p := pkts[0]
			if p.Type != mpeg4audio.ObjectTypeAACLC || p.SampleRate != 48000 || p.ChannelConfig != 2 || !bytes.Equal(p.AU, []byte{0x21, 0x10, 0x04}) {
				t.Fatalf("ADTS packet %+v, want AAC-LC 48 kHz stereo with the unit sent", p)
			}
			if want := videoTimes[gotAAC]; f.PTS != want || f.DTS != want {
				t.Fatalf("AAC frame %d: PTS %d DTS %d, want %d", gotAAC, f.PTS, f.DTS, want)
			}
			gotAAC++
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
	if gotVideo != len(video) || gotAAC != len(video) {
		t.Errorf("%d video and %d AAC frames published, want %d of each", gotVideo, gotAAC, len(video))
	}
}

func TestHostileConnectionsDoNotDisturbOthers(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{HandshakeTimeout: 500 * time.Millisecond}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	// A publisher that is live while the others come and go.
	p, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer p.c.Close()
	p.send(t, ref.Frames[:len(ref.Frames)/2])
	pub := rec.Opened(t, testDeadline)

	// Garbage instead of a handshake, and a connection that sends nothing:
	// both are cut (the server closes them: Read ends).
	for _, payload := range [][]byte{bytes.Repeat([]byte{0xff}, 4096), nil} {
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(testDeadline))
		if payload != nil {
			_, _ = conn.Write(payload)
		}
		// Closed with unread bytes, the connection may end with a reset.
		if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%d bytes sent: %v, want the server to close the connection", len(payload), err)
		}
		conn.Close()
	}
	if got := l.Refused(); got != 2 {
		t.Errorf("%d refused, want 2", got)
	}

	p.send(t, ref.Frames[len(ref.Frames)/2:])
	p.c.Close()
	pub.WaitEnded(t, testDeadline)
	if got := len(pub.Frames()); got != len(ref.Frames) {
		t.Errorf("the live publisher published %d frames, want %d", got, len(ref.Frames))
	}
}

func TestSecondPublisherTakesOver(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	half := ref.Frames[:len(ref.Frames)/2]

	first, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer first.c.Close()
	first.send(t, half)
	p1 := rec.Opened(t, testDeadline)

	second, err := dial(t, l, "other/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer second.c.Close()
	second.send(t, half)
	p2 := rec.Opened(t, testDeadline)
	p1.WaitEnded(t, testDeadline)
	p2.WaitFrames(t, 10, testDeadline)
	if p2.Epoch <= p1.Epoch {
		t.Errorf("epoch %d after %d", p2.Epoch, p1.Epoch)
	}
	// The first publisher's connection is ended.
	_ = first.c.NetConn().SetReadDeadline(time.Now().Add(testDeadline))
	if _, err := io.Copy(io.Discard, first.c.NetConn()); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the publisher taken over is still connected")
	}
}
