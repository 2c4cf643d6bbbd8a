package whep

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Reasons a session closes (label of whepcast_whep_sessions_closed_total).
const (
	reasonDelete         = "delete"
	reasonICEFailed      = "ice_failed"
	reasonPeerClosed     = "peer_closed"
	reasonConnectTimeout = "connect_timeout"
	reasonViewerEnded    = "viewer_ended"
	reasonShutdown       = "shutdown"
)

// sessionOwner is what a session needs of the server that made it.
type sessionOwner interface {
	// leave removes the closing session from the server's table (later
	// requests get 404) and keeps its final counters.
	leave(ss *session)
	// closed counts the closed session, ends its event streams and ends a
	// drain that waited for it.
	closed(ss *session, reason string)
	// firstPacket records the time from the session's creation to its
	// first RTP packet.
	firstPacket(ss *session)
	// runDone tells that the session's goroutine (run) returned.
	runDone()
}

// session is one viewer's PeerConnection and relay viewer. Its goroutine
// (run) owns its lifecycle; close may be called from anywhere and is
// idempotent.
type session struct {
	id      string
	stream  string
	epoch   uint64
	created time.Time
	owner   sessionOwner
	// connectTimeout bounds the time to connect; gatherTimeout the
	// candidate gathering of an ICE restart.
	connectTimeout, gatherTimeout time.Duration
	pc                            *webrtc.PeerConnection
	viewer                        Viewer
	// direct is the fast path for media (Config.DirectSRTP), else nil.
	direct *directSRTP
	slot   *slot
	logger *slog.Logger
	// mids maps each mid of the negotiated session to its kind.
	mids map[string]string

	// mu serializes signaling (trickle, ICE restart) and guards the fields
	// below it.
	mu          sync.Mutex
	etag        string
	remoteUfrag string
	remotePwd   string

	notify     chan struct{} // connection state changed (capacity 1)
	firstFrame atomic.Bool
	started    atomic.Bool
	closeOnce  sync.Once
	done       chan struct{}
}

// createSession negotiates a session for offer o on the live stream of
// entry (or its log from at, when at is not zero) and registers it. On
// error everything it acquired is released.
func (s *Server) createSession(ctx context.Context, entry bus.CatalogEntry, o *offer, at time.Time) (_ *session, answer string, err error) {
	began := time.Now()
	ann := entry.Tracks
	if ann.Stream == "" {
		ann.Stream = entry.Stream
	}
	want, err := plan(o, ann)
	if err != nil {
		return nil, "", err
	}
	sl, err := s.sessions.reserve(entry.Stream)
	if err != nil {
		return nil, "", err
	}
	ss := &session{
		id:             newSessionID(s.cfg.NodeID),
		stream:         entry.Stream,
		epoch:          ann.Epoch,
		created:        began,
		owner:          s,
		connectTimeout: s.cfg.ConnectTimeout,
		gatherTimeout:  s.cfg.GatherTimeout,
		slot:           sl,
		mids:           map[string]string{},
		notify:         make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
	ss.logger = s.logger.With("stream", ss.stream, "epoch", ss.epoch, "session", ss.id)
	defer func() {
		if err != nil {
			if ss.pc != nil {
				_ = ss.pc.GracefulClose()
			}
			if ss.viewer != nil {
				ss.viewer.Close()
			}
			sl.release()
		}
	}()

	m := &webrtc.MediaEngine{}
	if err = s.media.RegisterCodecs(m, ann); err != nil {
		return nil, "", fmt.Errorf("register codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if s.cfg.DirectSRTP {
		// First: the innermost interceptor, under the sender reports.
		ss.direct = newDirectSRTP(ss.logger)
		ir.Add(ss.direct)
	}
	if err = s.media.RegisterInterceptors(m, ir); err != nil {
		return nil, "", fmt.Errorf("register interceptors: %w", err)
	}
	ir.Add(firstPacketFactory{onFirst: func() { ss.onFirstPacket() }})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(s.ice.settings))

	if ss.viewer, err = s.joinAt(ctx, ann, want, at); err != nil {
		return nil, "", fmt.Errorf("join stream %q: %w", ss.stream, err)
	}
	ss.pc, err = api.NewPeerConnection(webrtc.Configuration{
		ICEServers:    s.iceServers,
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, "", fmt.Errorf("new peer connection: %w", err)
	}
	ss.pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		select {
		case ss.notify <- struct{}{}:
		default:
		}
	})
	var senders [2]*webrtc.RTPSender
	for i, t := range []webrtc.TrackLocal{ss.viewer.VideoTrack(), ss.viewer.AudioTrack()} {
		if t == nil {
			continue
		}
		tr, err := ss.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, "", fmt.Errorf("add %s track: %w", t.Kind(), err)
		}
		senders[i] = tr.Sender()
	}
	ss.viewer.BindSenders(senders[0], senders[1])
	if s.ice.batches != nil {
		for _, snd := range senders {
			if snd != nil {
				pb := newPathBatch(s.ice.batches)
				pb.follow(snd.Transport().ICETransport())
				ss.viewer.SetBatcher(pb)
				if ss.direct != nil {
					ss.direct.useBatch(pb)
				}
				break
			}
		}
	}

	if err = ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.sdp}); err != nil {
		return nil, "", fmt.Errorf("%w: %w", errBadOffer, err)
	}
	// Sections without a source (a kind the stream lacks, a second
	// section of a kind) are answered inactive.
	for _, t := range ss.pc.GetTransceivers() {
		if t.Sender() == nil {
			if err = t.Stop(); err != nil {
				return nil, "", fmt.Errorf("stop unused transceiver: %w", err)
			}
		}
	}
	ans, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", errIncompatible, err)
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err = ss.pc.SetLocalDescription(ans); err != nil {
		return nil, "", fmt.Errorf("%w: %w", errIncompatible, err)
	}
	if err = waitGathered(ctx, gathered, s.cfg.GatherTimeout, ss.logger); err != nil {
		return nil, "", err
	}
	local := ss.pc.LocalDescription().SDP
	localSD, err := parseSDP(local)
	if err != nil {
		return nil, "", fmt.Errorf("local answer: %w", err)
	}
	if n, err := addTagCandidates(ss.pc, o.sdp, localSD); err != nil {
		ss.logger.Debug("offer candidates of the bundle's section", "err", err)
	} else if n > 0 {
		ss.logger.Debug("added the offer candidates of the bundle's section", "candidates", n)
	}
	ss.describe(localSD, o)
	if answer, err = moveCandidates(localSD, local); err != nil {
		return nil, "", err
	}
	if !ss.sending() {
		return nil, "", fmt.Errorf("%w: no common codec with the offer", errIncompatible)
	}
	ss.etag = newETag()
	if err = s.sessions.add(ss, func() { s.wg.Add(1) }); err != nil {
		return nil, "", err
	}
	s.metrics.created.WithLabelValues(ss.stream).Inc()
	go ss.run()
	if at.IsZero() {
		ss.logger.Info("session created", "video", want.Video, "audio", want.Audio,
			"setup", time.Since(began).Round(time.Millisecond))
	} else {
		ss.logger.Info("time-shifted session created", "video", want.Video, "audio", want.Audio,
			"setup", time.Since(began).Round(time.Millisecond), "start", at.UTC().Format(time.RFC3339Nano))
	}
	return ss, answer, nil
}

// waitGathered waits for candidate gathering, at most timeout; what was
// gathered by then is used.
func waitGathered(ctx context.Context, gathered <-chan struct{}, timeout time.Duration, logger *slog.Logger) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		logger.Warn("ICE gathering timed out; answering with the candidates gathered so far")
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errClientGone, ctx.Err())
	}
	return nil
}

// describe records the session's mids from the local answer and the
// client's ICE credentials from its offer.
func (ss *session) describe(answer *sdp.SessionDescription, o *offer) {
	for _, md := range answer.MediaDescriptions {
		mid, _ := md.Attribute("mid")
		ss.mids[mid] = md.MediaName.Media
	}
	ss.remoteUfrag, ss.remotePwd = o.ufrag, o.pwd
}

// sending reports whether a track was negotiated: a sender with a codec.
func (ss *session) sending() bool {
	for _, t := range ss.pc.GetTransceivers() {
		snd := t.Sender()
		if snd == nil || snd.Track() == nil || t.Mid() == "" {
			continue
		}
		if len(snd.GetParameters().Codecs) > 0 {
			return true
		}
	}
	return false
}

func (ss *session) onFirstPacket() {
	if ss.firstFrame.CompareAndSwap(false, true) {
		ss.owner.firstPacket(ss)
	}
}

// run owns the session: it starts the viewer once connected and closes the
// session when ICE fails, the peer closes, the connection does not come up
// in time, or the viewer ends.
func (ss *session) run() {
	defer ss.owner.runDone()
	connect := time.NewTimer(ss.connectTimeout)
	defer connect.Stop()
	for {
		select {
		case <-ss.done:
			return
		case <-ss.notify:
			switch ss.pc.ConnectionState() {
			case webrtc.PeerConnectionStateConnected:
				if ss.started.CompareAndSwap(false, true) {
					connect.Stop()
					if ss.direct != nil {
						ss.direct.start(ss.pc)
					}
					ss.viewer.Start()
					ss.logger.Info("session connected", "after", time.Since(ss.created).Round(time.Millisecond))
				}
			case webrtc.PeerConnectionStateFailed:
				ss.close(reasonICEFailed)
				return
			case webrtc.PeerConnectionStateClosed:
				ss.close(reasonPeerClosed)
				return
			}
		case <-connect.C:
			if !ss.started.Load() {
				ss.close(reasonConnectTimeout)
				return
			}
		case <-ss.viewer.Done():
			ss.logger.Info("viewer ended", "err", ss.viewer.Err())
			ss.close(reasonViewerEnded)
			return
		}
	}
}

// close ends the session for reason: it leaves the session table (later requests
// get 404), closes the PeerConnection (revoking ICE consent) and then the
// viewer, and releases the slot. It returns once all of that is done.
func (ss *session) close(reason string) {
	ss.closeOnce.Do(func() {
		ss.owner.leave(ss)
		if err := ss.pc.GracefulClose(); err != nil {
			ss.logger.Debug("peer connection close", "err", err)
		}
		ss.viewer.Close()
		ss.slot.release()
		close(ss.done)
		ss.owner.closed(ss, reason)
		ss.logger.Info("session closed", "reason", reason, "duration", time.Since(ss.created).Round(time.Millisecond))
	})
}

// state is the session's connection state for GET /sessions.
func (ss *session) state() string {
	select {
	case <-ss.done:
		return "closed"
	default:
		return ss.pc.ConnectionState().String()
	}
}

// currentETag returns the session's ETag.
func (ss *session) currentETag() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.etag
}

// locationOf returns the session's Location path.
func locationOf(stream, id string) string {
	return "/whep/" + stream + "/" + id
}
