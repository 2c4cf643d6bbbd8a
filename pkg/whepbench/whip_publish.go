package whepbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// WHIPPublishConfig configures PublishWHIP.
type WHIPPublishConfig struct {
	// URL is the WHIP endpoint prefix the stream names are appended to
	// (http://host:8080/whip/); the streams are Prefix+"0" ...
	// Prefix+(Streams-1), Prefix defaulting to "bench-".
	URL     string
	Prefix  string
	Streams int
	// File is an MPEG-TS file of H.264 (packetization-mode 1 is sent) and
	// Opus, looped by every stream in real time.
	File []byte
	// Duration is the whole run; the streams start spread over Stagger
	// (default 1 s).
	Duration time.Duration
	Stagger  time.Duration
	// Token is the ingest's Bearer token.
	Token  string
	Logger *slog.Logger
}

// WHIPPublishReport is the outcome of PublishWHIP.
type WHIPPublishReport struct {
	Streams   int            `json:"streams"`
	Connected int            `json:"connected"`
	Failed    int            `json:"failed"`
	Failures  map[string]int `json:"failures,omitempty"`
	// VideoFrames and AudioFrames count the samples written, Bytes their
	// payload, PLIs the keyframe requests received.
	VideoFrames int64 `json:"video_frames"`
	AudioFrames int64 `json:"audio_frames"`
	Bytes       int64 `json:"bytes"`
	PLIs        int64 `json:"plis"`
	// FileBitrate is the bit rate of the file's media (bits per second).
	FileBitrate float64 `json:"file_bitrate"`
}

// WriteText writes the report as a table.
func (r WHIPPublishReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "streams  connected  failed  video frames  audio frames  MB sent  PLIs  file kb/s\n%7d  %9d  %6d  %12d  %12d  %7.1f  %4d  %9.0f\n",
		r.Streams, r.Connected, r.Failed, r.VideoFrames, r.AudioFrames, float64(r.Bytes)/1e6, r.PLIs, r.FileBitrate/1000)
	for msg, n := range r.Failures {
		if err == nil {
			_, err = fmt.Fprintf(w, "failure (%d): %s\n", n, msg)
		}
	}
	return err
}

// whipSource is the file's media: H.264 access units and Opus packets in
// PTS order, each with its duration, and the length of one loop.
type whipSource struct {
	frames []tsframes.Frame
	durs   []time.Duration
	loop   int64 // 90 kHz
}

func newWHIPSource(ctx context.Context, file []byte) (*whipSource, float64, error) {
	var sink frameSink
	if err := tsframes.NewDemuxer(bytes.NewReader(file), tsframes.Options{}).Run(ctx, &sink); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrTS, err)
	}
	s := &whipSource{}
	var size int64
	for _, f := range sink.frames {
		if f.Codec == tsframes.CodecH264 || f.Codec == tsframes.CodecOpus {
			s.frames = append(s.frames, f)
			size += int64(len(f.Data))
		}
	}
	if len(s.frames) < 2 {
		return nil, 0, fmt.Errorf("%w: no H.264 or Opus to send", ErrTS)
	}
	first, last := s.frames[0].PTS, s.frames[len(s.frames)-1].PTS
	s.loop = last - first + 3000
	s.durs = make([]time.Duration, len(s.frames))
	for i, f := range s.frames {
		next := int64(3000)
		if f.Kind == tsframes.KindAudio {
			next = f.Duration
		}
		for j := i + 1; j < len(s.frames); j++ {
			if s.frames[j].Kind == f.Kind {
				next = s.frames[j].PTS - f.PTS
				break
			}
		}
		s.durs[i] = time.Duration((next*int64(time.Second) + 89999) / 90000)
	}
	return s, float64(size*8) / (float64(s.loop) / 90000), nil
}

type frameSink struct{ frames []tsframes.Frame }

func (s *frameSink) Tracks(tsframes.Announcement) error { return nil }
func (s *frameSink) Frame(f tsframes.Frame) error {
	s.frames = append(s.frames, f)
	return nil
}

// PublishWHIP runs cfg.Streams WHIP publishers (pion, H.264 + Opus) that
// loop cfg.File in real time for cfg.Duration, then DELETE their
// resources. Errors: ErrConfig, ErrTS; failing publishers are counted.
func PublishWHIP(ctx context.Context, cfg WHIPPublishConfig) (rep WHIPPublishReport, err error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "bench-"
	}
	if cfg.Streams < 1 || cfg.Streams > MaxStreams {
		return rep, fmt.Errorf("%w: streams %d not in [1, %d]", ErrConfig, cfg.Streams, MaxStreams)
	}
	if _, err := url.Parse(cfg.URL); err != nil || cfg.URL == "" {
		return rep, fmt.Errorf("%w: WHIP URL %q", ErrConfig, cfg.URL)
	}
	if cfg.Duration <= 0 {
		return rep, fmt.Errorf("%w: duration %s", ErrConfig, cfg.Duration)
	}
	if cfg.Stagger == 0 {
		cfg.Stagger = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	src, bitrate, err := newWHIPSource(ctx, cfg.File)
	if err != nil {
		return rep, err
	}
	rep.Streams, rep.FileBitrate = cfg.Streams, bitrate

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu                             sync.Mutex
		wg                             sync.WaitGroup
		video, audio, sent, plis, conn atomic.Int64
	)
	rep.Failures = map[string]int{}
	for i := range cfg.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.NewTimer(cfg.Stagger * time.Duration(i) / time.Duration(cfg.Streams))
			defer start.Stop()
			select {
			case <-start.C:
			case <-ctx.Done():
				return
			}
			p := whipPublisher{cfg: cfg, stream: fmt.Sprintf("%s%d", cfg.Prefix, i), src: src,
				video: &video, audio: &audio, bytes: &sent, plis: &plis, connected: &conn}
			if err := p.run(ctx); err != nil {
				cfg.Logger.Warn("WHIP publisher failed", "stream", p.stream, "err", err)
				mu.Lock()
				rep.Failed++
				rep.Failures[err.Error()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.VideoFrames, rep.AudioFrames, rep.Bytes, rep.PLIs = video.Load(), audio.Load(), sent.Load(), plis.Load()
	rep.Connected = int(conn.Load())
	if len(rep.Failures) == 0 {
		rep.Failures = nil
	}
	return rep, nil
}

// whipPublisher is one stream of PublishWHIP.
type whipPublisher struct {
	cfg                                  WHIPPublishConfig
	stream                               string
	src                                  *whipSource
	video, audio, bytes, plis, connected *atomic.Int64
}

// run publishes until ctx ends (nil) or the publication fails.
func (p *whipPublisher) run(ctx context.Context) error {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return err
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	var readers sync.WaitGroup
	defer func() {
		_ = pc.Close()
		readers.Wait()
	}()
	vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", p.stream)
	if err != nil {
		return err
	}
	at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", p.stream)
	if err != nil {
		return err
	}
	for _, tr := range []*webrtc.TrackLocalStaticSample{vt, at} {
		tc, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				pkts, _, err := tc.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					if _, ok := pkt.(*rtcp.PictureLossIndication); ok {
						p.plis.Add(1)
					}
				}
			}
		}()
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	loc, err := p.signal(ctx, pc)
	if err != nil {
		return err
	}
	defer p.deleteResource(loc)
	setup := time.NewTimer(DefaultConnectTimeout)
	defer setup.Stop()
	select {
	case <-connected:
		p.connected.Add(1)
	case <-setup.C:
		return fmt.Errorf("not connected within %s", DefaultConnectTimeout)
	case <-ctx.Done():
		return nil
	}
	return p.send(ctx, vt, at)
}

// signal sends the offer and applies the answer; it returns the resource's
// URL.
func (p *whipPublisher) signal(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	gather := time.NewTimer(DefaultConnectTimeout)
	defer gather.Stop()
	select {
	case <-gathered:
	case <-gather.C:
		return "", fmt.Errorf("gathering took over %s", DefaultConnectTimeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	endpoint := strings.TrimSuffix(p.cfg.URL, "/") + "/" + p.stream
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("WHIP POST: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("WHIP POST: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("WHIP POST: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("WHIP POST: Location: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return "", fmt.Errorf("WHIP answer: %w", err)
	}
	return loc.String(), nil
}

// send writes the source's frames in real time, looping, until ctx ends.
func (p *whipPublisher) send(ctx context.Context, vt, at *webrtc.TrackLocalStaticSample) error {
	src := p.src
	first := src.frames[0].PTS
	t0 := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := int64(0); ; loop++ {
		for i, f := range src.frames {
			due := t0.Add(time.Duration((f.PTS - first + loop*src.loop) * int64(time.Second) / 90000))
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil
				}
			} else if ctx.Err() != nil {
				return nil
			}
			tr, n := vt, p.video
			if f.Kind == tsframes.KindAudio {
				tr, n = at, p.audio
			}
			if err := tr.WriteSample(media.Sample{Data: f.Data, Duration: src.durs[i]}); err != nil {
				return fmt.Errorf("writing a sample: %w", err)
			}
			n.Add(1)
			p.bytes.Add(int64(len(f.Data)))
		}
	}
}

// deleteResource ends the publication (bounded, errors ignored: the run is
// over).
func (p *whipPublisher) deleteResource(loc string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc, nil)
	if err != nil {
		return
	}
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
