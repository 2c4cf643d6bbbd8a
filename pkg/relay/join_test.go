package relay

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/rtptest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
	"github.com/whepcast/whepcast/pkg/udpbatch"
)

// The join stress test: a fixture with a 4 s GOP, inflated to a 2 Mb/s
// stream, paced in real time on the bus, and viewers joining at random
// positions of the GOP.
const (
	joinFixture      = "gop4.ts"
	joinBitrate      = 2_000_000 // bit/s of video after inflation
	joinFPS          = 30
	joinVideoTicks   = videoClockRate / joinFPS
	joinAudioTicks   = audioClockRate / 50 // one 20 ms Opus packet
	joinPlay         = time.Second         // each viewer plays this long after its Start
	joinConcurrency  = 8
	joinJoins        = 200
	joinJoinsShort   = 40
	joinFirstJoins   = 12
	joinMaxJoinDelay = 400 * time.Millisecond
)

// inflateAU appends an SEI NAL unit of user data (which decoders ignore and
// the packetizer keeps) to the Annex-B access unit au, so that it is about
// size bytes long.
func inflateAU(au []byte, size int) []byte {
	pad := size - len(au)
	if pad < 64 {
		return au
	}
	out := make([]byte, 0, size+16)
	out = append(out, au...)
	out = append(out, 0, 0, 0, 1, 6, 5) // SEI, user_data_unregistered
	n := pad - 16
	for v := n; ; v -= 255 {
		if v < 255 {
			out = append(out, byte(v))
			break
		}
		out = append(out, 255)
	}
	for i := 0; i < n; i++ {
		out = append(out, 0x55) // never 00 00: no emulation prevention needed
	}
	return append(out, 0x80) // rbsp trailing bits
}

// joinFeed is the looping, real-time-paced publication of the join test.
type joinFeed struct {
	ann    tsframes.Announcement
	frames []tsframes.Frame // one loop, audio that overlaps the next loop dropped
	span   int64            // PTS span of one loop (90 kHz)
}

// newJoinFeed prepares the inflated fixture for looping.
func newJoinFeed(t testing.TB) joinFeed {
	t.Helper()
	var f joinFeed
	firstV, firstA, announced := int64(-1), int64(-1), false
	for _, e := range readFixture(t, joinFixture) {
		if e.ann != nil {
			if !announced {
				f.ann, announced = *e.ann, true
			}
			continue
		}
		fr := *e.frame
		switch fr.Kind {
		case tsframes.KindVideo:
			if firstV < 0 {
				firstV = fr.PTS
			}
			f.span = fr.PTS - firstV + joinVideoTicks
			fr.Data = inflateAU(fr.Data, joinBitrate/8/joinFPS)
		case tsframes.KindAudio:
			if firstA < 0 {
				firstA = fr.PTS
			}
		}
		f.frames = append(f.frames, fr)
	}
	var kept []tsframes.Frame
	for _, fr := range f.frames {
		if fr.Kind != tsframes.KindAudio || fr.PTS-firstA < f.span {
			kept = append(kept, fr)
		}
	}
	f.frames = kept
	return f
}

// run publishes the loops of f with p at real-time pace until ctx ends; it
// closes keyed once the first keyframe is published.
func (f joinFeed) run(ctx context.Context, p *bus.Publisher, keyed chan<- struct{}) error {
	if err := p.Announce(ctx, f.ann); err != nil {
		return err
	}
	t0, first := time.Now(), f.frames[0].PTS
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := int64(0); ; loop++ {
		for _, fr := range f.frames {
			fr.PTS += loop * f.span
			fr.DTS += loop * f.span
			at := t0.Add(time.Duration(fr.PTS-first) * time.Second / videoClockRate)
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if err := p.Publish(ctx, fr); err != nil {
				return err
			}
			if keyed != nil && fr.Key {
				close(keyed)
				keyed = nil
			}
		}
	}
}

// loopbackMux is the server side of the join test as pkg/whep builds it:
// one UDP socket on loopback for every viewer, wrapped by a udpbatch.Group
// (GSO where the kernel has it).
type loopbackMux struct {
	group    *udpbatch.Group
	settings webrtc.SettingEngine
}

func newLoopbackMux(t testing.TB) *loopbackMux {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := udpbatch.NewGroup(true, slog.New(slog.DiscardHandler))
	mux := webrtc.NewICEUDPMux(nil, g.Wrap(conn))
	t.Cleanup(func() { _ = mux.Close() })
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return &loopbackMux{group: g, settings: se}
}

// pairBatch is a Batcher for the remote address of a connected
// PeerConnection's selected candidate pair (pkg/whep's pathBatch).
type pairBatch struct {
	b    *udpbatch.Batch
	addr netip.AddrPort
}

func newPairBatch(t testing.TB, g *udpbatch.Group, pc *webrtc.PeerConnection) *pairBatch {
	t.Helper()
	pair, err := pc.GetSenders()[0].Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected candidate pair: %v", err)
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		t.Fatal(err)
	}
	return &pairBatch{b: g.NewBatch(), addr: netip.AddrPortFrom(ip, pair.Remote.Port)}
}

func (pb *pairBatch) Begin() bool { return pb.b.Begin(pb.addr) }
func (pb *pairBatch) Flush()      { pb.b.Flush() }

// checkRTP checks the headers of pkts with rtptest.Track.
func checkRTP(pkts []sent, video bool, maxStep uint32) rtptest.Check {
	hdrs := make([]rtp.Header, len(pkts))
	for i, p := range pkts {
		hdrs[i] = p.hdr
	}
	return rtptest.Track(hdrs, video, maxStep)
}

// isKeyframeStart reports whether an H.264 RTP payload starts an IDR access
// unit (parameter sets first, or the IDR itself).
func isKeyframeStart(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	switch payload[0] & nalTypeMask {
	case nalTypeSTAPA:
		return len(payload) > 3 && payload[3]&nalTypeMask == nalTypeSPS
	case nalTypeSPS, 5:
		return true
	case nalTypeFUA:
		return payload[1]&0x80 != 0 && payload[1]&nalTypeMask == 5
	}
	return false
}

// joinResult is what one join of the stress test saw.
type joinResult struct {
	// clientDrops is what the client's socket dropped (-1: unknown).
	clientDrops  int64
	replayed     int
	catchUp      time.Duration
	video, audio rtptest.Check
	keyFirst     bool
}

// starved reports whether the client's own socket dropped datagrams and
// that explains every packet the join missed: its process did not read
// in time (a loaded test machine), not a fault of the sender.
func (res joinResult) starved() bool {
	missed := res.video.Lost + res.video.Late + res.audio.Lost + res.audio.Late
	return res.clientDrops > 0 && int64(missed) <= res.clientDrops && res.keyFirst &&
		res.video.Duplicated == 0 && res.audio.Duplicated == 0 && res.video.Markers == 0
}

// joinOnce joins a viewer of the stream, plays it over a pion client with
// pion's default interceptors (NACK included) and SRTP replay protection on,
// and checks what the client received.
func joinOnce(t *testing.T, r *Relay, ann bus.Announcement, mux *loopbackMux) joinResult {
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeerWith(t, v, ann, peerOptions{server: &mux.settings, replayProtection: true})
	v.SetBatcher(newPairBatch(t, mux.group, p.server))
	v.Start()
	timer := time.NewTimer(joinPlay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-v.Done():
		t.Fatalf("viewer ended: %v", v.Err())
	}
	drops := int64(-1)
	if pair, err := p.client.GetReceivers()[0].Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
		if n, ok := rtptest.SocketDrops(int(pair.Local.Port)); ok {
			drops = int64(n)
		}
	}
	v.Close()
	p.close()
	video, audio := p.video.snapshot(), p.audio.snapshot()
	st := v.Stats()
	res := joinResult{
		clientDrops: drops,
		replayed:    st.Replayed,
		catchUp:     st.CatchUp,
		video:       checkRTP(video, true, joinVideoTicks*3/2),
		audio:       checkRTP(audio, false, joinAudioTicks*3/2),
	}
	res.keyFirst = len(video) > 0 && isKeyframeStart(video[0].payload)
	if res.video.Packets == 0 || res.audio.Packets == 0 {
		t.Fatalf("received %d video and %d audio packets", res.video.Packets, res.audio.Packets)
	}
	return res
}

// TestJoinAtRandomGOPPositionsIsClean joins viewers, several at a time, at
// random positions of the GOP of a live 2 Mb/s stream with a 4 s GOP paced
// in real time on the bus, over real PeerConnections on loopback and the
// node's send path (one UDP socket, udpbatch). Each viewer must receive
// every RTP packet from its first keyframe on exactly once and in order,
// with timestamps that step forward by about a frame at most and complete
// access units, in video and in audio. The only losses tolerated are those
// of a few joins whose own client socket overflowed (Linux reports it), as
// happens when a loaded machine starves the test process: what an unpaced
// replay does to most joins.
func TestJoinAtRandomGOPPositionsIsClean(t *testing.T) {
	checkLeaks(t)
	joins := joinJoins
	if testing.Short() {
		joins = joinJoinsShort
	}
	joinStress(t, joins, joinConcurrency, true)
}

// TestFirstViewerJoinIsClean is TestJoinAtRandomGOPPositionsIsClean with
// one viewer at a time and no other: each join creates the stream's hub,
// whose bus subscription starts from the stream's latest keyframe, so the
// GOP reaches the hub as a burst around the viewer's start.
func TestFirstViewerJoinIsClean(t *testing.T) {
	checkLeaks(t)
	joinStress(t, joinFirstJoins, 1, false)
}

// joinStress runs joins joins, concurrency at a time, against a live stream;
// with anchor an idle viewer keeps the stream's hub between them.
func joinStress(t *testing.T, joins, concurrency int, anchor bool) {
	nc := natstest.EmbeddedConn(t)
	feed := newJoinFeed(t)
	const name, epoch = "join", 1
	pub := newPublisher(t, nc, name, epoch)
	ctx, cancel := context.WithCancel(t.Context())
	fed, keyed := make(chan error, 1), make(chan struct{})
	go func() { fed <- feed.run(ctx, pub, keyed) }()
	t.Cleanup(func() {
		cancel()
		<-fed
	})
	ann := bus.NewAnnouncement(name, epoch, feed.ann)
	r := newBusRelay(t, Config{Conn: nc})
	if anchor {
		// An idle viewer keeps the stream's hub, and so its GOP cache.
		a, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
	}
	select {
	case <-keyed:
	case err := <-fed:
		fed <- err // for the cleanup
		t.Fatalf("publisher: %v", err)
	case <-waitCtx(t, 10*time.Second).Done():
		t.Fatal("no keyframe published")
	}
	mux := newLoopbackMux(t)

	var (
		mu      sync.Mutex
		results []joinResult
		bad     []string
		starved []string
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > joins || t.Failed() {
					return
				}
				// A random join time: a random position in the GOP.
				delay := time.NewTimer(rand.N(joinMaxJoinDelay))
				<-delay.C
				t.Run(fmt.Sprintf("join%03d", i), func(t *testing.T) {
					res := joinOnce(t, r, ann, mux)
					mu.Lock()
					defer mu.Unlock()
					results = append(results, res)
					if !res.video.Clean() || !res.audio.Clean() || !res.keyFirst {
						msg := fmt.Sprintf("join %d (replay of %d frames, keyframe first %v, client socket dropped %d): video %v; audio %v",
							i, res.replayed, res.keyFirst, res.clientDrops, res.video, res.audio)
						if res.starved() {
							starved = append(starved, msg)
						} else {
							bad = append(bad, msg)
						}
					}
				})
			}
		}()
	}
	wg.Wait()
	var replays []int
	var catchUps []time.Duration
	for _, res := range results {
		replays = append(replays, res.replayed)
		catchUps = append(catchUps, res.catchUp)
	}
	slices.Sort(replays)
	slices.Sort(catchUps)
	if n := len(replays); n > 0 {
		t.Logf("%d joins in %s; replays of %d to %d frames (median %d), live edge reached %s to %s after Start (median %s)",
			n, time.Since(start).Round(time.Millisecond), replays[0], replays[n-1], replays[n/2],
			catchUps[0].Round(time.Millisecond), catchUps[n-1].Round(time.Millisecond), catchUps[n/2].Round(time.Millisecond))
	}
	if st := mux.group.Stats(); st.SendErrors > 0 {
		t.Errorf("udpbatch: %d datagrams lost to send errors", st.SendErrors)
	} else {
		t.Logf("udpbatch: %+v", st)
	}
	// A join whose client socket overflowed while its process was starved
	// of CPU is not the sender's fault; a few are tolerated. An unpaced
	// replay overflows most of them.
	for _, s := range starved {
		t.Logf("client starved: %s", s)
	}
	if most := 1 + joins/50; len(starved) > most {
		t.Errorf("%d of %d joins lost packets in their client's socket buffer, want at most %d", len(starved), len(results), most)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d joins not clean:", len(bad), len(results))
		for _, b := range bad[:min(len(bad), 20)] {
			t.Error(b)
		}
	}
	if len(results) < joins && !t.Failed() {
		t.Errorf("%d joins done, want %d", len(results), joins)
	}
}
