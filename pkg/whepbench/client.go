package whepbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// h264Profiles are the profile-level-ids offered, so that servers that
// match profiles strictly find the one of their stream.
var h264Profiles = []string{"42e01f", "42001f", "4d001f", "640c1f", "64001f", "640028"}

// client holds what the viewers of one run share: the pion API (codecs,
// settings, no interceptors), the HTTP client and a coarse clock.
type client struct {
	api   *webrtc.API
	http  *http.Client
	token string
	log   *slog.Logger
	clock *coarseClock
}

func newClient(token string, logger *slog.Logger) (*client, error) {
	m := &webrtc.MediaEngine{}
	for i, p := range h264Profiles {
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p},
			PayloadType: webrtc.PayloadType(102 + i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, fmt.Errorf("whepbench: registering H.264: %w", err)
		}
	}
	err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio)
	if err != nil {
		return nil, fmt.Errorf("whepbench: registering Opus: %w", err)
	}

	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}

	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	tr := &http.Transport{
		Proxy:               nil, // loopback benchmarks: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	return &client{api: api, http: &http.Client{Transport: tr}, token: token, log: logger, clock: startCoarseClock()}, nil
}

func (c *client) close() {
	c.clock.stop()
	c.http.CloseIdleConnections()
}

// post sends the offer and returns the answer and the session URL.
func (c *client) post(ctx context.Context, endpoint, offer string) (answer, location string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Accept", "application/sdp")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("POST: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("%w: POST status %d: %s", ErrWHEP, resp.StatusCode, firstLine(body))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return "", "", fmt.Errorf("%w: POST answer Content-Type %q", ErrWHEP, ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", "", fmt.Errorf("%w: POST 201 without Location", ErrWHEP)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", "", fmt.Errorf("%w: Location %q: %w", ErrWHEP, loc, err)
	}
	return string(body), u.String(), nil
}

// delete ends the session at location.
func (c *client) delete(ctx context.Context, location string) error {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWHEP, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("DELETE: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%w: DELETE status %d", ErrWHEP, resp.StatusCode)
	}
	return nil
}

// firstLine is the first line of an error body, at most 120 bytes.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// coarseClock is a monotonic nanosecond clock updated every clockTick, read
// per RTP packet for the drop detection at the cost of an atomic load.
type coarseClock struct {
	epoch time.Time
	now   atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func startCoarseClock() *coarseClock {
	c := &coarseClock{epoch: time.Now(), done: make(chan struct{})}
	c.now.Store(1) // 0 means "never" to the readers
	c.wg.Go(func() {
		t := time.NewTicker(clockTick)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
				c.now.Store(int64(time.Since(c.epoch)))
			}
		}
	})
	return c
}

// coarse is the time since the epoch, within clockTick.
func (c *coarseClock) coarse() int64 { return c.now.Load() }

// precise is the exact time since the epoch.
func (c *coarseClock) precise() int64 { return int64(time.Since(c.epoch)) }

func (c *coarseClock) stop() {
	close(c.done)
	c.wg.Wait()
}
