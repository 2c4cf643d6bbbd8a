package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
	"github.com/whepcast/whepcast/pkg/whep"
)

// Issue 6: a slow viewer (behind a slow, lossy link, or one that stopped
// reading) must not change what the other viewers get, and its losses must
// be counted. The slow viewer's link is a linkEmulator (see
// link_emulator_test.go): the node's egress is one UDP socket shared by every
// viewer, so shaping it on the host would slow every viewer, while a real
// slow viewer's loss happens at a remote bottleneck.

// slowTestTimeout bounds each slow-viewer test.
const slowTestTimeout = 2 * time.Minute

// slowFPS is the frame rate of the fixture the tests loop (av.ts).
const slowFPS = 30

// slowFrameSlack is how many frames a normal viewer's count may differ
// from slowFPS x the window at the window's edges.
const slowFrameSlack = 2

// slowLink is the slow viewer's downlink: 300 kbit/s with 60 ms of queue
// (2250 bytes: a keyframe of av.ts is about 4.2 kB) and 2 % random loss,
// under the ~350 kbit/s that av.ts takes on the wire (H.264 about 266 kbit/s,
// Opus 48 kbit/s, plus RTP and SRTP headers), before retransmissions.
func slowLink() linkConfig {
	return linkConfig{Rate: 300_000, Queue: 60 * time.Millisecond, Loss: 0.02, Seed: 6}
}

// healedLink ends the losses: fast enough, with room for the bursts of
// retransmissions that follow, yet paced so that they do not overflow the
// viewer's socket buffer.
func healedLink() linkConfig { return linkConfig{Rate: 5_000_000, Queue: 2 * time.Second} }

// TestSlowViewerBottleneck plays a live stream (av.ts looped, real time) to
// two viewers, measures them for a while once they have caught up with the
// live edge after their replay, then adds a third viewer behind a
// 300 kbit/s link with a short queue and 2 % loss (slowLink):
//   - the two normal viewers get every frame at the source's 30 fps (within
//     slowFrameSlack at the window's edges), the same rate as before the slow
//     viewer came, with no RTP sequence gap and no frame skipped (timestamp
//     steps of exactly one frame) over the whole test, and their sessions
//     report no loss, NACK or drop;
//   - the link drops the slow viewer's packets, and the node counts them.
//     The link is healed (no more drops) and the test waits for two receiver
//     reports per stream sent 500 ms after that, so that the reports cover
//     every sequence number dropped. The receiver's cumulative loss (RTCP,
//     pion's receiver report) counts the sequence numbers after its first
//     packet that it had not received when it reported. For audio, which is
//     not retransmitted, that is exactly the sequence numbers the link
//     dropped; for video it is at least those the viewer never got and at
//     most those the link dropped at least once (a retransmission can
//     recover one before the report). The node's /sessions entry must show
//     these; every dropped video sequence number was NACKed at least once;
//     and, at a moment with nothing in flight, the node's packet count
//     equals what reached the link, its retransmissions equal the link's
//     repeated sequence numbers, and the viewer got what the link delivered.
func TestSlowViewerBottleneck(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), slowTestTimeout)
	defer cancel()
	connect := whepBus(t)
	node := startSlowNode(t, connect(), 0, 0, 0)
	pub := loopPublish(t, connect(), "slow", "av.ts")
	select {
	case <-pub.announced:
	case <-ctx.Done():
		t.Fatal("the stream was not announced")
	}

	a := playStream(t, ctx, node.url, "slow")
	b := playStream(t, ctx, node.url, "slow")
	normal := map[string]*rtpViewer{"A": a, "B": b}
	node.waitCaughtUp(t, ctx, 2)

	// Baseline: the two normal viewers alone, once live.
	baseline := slowWindow(t, ctx, 3*time.Second)

	// The slow viewer joins behind its link.
	s := playThroughLink(t, ctx, node.url, "slow", slowLink())
	s.waitPackets(t, ctx, mimeH264, 30)
	lossy := slowWindow(t, ctx, 5*time.Second)
	drops := s.link.counters()
	t.Logf("slow link during the window: %+v", drops)
	if drops.DownQueueDrops == 0 || drops.DownLossDrops == 0 {
		t.Fatalf("the link dropped %d datagrams at its queue and %d at random, want both > 0", drops.DownQueueDrops, drops.DownLossDrops)
	}

	for _, name := range []string{"A", "B"} {
		v := normal[name]
		base := checkFrameRate(t, "viewer "+name+" alone", v, baseline)
		with := checkFrameRate(t, "viewer "+name+" with the slow viewer", v, lossy)
		baseFPS, withFPS := float64(base.frames)/baseline.duration().Seconds(), float64(with.frames)/lossy.duration().Seconds()
		if math.Abs(withFPS-baseFPS) > 2*slowFrameSlack/baseline.duration().Seconds() {
			t.Errorf("viewer %s: %.2f fps with the slow viewer, %.2f alone", name, withFPS, baseFPS)
		}
		checkContinuity(t, track{name: "viewer " + name + " video", maxStep: 3000}, v.packets(mimeH264))
		checkContinuity(t, track{name: "viewer " + name + " audio", audio: true, maxStep: 960}, v.packets(mimeOpus))
	}

	// Heal the link: the viewer's NACKs now get their retransmissions
	// through, and its next receiver reports cover every sequence number
	// the link dropped.
	healed := time.Now()
	s.link.reshape(healedLink())
	s.waitReports(t, ctx, healed.Add(500*time.Millisecond), 2)
	video, audio := s.ssrc(t, mimeH264), s.ssrc(t, mimeOpus)
	s.checkAccounting(t, ctx, node, video, true)
	s.checkAccounting(t, ctx, node, audio, false)

	list := node.sessions(t, ctx)
	if len(list) != 3 {
		t.Fatalf("%d sessions on the node, want 3", len(list))
	}
	var slow whep.SessionInfo
	for _, si := range list {
		st := si.Stats
		t.Logf("session %s: video %+v; audio %+v; RTT %v", si.ID, st.Video, st.Audio, st.RTT)
		if si.ID == s.id {
			slow = si
			continue
		}
		if st.Video.NACKs != 0 || st.Video.PacketsLost != 0 || st.Audio.PacketsLost != 0 || st.Video.Drops != 0 || st.Audio.Drops != 0 {
			t.Errorf("normal session %s reports losses: video %+v, audio %+v", si.ID, st.Video, st.Audio)
		}
	}
	if slow.ID == "" {
		t.Fatalf("the slow session %s is not in /sessions", s.id)
	}
	fv, fa := s.link.flow(video), s.link.flow(audio)
	t.Logf("link, video: %+v; audio: %+v", fv, fa)
	t.Logf("FIGURE slow_viewer_link_drops=%d slow_viewer_video_lost=%d slow_viewer_audio_lost=%d slow_viewer_nacks=%d slow_viewer_retransmits=%d",
		s.link.counters().drops(), slow.Stats.Video.PacketsLost, slow.Stats.Audio.PacketsLost, slow.Stats.Video.NACKs, slow.Stats.Video.Retransmits)
	// The node resends a lost packet at most relay.MaxResends times,
	// however often the viewer asks (its NACKs beyond are suppressed).
	if got, most := slow.Stats.Video.Retransmits, uint64(relay.MaxResends*fv.DroppedSeqs); got > most {
		t.Errorf("the node resent %d video packets for %d sequence numbers dropped: more than %d each", got, fv.DroppedSeqs, relay.MaxResends)
	}
	if fa.Dropped == 0 || fa.Repeats != 0 || fa.NeverDelivered != fa.DroppedSeqs {
		t.Errorf("audio through the link %+v: want drops, none retransmitted", fa)
	}
	if got := slow.Stats.Audio.PacketsLost; got != int64(fa.DroppedSeqs) {
		t.Errorf("the node reports %d audio packets lost, the link dropped %d audio sequence numbers (after the first delivered)", got, fa.DroppedSeqs)
	}
	if got := slow.Stats.Video.PacketsLost; got <= 0 || got < int64(fv.NeverDelivered) || got > int64(fv.DroppedSeqs) {
		t.Errorf("the node reports %d video packets lost; want > 0, at least the %d sequence numbers never delivered and at most the %d dropped",
			got, fv.NeverDelivered, fv.DroppedSeqs)
	}
	if got := slow.Stats.Video.NACKs; got < uint64(fv.DroppedSeqs) {
		t.Errorf("the node counted %d video NACKs, fewer than the %d sequence numbers the link dropped", got, fv.DroppedSeqs)
	}
}

// TestSlowViewerBlackhole plays a live stream to two viewers and a third
// through a link that goes dead (a viewer that stops reading): the node, with
// ICE timeouts of 2 s + 2 s, closes the dead session once it has heard
// nothing for 4 s (reason ice_failed), /sessions no longer lists it, the
// relay has one viewer less, the node sends nothing more to it, and the two
// other viewers, live since before the third came, get every frame at 30 fps
// throughout.
func TestSlowViewerBlackhole(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), slowTestTimeout)
	defer cancel()
	const disconnected, failed = 2 * time.Second, 2 * time.Second
	connect := whepBus(t)
	node := startSlowNode(t, connect(), disconnected, failed, 0)
	pub := loopPublish(t, connect(), "dead", "av.ts")
	select {
	case <-pub.announced:
	case <-ctx.Done():
		t.Fatal("the stream was not announced")
	}
	a := playStream(t, ctx, node.url, "dead")
	b := playStream(t, ctx, node.url, "dead")
	node.waitCaughtUp(t, ctx, 2)
	joined := time.Now()
	s := playThroughLink(t, ctx, node.url, "dead", linkConfig{})
	s.waitPackets(t, ctx, mimeH264, 60)
	if n := len(node.sessions(t, ctx)); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	if n := node.relay.Stats().Viewers; n != 3 {
		t.Fatalf("%d relay viewers, want 3", n)
	}

	s.link.setBlackhole(true)
	dead := time.Now()
	lastHeard := s.link.counters().LastUpToNode
	var closed time.Time
	slowWait(t, ctx, "the dead session to leave /sessions", 50*time.Millisecond, func() (bool, string) {
		list := node.sessions(t, ctx)
		for _, si := range list {
			if si.ID == s.id {
				return false, fmt.Sprintf("still listed, state %s", si.State)
			}
		}
		closed = time.Now()
		return len(list) == 2, fmt.Sprintf("%d sessions", len(list))
	})
	whepWait(t, ctx, "2 relay viewers", func() bool { return node.relay.Stats().Viewers == 2 })
	gone := time.Now()
	took := closed.Sub(lastHeard)
	t.Logf("FIGURE dead_viewer_closed_ms=%d (after the last datagram it sent; blackhole %v before)", took.Milliseconds(), closed.Sub(dead).Round(time.Millisecond))
	if took < disconnected+failed || took > disconnected+failed+3*time.Second {
		t.Errorf("the dead session was closed %v after the node last heard from it, want %v (ICE disconnected + failed) plus at most 3 s",
			took, disconnected+failed)
	}
	if got := whepMetric(t, node.url, `whepcast_whep_sessions_closed_total{reason="ice_failed"}`); got != 1 {
		t.Errorf("sessions closed for ice_failed: %v, want 1", got)
	}
	if got := whepMetric(t, node.url, "whepcast_whep_sessions"); got != 2 {
		t.Errorf("whepcast_whep_sessions %v, want 2", got)
	}

	// The normal viewers, from the third viewer's POST to a second after
	// its session was closed.
	w := slowWindowFrom(t, ctx, joined, gone.Add(time.Second))
	for name, v := range map[string]*rtpViewer{"A": a, "B": b} {
		checkFrameRate(t, "viewer "+name, v, w)
		checkContinuity(t, track{name: "viewer " + name + " video", maxStep: 3000}, v.packets(mimeH264))
		checkContinuity(t, track{name: "viewer " + name + " audio", audio: true, maxStep: 960}, v.packets(mimeOpus))
	}
	for _, si := range node.sessions(t, ctx) {
		if si.State != webrtc.PeerConnectionStateConnected.String() || si.Stats.Video.NACKs != 0 || si.Stats.Video.PacketsLost != 0 {
			t.Errorf("normal session %s: state %s, video %+v", si.ID, si.State, si.Stats.Video)
		}
	}
	c := s.link.counters()
	t.Logf("dead link: %+v", c)
	if c.DownHoleDrops == 0 || c.UpHoleDrop == 0 {
		t.Errorf("the blackhole dropped %d datagrams from the node and %d from the viewer, want both > 0", c.DownHoleDrops, c.UpHoleDrop)
	}
	if !c.LastDownIn.Before(gone) {
		t.Errorf("the node sent to the closed session %v after it was closed", c.LastDownIn.Sub(gone))
	}
}

// slowNode is a whep-node assembled in the test (as node.Serve does) so
// that its ICE timeouts can be set.
type slowNode struct {
	url   string
	ws    *whep.Server
	relay *relay.Relay
}

// startSlowNode serves WHEP (/whep/), /sessions and /metrics on 127.0.0.1
// for the streams of nc; ICE timeouts 0 are whep's defaults, replay rate 0
// the relay's. The cleanup shuts it down in node.Serve's order.
func startSlowNode(t *testing.T, nc *nats.Conn, iceDisconnected, iceFailed time.Duration, replayRate float64) *slowNode {
	t.Helper()
	logger := whepLogger()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	watcher, err := bus.WatchCatalog(ctx, nc, logger.With("component", "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	rl, err := relay.New(relay.Config{Conn: nc, Catalog: watcher, Logger: logger.With("component", "relay"), Start: relay.StartGOP, ReplayRate: replayRate})
	if err != nil {
		watcher.Close()
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	ws, err := whep.New(whep.Config{
		// UDPGSO as cmd/whep-node has it by default: a frame's packets
		// leave in one system call, to the selected pair's address (here
		// the link's, learned as a peer-reflexive candidate).
		ICEUDPAddr: "127.0.0.1:0", UDPGSO: true, WaitTimeout: 20 * time.Second, MaxWaiting: 8,
		Start: relay.StartGOP, ICEDisconnectedTimeout: iceDisconnected, ICEFailedTimeout: iceFailed,
	}, whep.Deps{Conn: nc, Catalog: watcher, Media: whep.FromRelay(rl), Logger: logger.With("component", "whep"), Registerer: metrics})
	if err != nil {
		rl.Close()
		watcher.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whep/", ws.Handler())
	mux.Handle("/sessions", ws.SessionsHandler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		expired, cancelExpired := context.WithCancel(sctx)
		cancelExpired()
		_ = ws.Shutdown(expired) // stop taking sessions; no wait
		if err := hs.Shutdown(sctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http serve: %v", err)
		}
		if err := ws.Close(); err != nil {
			t.Errorf("whep close: %v", err)
		}
		rl.Close()
		watcher.Close()
	})
	return &slowNode{url: "http://" + ln.Addr().String(), ws: ws, relay: rl}
}

// sessions returns the node's GET /sessions.
func (n *slowNode) sessions(t *testing.T, ctx context.Context) []whep.SessionInfo {
	t.Helper()
	code, body, err := proctest.Get(ctx, n.url+"/sessions")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /sessions: %d %q %v", code, body, err)
	}
	var list []whep.SessionInfo
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /sessions: %v: %q", err, body)
	}
	return list
}

// waitCaughtUp waits until the node has n sessions, each of which has
// caught up with the live edge after its replay (relay.ViewerStats.CatchUp):
// from then on a viewer gets each frame as the source publishes it, while
// during the catch-up it gets the paced backlog faster than real time.
func (n *slowNode) waitCaughtUp(t *testing.T, ctx context.Context, want int) {
	t.Helper()
	slowWait(t, ctx, fmt.Sprintf("%d sessions caught up with the live edge", want), 20*time.Millisecond, func() (bool, string) {
		list := n.ws.Sessions()
		var desc []string
		live := 0
		for _, si := range list {
			if si.Stats.Replayed == 0 || si.Stats.CatchUp > 0 {
				live++
			}
			desc = append(desc, fmt.Sprintf("%s: replayed %d, catch-up %v", si.ID, si.Stats.Replayed, si.Stats.CatchUp))
		}
		return len(list) == want && live == want, strings.Join(desc, "; ")
	})
	for _, si := range n.ws.Sessions() {
		t.Logf("session %s: %d frames replayed, live after %v", si.ID, si.Stats.Replayed, si.Stats.CatchUp.Round(time.Millisecond))
	}
}

// stats returns the relay stats of session id, read in process (no HTTP
// round trip: see linkedViewer.checkAccounting).
func (n *slowNode) stats(t *testing.T, id string) relay.ViewerStats {
	t.Helper()
	for _, si := range n.ws.Sessions() {
		if si.ID == id {
			return si.Stats
		}
	}
	t.Fatalf("session %s is gone", id)
	return relay.ViewerStats{}
}

// linkedViewer is an rtpViewer whose only path to the node is its link.
type linkedViewer struct {
	*rtpViewer
	link *linkEmulator
	id   string // the WHEP session id
}

// playThroughLink starts an rtpViewer of stream behind a linkEmulator
// shaped by cfg and waits until it is connected. Its offer has no RTX
// (withoutRTX), so that the node resends lost packets on the media SSRC,
// whose sequence numbers the link accounts for (repairs on RTX through a
// lossy link are tested in pkg/relay). It checks that the path
// goes through the link: the offer is POSTed without candidates, the answer
// is given only the link's address, and the viewer's selected pair is the
// link's address.
func playThroughLink(t *testing.T, ctx context.Context, url, stream string, cfg linkConfig) *linkedViewer {
	t.Helper()
	v := newLinkedRTPViewer(t)
	offer, n := linkOffer(withoutRTX(v.offer(t)))
	if n == 0 || strings.Contains(offer, "a=candidate") {
		t.Fatalf("the offer had %d candidates to strip", n)
	}
	resp, answer := whepPost(t, ctx, url+"/whep/"+stream, offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s = %d %q", stream, resp.StatusCode, answer)
	}
	nodeAddr, rewrite, err := linkAnswer(answer)
	if err != nil {
		t.Fatal(err)
	}
	link := newLinkEmulator(t, nodeAddr, cfg)
	v.answer(t, rewrite(link.viewerFacing()))
	select {
	case <-v.connected:
	case <-v.closed:
		t.Fatal("the viewer behind the link failed to connect")
	case <-ctx.Done():
		t.Fatal("the viewer behind the link did not connect")
	}
	pair, err := v.pc.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected candidate pair: %v, %v", pair, err)
	}
	if got := net.JoinHostPort(pair.Remote.Address, fmt.Sprint(pair.Remote.Port)); got != link.viewerFacing().String() {
		t.Fatalf("the viewer's selected pair goes to %s, not to the link's %s", got, link.viewerFacing())
	}
	c := link.counters()
	if c.UpToNode == 0 || c.DownDelivered == 0 || c.DownStray != 0 || c.UpStray != 0 {
		t.Fatalf("link counters once connected: %+v", c)
	}
	return &linkedViewer{rtpViewer: v, link: link, id: path.Base(resp.Header.Get("Location"))}
}

// withoutRTX removes the RTX payload types (RFC 4588) from the media
// sections of sdp: their rtpmap, fmtp and rtcp-fb lines and their numbers
// in the m= lines.
func withoutRTX(sdp string) string {
	lines := strings.Split(sdp, "\r\n")
	rtx := map[string]bool{}
	for _, l := range lines {
		if pt, codec, ok := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " "); ok && strings.HasPrefix(l, "a=rtpmap:") && strings.HasPrefix(strings.ToLower(codec), "rtx/") {
			rtx[pt] = true
		}
	}
	out := lines[:0]
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			f := strings.Fields(l)
			kept := f[:min(len(f), 3)]
			for _, pt := range f[min(len(f), 3):] {
				if !rtx[pt] {
					kept = append(kept, pt)
				}
			}
			out = append(out, strings.Join(kept, " "))
			continue
		}
		drop := false
		for _, attr := range []string{"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"} {
			if pt, _, ok := strings.Cut(strings.TrimPrefix(l, attr), " "); strings.HasPrefix(l, attr) && ok && rtx[pt] {
				drop = true
			}
		}
		if !drop {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

// newLinkedRTPViewer is newRTPViewer (video and audio, loopback, udp4)
// with SRTP replay protection off. pion's default replay window, 64
// packets, rejects a retransmission that arrives more than 64 sequence
// numbers after the newest packet; its NACK generator, which never learns
// of the rejection, then asks for that packet again every 100 ms for as long
// as it stays among the last 512 (about 13 s of this stream's video): a
// storm of useless retransmissions, and packets the link delivered that the
// viewer never counts. Without the window the viewer keeps every packet the
// link delivers, so that its count can be checked against the link's.
func newLinkedRTPViewer(t *testing.T) *rtpViewer {
	t.Helper()
	return newRTPViewerWith(t, func(se *webrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) })
}

// ssrc returns the SSRC of the viewer's track of mime.
func (v *linkedViewer) ssrc(t *testing.T, mime string) uint32 {
	t.Helper()
	p := v.packets(mime)
	if len(p) == 0 {
		t.Fatalf("the slow viewer got no %s", mime)
	}
	return p[0].ssrc
}

// waitReports waits until the viewer has sent n receiver reports after since
// for each of its two streams (video and audio) through the link.
func (v *linkedViewer) waitReports(t *testing.T, ctx context.Context, since time.Time, n int) {
	t.Helper()
	slowWait(t, ctx, fmt.Sprintf("%d receiver reports per stream", n), 20*time.Millisecond, func() (bool, string) {
		rrs := v.link.reportsSince(since)
		if len(rrs) != 2 {
			return false, fmt.Sprintf("reporters %v", rrs)
		}
		for _, c := range rrs {
			if c < n {
				return false, fmt.Sprintf("reports %v", rrs)
			}
		}
		return true, ""
	})
}

// checkAccounting checks, at a moment when none of the track's packets is
// in flight (it polls until then), that the node's count of the packets it
// sent on the track (retransmissions included) equals what reached the link,
// that the viewer got what the link delivered, and for video that the
// node's retransmissions are the link's repeated sequence numbers and every
// NACKed packet was either retransmitted or missed. This is also what shows
// that nothing of the session went by another path.
func (v *linkedViewer) checkAccounting(t *testing.T, ctx context.Context, n *slowNode, ssrc uint32, video bool) {
	t.Helper()
	mime, name := mimeOpus, "audio"
	if video {
		mime, name = mimeH264, "video"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	slowWait(t, ctx, name+" accounts that agree", 2*time.Millisecond, func() (bool, string) {
		before := v.link.flow(ssrc)
		st := n.stats(t, v.id)
		after := v.link.flow(ssrc)
		got := len(v.packets(mime))
		ts := st.Audio
		if video {
			ts = st.Video
		}
		last = fmt.Sprintf("link before %+v, after %+v; node %+v; viewer got %d", before, after, ts, got)
		ok := before == after && ts.Packets == uint64(after.Seen) && got == after.Delivered && ts.WriteErrors == 0
		if video {
			ok = ok && ts.Retransmits == uint64(after.Repeats) && ts.NACKs == ts.Retransmits+ts.Missed+ts.Suppressed
		}
		return ok, last
	})
	t.Logf("%s accounts agree: %s", name, last)
}

// slowWait polls cond every interval until it holds, failing with cond's
// last description when ctx ends first.
func slowWait(t *testing.T, ctx context.Context, what string, every time.Duration, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, desc := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last: %s", what, desc)
		case <-tick.C:
		}
	}
}

// window is a span of wall-clock time.
type window struct{ from, to time.Time }

func (w window) duration() time.Duration { return w.to.Sub(w.from) }

// slowWindow returns the window from now to d later, once it has passed.
func slowWindow(t *testing.T, ctx context.Context, d time.Duration) window {
	t.Helper()
	now := time.Now()
	return slowWindowFrom(t, ctx, now, now.Add(d))
}

// slowWindowFrom returns the window [from, to), once to has passed.
func slowWindowFrom(t *testing.T, ctx context.Context, from, to time.Time) window {
	t.Helper()
	e2eWaitUntil(t, ctx, to)
	return window{from: from, to: to}
}

// frameRate is what a viewer got of video in a window.
type frameRate struct {
	frames  int           // complete frames (marker bit) that arrived
	perSec  []int         // per whole second of the window
	maxGap  time.Duration // longest time between two consecutive frames
	gapEnds time.Duration // when the longest gap ended, from the window's start
}

// checkFrameRate checks that v got slowFPS frames per second in w (within
// slowFrameSlack), and returns what it got.
func checkFrameRate(t *testing.T, name string, v *rtpViewer, w window) frameRate {
	t.Helper()
	var r frameRate
	var prev time.Time
	r.perSec = make([]int, int(w.duration()/time.Second))
	for _, p := range v.packets(mimeH264) {
		if !p.marker || p.at.Before(w.from) || !p.at.Before(w.to) {
			continue
		}
		r.frames++
		if i := int(p.at.Sub(w.from) / time.Second); i < len(r.perSec) {
			r.perSec[i]++
		}
		if !prev.IsZero() && p.at.Sub(prev) > r.maxGap {
			r.maxGap, r.gapEnds = p.at.Sub(prev), p.at.Sub(w.from)
		}
		prev = p.at
	}
	want := slowFPS * w.duration().Seconds()
	t.Logf("%s: %d frames in %v (nominal %.0f), per second %v, longest gap %v (ending at +%v)",
		name, r.frames, w.duration().Round(time.Millisecond), want, r.perSec, r.maxGap.Round(time.Millisecond), r.gapEnds.Round(time.Millisecond))
	if math.Abs(float64(r.frames)-want) > slowFrameSlack {
		t.Errorf("%s: %d frames in %v, want %.0f ± %d (%d fps)", name, r.frames, w.duration(), want, slowFrameSlack, slowFPS)
	}
	return r
}

// loopPublish publishes testdata/fixture as stream in real time, looped
// until the test ends: each pass's timestamps continue the previous pass's
// (the period is the video's frame count times its frame duration; audio
// packets beyond the period are left out), so the stream is one live
// stream without a discontinuity. The cleanup stops it and closes the
// publisher.
func loopPublish(t *testing.T, nc *nats.Conn, stream, fixture string) *whepPublisher {
	t.Helper()
	return loopPublishTS(t, nc, stream, fixture, tstest.Read(t, fixture))
}

// loopPublishTS is loopPublish of the MPEG-TS data, named fixture in errors.
func loopPublishTS(t *testing.T, nc *nats.Conn, stream, fixture string, data []byte) *whepPublisher {
	t.Helper()
	rec := tstest.Demux(t, data)
	period, err := loopPeriod(rec)
	if err != nil {
		t.Fatalf("%s: %v", fixture, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := bus.NewPublisher(ctx, nc, stream, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &whepPublisher{announced: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- loopFrames(ctx, rec, pub, p, period) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("publishing %s: %v", fixture, err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := pub.Shutdown(cctx); err != nil {
			t.Errorf("closing the publisher: %v", err)
		}
	})
	return p
}

// loopPeriod returns the loop period of d on the 90 kHz clock: the video
// frames times their (constant) duration.
func loopPeriod(d *tstest.Demuxed) (int64, error) {
	video := d.Kind(tsframes.KindVideo)
	n := len(video)
	if n < 2 {
		return 0, fmt.Errorf("%d video frames: not a constant frame rate", n)
	}
	first, last := video[0].DTS, video[n-1].DTS
	if (last-first)%int64(n-1) != 0 {
		return 0, fmt.Errorf("%d video frames from DTS %d to %d: not a constant frame rate", n, first, last)
	}
	return (last - first) / int64(n-1) * int64(n), nil
}

// loopFrames publishes the events of d pass after pass, each frame at its
// DTS (pass k adds k x period), until ctx ends. The announcements are
// published in the first pass only (later passes repeat them).
func loopFrames(ctx context.Context, d *tstest.Demuxed, pub *bus.Publisher, p *whepPublisher, period int64) error {
	firstDTS := map[tsframes.Kind]int64{}
	announced := false
	var start time.Time
	var origin int64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for pass := int64(0); ; pass++ {
		for _, e := range d.Events {
			if e.Announcement != nil {
				if pass == 0 {
					if err := pub.Announce(ctx, *e.Announcement); err != nil {
						return err
					}
					if !announced {
						announced = true
						close(p.announced)
					}
				}
				continue
			}
			f := *e.Frame
			if _, ok := firstDTS[f.Kind]; !ok {
				firstDTS[f.Kind] = f.DTS
			}
			if f.DTS-firstDTS[f.Kind] >= period {
				continue // beyond the period (audio longer than video)
			}
			f.DTS += pass * period
			f.PTS += pass * period
			if start.IsZero() {
				start, origin = time.Now(), f.DTS
			}
			if d := time.Until(start.Add(time.Duration(f.DTS-origin) * time.Second / 90000)); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if err := pub.Publish(ctx, f); err != nil {
				return err
			}
			p.frames.Add(1)
			if f.Kind == tsframes.KindVideo {
				p.videoFrames.Add(1)
			}
		}
	}
}
