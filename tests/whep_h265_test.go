package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/nats-io/nats.go"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The video codecs a codecClient can offer: H.265 Main as Chrome offers it
// with hardware decoding, and H.264 constrained baseline.
var (
	offerH265 = webrtc.RTPCodecParameters{PayloadType: 49, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH265, ClockRate: 90000, SDPFmtpLine: "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}}
	offerH264 = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}}
)

// codecClient is a pion WHEP player on 127.0.0.1 that offers only the given
// video codecs (and Opus), and records the video RTP packets it receives.
type codecClient struct {
	pc        *webrtc.PeerConnection
	connected chan struct{}
	closed    chan struct{}

	mu      sync.Mutex
	mime    string // of the video track
	packets []*rtp.Packet
}

func newCodecClient(t *testing.T, video ...webrtc.RTPCodecParameters) *codecClient {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	opus := webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(piontest.Loopback()), webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	c := &codecClient{pc: pc, connected: make(chan struct{}), closed: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = pc.GracefulClose()
		wg.Wait()
	})
	var once1, once2 sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once1.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			once2.Do(func() { close(c.closed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		c.mu.Lock()
		c.mime = tr.Codec().MimeType
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				buf := make([]byte, 1500)
				n, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				p := &rtp.Packet{}
				if err := p.Unmarshal(buf[:n]); err != nil {
					continue
				}
				c.mu.Lock()
				c.packets = append(c.packets, p)
				c.mu.Unlock()
			}
		}()
	})
	return c
}

// play POSTs c's offer for stream, applies the answer and waits for the
// connection; it returns the answer.
func (c *codecClient) play(t *testing.T, ctx context.Context, url, stream string) string {
	t.Helper()
	resp, body := whepPost(t, ctx, url+"/whep/"+stream, piontest.Offer(t, c.pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s = %d %q", stream, resp.StatusCode, body)
	}
	piontest.Answer(t, c.pc, body)
	select {
	case <-c.connected:
	case <-c.closed:
		t.Fatal("connection failed")
	case <-ctx.Done():
		t.Fatal("not connected")
	}
	return body
}

// accessUnits returns the video access units received so far (up to the
// last packet with the marker bit), as NAL units, depacketized by pion's
// H.264 or H.265 depacketizer; the test fails on a sequence number gap.
func (c *codecClient) accessUnits(t *testing.T) (mime string, aus [][][]byte, timestamps []uint32) {
	t.Helper()
	c.mu.Lock()
	mime, packets := c.mime, append([]*rtp.Packet(nil), c.packets...)
	c.mu.Unlock()
	var dep interface {
		Unmarshal([]byte) ([]byte, error)
	}
	switch mime {
	case webrtc.MimeTypeH265:
		dep = &codecs.H265Depacketizer{}
	case webrtc.MimeTypeH264:
		dep = &codecs.H264Packet{}
	default:
		return mime, nil, nil
	}
	var annexB []byte
	for i, p := range packets {
		if i > 0 && p.SequenceNumber != packets[i-1].SequenceNumber+1 {
			t.Fatalf("%s: sequence number %d after %d", mime, p.SequenceNumber, packets[i-1].SequenceNumber)
		}
		b, err := dep.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("%s: depacketizing packet %d: %v", mime, i, err)
		}
		annexB = append(annexB, b...)
		if !p.Marker {
			continue
		}
		var au h264.AnnexB // the same byte stream format for H.265
		if err := au.Unmarshal(annexB); err != nil {
			t.Fatalf("%s: access unit %d: %v", mime, len(aus), err)
		}
		aus = append(aus, au)
		timestamps = append(timestamps, p.Timestamp)
		annexB = nil
	}
	return mime, aus, timestamps
}

// waitAccessUnits waits until c has received n access units of mime and
// returns them.
func (c *codecClient) waitAccessUnits(t *testing.T, ctx context.Context, mime string, n int) ([][][]byte, []uint32) {
	t.Helper()
	var aus [][][]byte
	var ts []uint32
	whepWait(t, ctx, fmt.Sprintf("%d %s access units", n, mime), func() bool {
		var got string
		got, aus, ts = c.accessUnits(t)
		if got != "" && got != mime {
			t.Fatalf("video track is %s, want %s", got, mime)
		}
		return len(aus) >= n
	})
	return aus, ts
}

// videoNALs returns the NAL units of every video frame of d.
func videoNALs(t *testing.T, d *tstest.Demuxed) [][][]byte {
	t.Helper()
	var out [][][]byte
	for _, f := range d.Kind(tsframes.KindVideo) {
		var au h264.AnnexB
		if err := au.Unmarshal(f.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, au)
	}
	return out
}

// sameAccessUnits checks that got are consecutive access units of src
// (which loops), byte for byte, from a keyframe on, with increasing RTP
// timestamps.
func sameAccessUnits(t *testing.T, what string, src, got [][][]byte, ts []uint32) {
	t.Helper()
	k := -1
	for i := range src {
		if slices.EqualFunc(src[i], got[0], bytes.Equal) {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatalf("%s: the first access unit received (%d NAL units) is none of the source's", what, len(got[0]))
	}
	if k%30 != 0 {
		t.Errorf("%s: starts at source frame %d, not at a keyframe (every 30 frames)", what, k)
	}
	for i := range got {
		if want := src[(k+i)%len(src)]; !slices.EqualFunc(want, got[i], bytes.Equal) {
			t.Fatalf("%s: access unit %d differs from source frame %d", what, i, (k+i)%len(src))
		}
		if i > 0 && int32(ts[i]-ts[i-1]) <= 0 {
			t.Fatalf("%s: RTP timestamp %d after %d", what, ts[i], ts[i-1])
		}
	}
}

// TestWHEPH265ToViewersThatOfferIt: a stream whose video is H.265 (the
// fixture hevc.ts) is sent as it is to a pion viewer that offers H.265: the
// access units it depacketizes are the source's, byte for byte, from a
// keyframe on. A viewer that offers only H.264 video is refused with 422
// and says why; one that offers H.264 and Opus gets the audio only.
func TestWHEPH265ToViewersThatOfferIt(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), nil)
	src := videoNALs(t, tstest.Demux(t, tstest.Read(t, "hevc.ts")))
	p := whepPublish(t, connect(), "hevc", "hevc.ts")
	select {
	case <-p.announced:
	case <-ctx.Done():
		t.Fatal("hevc.ts not announced")
	}

	c := newCodecClient(t, offerH265)
	answer := c.play(t, ctx, url, "hevc")
	video := mediaSection(answer, "video")
	if !strings.Contains(video, "H265/90000") || strings.Contains(video, "H264/90000") || !strings.Contains(video, "a=sendonly") {
		t.Fatalf("answer's video section:\n%s", video)
	}
	aus, ts := c.waitAccessUnits(t, ctx, webrtc.MimeTypeH265, 20)
	sameAccessUnits(t, "H.265 viewer", src, aus, ts)

	// H.264 only: nothing to play.
	h264Only := newCodecClient(t, offerH264)
	resp, body := whepPost(t, ctx, url+"/whep/hevc", piontest.Offer(t, h264Only.pc))
	const why = `video is H265 (profile-id=1, tier-flag=0), which the offer's video section does not accept, and the stream has no H264 rendition`
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, why) {
		t.Fatalf("POST with an H.264-only offer = %d %q, want 422 saying %q", resp.StatusCode, body, why)
	}
	// H.264 and Opus: the audio plays, the video section is unused.
	h264AV := newCodecClient(t, offerH264)
	if _, err := h264AV.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	answer = h264AV.play(t, ctx, url, "hevc")
	if !unused(mediaSection(answer, "video")) || unused(mediaSection(answer, "audio")) {
		t.Fatalf("answer to an H.264 + Opus offer, want the audio only:\n%s", answer)
	}
}

// TestWHEPH265RenditionForViewersWithoutH265: when the announcement has an
// H.264 track derived from the H.265 one (what a transcoding stage
// publishes; here the test publishes video.ts's access units under the
// derived track, on the H.265 frames' timestamps), a viewer that offers
// H.265 gets the H.265 access units and one that offers only H.264 gets the
// H.264 ones, each byte for byte, from the same node at the same time.
func TestWHEPH265RenditionForViewersWithoutH265(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), nil)
	hevc := tstest.Demux(t, tstest.Read(t, "hevc.ts"))
	avc := tstest.Demux(t, tstest.Read(t, "video.ts"))
	announced := publishWithRendition(t, connect(), "rendition", hevc, avc)
	select {
	case <-announced:
	case <-ctx.Done():
		t.Fatal("not announced")
	}

	c265 := newCodecClient(t, offerH265, offerH264)
	answer := c265.play(t, ctx, url, "rendition")
	if v := mediaSection(answer, "video"); !strings.Contains(v, "H265/90000") {
		t.Fatalf("answer to an H.265 + H.264 offer:\n%s", v)
	}
	c264 := newCodecClient(t, offerH264)
	answer = c264.play(t, ctx, url, "rendition")
	if v := mediaSection(answer, "video"); !strings.Contains(v, "H264/90000") || strings.Contains(v, "H265/90000") {
		t.Fatalf("answer to an H.264 offer:\n%s", v)
	}
	aus, ts := c265.waitAccessUnits(t, ctx, webrtc.MimeTypeH265, 20)
	sameAccessUnits(t, "H.265 viewer", videoNALs(t, hevc), aus, ts)
	aus, ts = c264.waitAccessUnits(t, ctx, webrtc.MimeTypeH264, 20)
	sameAccessUnits(t, "H.264 viewer", videoNALs(t, avc), aus, ts)
}

// derivedVideoPID is the PID of the test's derived H.264 track.
const derivedVideoPID = 7937

// publishWithRendition publishes hevc's frames in real time, three times in
// a row, as a transcoding stage would leave them with a derived H.264
// rendition (docs/bus.md, "Video selection" and "Derived video"): the
// announcement lists an H.264 track derived from the H.265 one, the H.265
// frames go out under the derived track's PID (their codec says H265), and
// a bus.TrackPublisher follows each with the H.264 frame of the same index
// of avc (Whepcast-Derived), on its timestamps. The returned channel is
// closed once announced.
func publishWithRendition(t *testing.T, nc *nats.Conn, stream string, hevc, avc *tstest.Demuxed) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := bus.NewPublisher(ctx, nc, stream, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}})
	if err != nil {
		t.Fatal(err)
	}
	derived, err := bus.NewTrackPublisher(nc, stream, pub.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	ann := hevc.Announcements[0]
	ann.Tracks = append([]tsframes.Track(nil), ann.Tracks...)
	src := ann.Tracks[0]
	if src.Codec != tsframes.CodecH265 {
		t.Fatalf("hevc.ts's first track is %+v", src)
	}
	ann.Tracks = append(ann.Tracks, tsframes.Track{PID: derivedVideoPID, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true,
		ProfileLevelID: avc.Announcements[0].Tracks[0].ProfileLevelID, DerivedFrom: src.PID})
	h265Frames, h264Frames := hevc.Kind(tsframes.KindVideo), avc.Kind(tsframes.KindVideo)
	if len(h264Frames) < len(h265Frames) {
		t.Fatalf("%d H.264 frames for %d H.265 frames", len(h264Frames), len(h265Frames))
	}
	span := h265Frames[len(h265Frames)-1].PTS - h265Frames[0].PTS + 3000
	announced := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if err := pub.Announce(ctx, ann); err != nil {
				return err
			}
			close(announced)
			start, first := time.Now(), hevc.Frames[0].DTS
			for loop := range int64(3) {
				n := 0
				for _, f := range hevc.Frames {
					f.PTS, f.DTS = f.PTS+loop*span, f.DTS+loop*span
					due := start.Add(time.Duration(f.DTS-first) * time.Second / 90000)
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return ctx.Err()
					}
					if f.Kind == tsframes.KindVideo {
						f.PID = derivedVideoPID
					}
					if err := pub.Publish(ctx, f); err != nil {
						return err
					}
					if f.Kind == tsframes.KindVideo {
						g := h264Frames[n]
						n++
						g.PID, g.PTS, g.DTS = derivedVideoPID, f.PTS, f.DTS
						if err := derived.Publish(g); err != nil {
							return err
						}
					}
				}
			}
			return nil
		}()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("publishing %s: %v", stream, err)
		}
		derived.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := pub.Shutdown(cctx); err != nil {
			t.Errorf("closing the publisher: %v", err)
		}
	})
	return announced
}
