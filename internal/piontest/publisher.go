package piontest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Publisher is a send-only pion peer with an H.264 and an Opus track (a
// WHIP client), on loopback, with pion's default interceptors (NACK
// responder, RTCP sender reports). The test's cleanup closes it.
//
// Its sender reports read the media clock, as a browser's do, not the
// wall clock: Send sets it to each frame's PTS (on the time Send started)
// before writing the frame. pion's own clock would anchor each track's
// report on the moment its last packet was written, so that the sender's
// scheduling delays (tens of milliseconds under -race on a loaded machine)
// would move audio against video in the reports.
type Publisher struct {
	PC           *webrtc.PeerConnection
	Video, Audio *webrtc.TrackLocalStaticSample
	// Connected is closed when the connection is up.
	Connected chan struct{}

	clock atomic.Int64 // the media clock in Unix ns (0: the wall clock)
}

// now is the sender reports' clock.
func (p *Publisher) now() time.Time {
	if ns := p.clock.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Now()
}

// NewPublisher returns a Publisher; tune, when not nil, adjusts its
// SettingEngine.
func NewPublisher(t testing.TB, tune func(*webrtc.SettingEngine)) *Publisher {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	p := &Publisher{Connected: make(chan struct{})}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir, webrtc.WithReportSenderOptions(report.SenderNow(p.now))); err != nil {
		t.Fatal(err)
	}
	se := Loopback()
	if tune != nil {
		tune(&se)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	p.PC = pc
	connected := false
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected && !connected {
			connected = true
			close(p.Connected)
		}
	})
	p.Video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
		ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "piontest")
	if err != nil {
		t.Fatal(err)
	}
	p.Audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "piontest")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.Video, p.Audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// WaitConnected waits for the connection, for at most timeout.
func (p *Publisher) WaitConnected(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Connected:
	case <-time.After(timeout):
		t.Fatal("piontest: the publisher did not connect")
	}
}

// Send writes frames (H.264 access units and Opus packets, as tsframes
// delivers them) in order, paced at speed times real time by their PTS;
// each sample lasts until the next of its kind.
func (p *Publisher) Send(t testing.TB, frames []tsframes.Frame, speed int) {
	t.Helper()
	if len(frames) == 0 {
		return
	}
	next := func(i int) int64 {
		for j := i + 1; j < len(frames); j++ {
			if frames[j].Kind == frames[i].Kind {
				return frames[j].PTS - frames[i].PTS
			}
		}
		if frames[i].Kind == tsframes.KindAudio {
			return frames[i].Duration
		}
		return 3000
	}
	start := time.Now()
	first := frames[0].PTS
	for i, f := range frames {
		due := start.Add(time.Duration((f.PTS-first)*int64(time.Second)/90000) / time.Duration(speed))
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the source, not waiting for an event
		}
		p.clock.Store(start.Add(time.Duration((f.PTS - first) * int64(time.Second) / 90000)).UnixNano())
		// Rounded up: pion truncates the duration's ticks.
		s := media.Sample{Data: f.Data, Duration: time.Duration((next(i)*int64(time.Second) + 89999) / 90000)}
		tr := p.Video
		if f.Kind == tsframes.KindAudio {
			tr = p.Audio
		}
		if err := tr.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
}
