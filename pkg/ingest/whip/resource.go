package whip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Keyframe requests (PLI): at most one per minPLIInterval, repeated every
// pliRepeat while the depacketizer waits for a keyframe.
const (
	minPLIInterval = 300 * time.Millisecond
	pliRepeat      = time.Second
)

// resource is one WHIP publication: its PeerConnection, the readers of its
// tracks and its publication in ingest.Publications.
type resource struct {
	id, stream, remote string
	o                  offer
	pc                 *webrtc.PeerConnection
	queue              *packetQueue
	log                *slog.Logger
	gatherTimeout      time.Duration
	keyInterval        time.Duration

	keyRequests  chan struct{} // a keyframe is wanted now
	waitingKey   atomic.Bool   // the depacketizer waits for a keyframe
	videoSSRC    atomic.Uint32
	ended        chan struct{} // closed when the publication has ended
	ingestErr    error         // set before ended is closed
	readers      sync.WaitGroup
	readersMu    sync.Mutex
	readersEnded bool

	mu                     sync.Mutex // the PeerConnection's signalling: PATCH
	etag                   string
	remoteUfrag, remotePwd string
}

func (res *resource) location() string { return PathPrefix + res.stream + "/" + res.id }

func (res *resource) currentETag() string {
	res.mu.Lock()
	defer res.mu.Unlock()
	return res.etag
}

// end ends the publication as its publisher does: what was received is
// published, then the publication ends normally.
func (res *resource) end() { res.queue.end() }

// start creates the PeerConnection of an offer, answers it and starts the
// publication; it returns once the publication runs (or was refused: then
// its error, such as ingest.ErrLive).
func (h *Handler) start(ctx context.Context, stream, remote string, o offer, offerSDP string) (*resource, string, error) {
	m, err := o.mediaEngine()
	if err != nil {
		return nil, "", err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, "", fmt.Errorf("whip: nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, "", fmt.Errorf("whip: rtcp reports: %w", err)
	}
	apiOpts := []func(*webrtc.API){webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir)}
	if h.cfg.SettingEngine != nil {
		apiOpts = append(apiOpts, webrtc.WithSettingEngine(*h.cfg.SettingEngine))
	}
	pc, err := webrtc.NewAPI(apiOpts...).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("whip: new PeerConnection: %w", err)
	}
	res := &resource{
		id: newID(), stream: stream, remote: remote, o: o, pc: pc,
		queue:         newPacketQueue(h.cfg.Idle),
		gatherTimeout: h.cfg.GatherTimeout,
		keyInterval:   h.cfg.KeyframeInterval,
		keyRequests:   make(chan struct{}, 1),
		ended:         make(chan struct{}),
		etag:          newETag(),
	}
	res.log = h.log.With("stream", stream, "session", res.id, "remote", remote)
	answer, err := res.negotiate(ctx, offerSDP)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = pc.Close()
		return nil, "", errClosed
	}
	h.resources[res.id] = res
	h.running.Add(1)
	h.mu.Unlock()
	go h.run(res)

	select {
	case <-res.queue.reading():
		res.log.Info("WHIP publisher accepted", "video", o.video != nil, "audio", o.audio != nil, "not_taken", o.refused)
		return res, answer, nil
	case <-res.ended:
		return nil, "", res.ingestErr
	}
}

// negotiate applies the offer and returns the answer with the candidates
// gathered within gatherTimeout.
func (res *resource) negotiate(ctx context.Context, offerSDP string) (string, error) {
	pc := res.pc
	pc.OnTrack(res.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		res.log.Debug("WHIP connection state", "state", s.String())
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			res.end()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("%w: %w", errBadOffer, err)
	}
	res.remoteUfrag, res.remotePwd = credentialsOf(offerSDP)
	return res.answer(ctx)
}

// answer creates and applies the local answer and returns it once gathered.
func (res *resource) answer(ctx context.Context) (string, error) {
	answer, err := res.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: creating the answer: %w", errBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(res.pc)
	if err := res.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("whip: setting the answer: %w", err)
	}
	t := time.NewTimer(res.gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		res.log.Debug("gathering timed out: answering with the candidates so far")
	case <-ctx.Done():
		return "", fmt.Errorf("whip: gathering: %w", context.Cause(ctx))
	}
	return res.pc.LocalDescription().SDP, nil
}

// run runs the publication until it ends, then closes the PeerConnection
// and waits for its readers.
func (h *Handler) run(res *resource) {
	defer h.running.Done()
	stopPLI := make(chan struct{})
	pliDone := make(chan struct{})
	go func() {
		defer close(pliDone)
		res.sendKeyframeRequests(stopPLI)
	}()
	stopRequests := res.listenKeyframeRequests(h.cfg.KeyframeRequests)
	src := ingest.Source{
		Kind: sourceKind, Remote: res.remote, Body: res.queue, Interrupt: res.queue.interrupt,
		Frames: func(ctx context.Context, body io.Reader, sink tsframes.Sink) error {
			return newFrameLoop(res.o, sink, res, res.keyInterval, res.log).run(ctx, body)
		},
	}
	sum, err := h.pubs.Ingest(h.ctx, res.stream, src)
	h.remove(res)
	stopRequests()
	close(stopPLI)
	<-pliDone
	_ = res.pc.Close()
	res.readersMu.Lock()
	res.readersEnded = true
	res.readersMu.Unlock()
	res.readers.Wait()
	if d := res.queue.dropped.Load(); d > 0 {
		res.log.Warn("WHIP packets dropped: the publication did not keep up", "dropped", d)
	}
	res.log.Debug("WHIP publication ended", "summary", sum.String(), "err", err)
	res.ingestErr = err
	close(res.ended)
}

// onTrack starts the readers of a track: its RTP packets and the sender
// reports of its receiver go to the queue.
func (res *resource) onTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	kind, srKind := byte(recAudio), byte(recAudioSR)
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		kind, srKind = recVideo, recVideoSR
		if !res.videoSSRC.CompareAndSwap(0, uint32(track.SSRC())) {
			res.log.Warn("a second video track is ignored", "ssrc", track.SSRC())
			return
		}
	}
	res.readersMu.Lock()
	if res.readersEnded {
		res.readersMu.Unlock()
		return
	}
	res.readers.Add(2)
	res.readersMu.Unlock()
	res.log.Info("WHIP track", "kind", track.Kind().String(), "codec", track.Codec().MimeType, "ssrc", track.SSRC())
	if kind == recVideo {
		res.requestKeyframe()
	}
	go func() {
		defer res.readers.Done()
		buf := make([]byte, maxRecord-1)
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				if errors.Is(err, io.ErrShortBuffer) {
					continue
				}
				return
			}
			rec := make([]byte, 1+n)
			rec[0] = kind
			copy(rec[1:], buf[:n])
			res.queue.push(rec)
		}
	}()
	go func() {
		defer res.readers.Done()
		ssrc := uint32(track.SSRC())
		for {
			pkts, _, err := receiver.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
					res.queue.pushReport(srKind, sr.NTPTime, sr.RTPTime)
				}
			}
		}
	}()
}

func (res *resource) requestKeyframe() {
	select {
	case res.keyRequests <- struct{}{}:
	default:
	}
}

func (res *resource) setWaitingForKeyframe(w bool) { res.waitingKey.Store(w) }

// sendKeyframeRequests sends a PLI for every request, and every pliRepeat
// while a keyframe is awaited, at most one per minPLIInterval, until stop.
func (res *resource) sendKeyframeRequests(stop <-chan struct{}) {
	t := time.NewTicker(pliRepeat)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-stop:
			return
		case <-res.keyRequests:
		case <-t.C:
			if !res.waitingKey.Load() {
				continue
			}
		}
		ssrc := res.videoSSRC.Load()
		if ssrc == 0 || time.Since(last) < minPLIInterval {
			continue
		}
		last = time.Now()
		if err := res.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			res.log.Debug("PLI not sent", "err", err)
		}
	}
}

// credentialsOf returns the first ICE credentials of an SDP description.
func credentialsOf(sdp string) (ufrag, pwd string) {
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}

// patch applies a trickle-ice-sdpfrag: new candidates (204) or, with new
// ICE credentials and If-Match, an ICE restart (200 with the answer's
// fragment).
func (h *Handler) patch(w http.ResponseWriter, r *http.Request, res *resource) error {
	if err := checkContentType(r.Header.Get("Content-Type"), sdpfrag.MediaType); err != nil {
		return err
	}
	body, err := readBody(w, r, sdpfrag.MaxSize)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadFragment, err)
	}
	frag, err := sdpfrag.Parse(body)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadFragment, err)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	ufrag, pwd := frag.Credentials()
	restart := ufrag != "" && (ufrag != res.remoteUfrag || pwd != res.remotePwd)
	present, match := ifMatch(r.Header.Values("If-Match"), res.etag)
	switch {
	case present && !match:
		return fmt.Errorf("%w: have %s", errPrecondition, res.etag)
	case restart && !present:
		return errPreconditionReq
	}
	if !restart {
		res.addCandidates(frag)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	answer, err := res.restart(r.Context(), ufrag, pwd)
	if err != nil {
		return err
	}
	res.addCandidates(frag)
	out, err := answerFragment(answer)
	if err != nil {
		return err
	}
	res.etag = newETag()
	res.log.Info("WHIP ICE restarted")
	w.Header().Set("Content-Type", sdpfrag.MediaType)
	w.Header().Set("ETag", res.etag)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return nil
}

// addCandidates adds the fragment's candidates; those the ICE agent cannot
// use are ignored. res.mu is held.
func (res *resource) addCandidates(frag *sdpfrag.Fragment) {
	end := frag.EndOfCandidates
	for _, m := range frag.Media {
		end = end || m.EndOfCandidates
		for i := range m.Candidates {
			c := &m.Candidates[i]
			if u := c.Ufrag(); u != "" && u != res.remoteUfrag {
				continue
			}
			if err := res.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.String()}); err != nil {
				res.log.Debug("ignoring remote candidate", "candidate", c.String(), "err", err)
			}
		}
	}
	if end {
		_ = res.pc.AddICECandidate(webrtc.ICECandidateInit{})
	}
}

// restart applies the current offer with the publisher's new credentials
// and no candidates, and returns the new answer. res.mu is held.
func (res *resource) restart(ctx context.Context, ufrag, pwd string) (string, error) {
	cur := res.pc.RemoteDescription()
	if cur == nil {
		return "", errors.New("whip: ice restart: no remote description")
	}
	var b strings.Builder
	for line := range strings.Lines(cur.SDP) {
		trimmed := strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(trimmed, "a=candidate:"), trimmed == "a=end-of-candidates":
			continue
		case strings.HasPrefix(trimmed, "a=ice-ufrag:"):
			line = "a=ice-ufrag:" + ufrag + "\r\n"
		case strings.HasPrefix(trimmed, "a=ice-pwd:"):
			line = "a=ice-pwd:" + pwd + "\r\n"
		}
		b.WriteString(line)
	}
	if err := res.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.String()}); err != nil {
		return "", fmt.Errorf("%w: ice restart: %w", errBadFragment, err)
	}
	res.remoteUfrag, res.remotePwd = ufrag, pwd
	return res.answer(ctx)
}

// answerFragment is the fragment answering an ICE restart: the answer's
// credentials and candidates on its first section.
func answerFragment(answer string) ([]byte, error) {
	ufrag, pwd := credentialsOf(answer)
	f := &sdpfrag.Fragment{ICEUfrag: ufrag, ICEPwd: pwd}
	var m *sdpfrag.Media
	for line := range strings.Lines(answer) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m=") && m == nil:
			fields := strings.Fields(strings.TrimPrefix(line, "m="))
			if len(fields) < 4 {
				return nil, fmt.Errorf("whip: ice restart: bad m= line %q", line)
			}
			m = &sdpfrag.Media{Kind: fields[0], Port: 9, Proto: fields[2], Formats: fields[3:], EndOfCandidates: true}
		case strings.HasPrefix(line, "a=mid:") && m != nil && m.MID == "":
			m.MID = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:") && m != nil:
			c, err := sdpfrag.ParseCandidate(strings.TrimPrefix(line, "a="))
			if err != nil {
				continue
			}
			m.Candidates = append(m.Candidates, c)
		}
	}
	if m == nil {
		return nil, errors.New("whip: ice restart: the answer has no section")
	}
	f.Media = []sdpfrag.Media{*m}
	return f.Marshal()
}

// ifMatch evaluates If-Match values against etag: present is false without
// a header; match is true for "*" or a strong match.
func ifMatch(values []string, etag string) (present, match bool) {
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			present = true
			if tag = strings.TrimSpace(tag); tag == "*" || tag == etag {
				match = true
			}
		}
	}
	return present, match
}
