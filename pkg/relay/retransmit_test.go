package relay

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/natstest"
)

// The RTX stream of the fake peer (see bind).
const (
	ssrcVideoRTX   = 0x3333
	fakePTVideoRTX = 103
)

// bindRTX binds tr as bind does, with RTX negotiated for its H.264 codec.
func bindRTX(t testing.TB, tr webrtc.TrackLocal, ws webrtc.TrackLocalWriter) {
	t.Helper()
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: h264Capability("42e01f"), PayloadType: fakePTVideo},
		{RTPCodecCapability: rtxCapability(fakePTVideo), PayloadType: fakePTVideoRTX},
	}
	ctx := &trackContext{id: "fake", ssrc: ssrcVideo, rtxSSRC: ssrcVideoRTX, codecs: codecs, ws: ws}
	if _, err := tr.Bind(ctx); err != nil {
		t.Fatalf("bind: %v", err)
	}
}

// newRTXTestWriter is newTestWriter with RTX negotiated.
func newRTXTestWriter(t testing.TB, rec webrtc.TrackLocalWriter, buf *retransmitBuffer) *trackWriter {
	tr := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(""), "w")
	bindRTX(t, tr, rec)
	return newTrackWriter(tr, buf, videoClockRate)
}

// A NACKed packet goes on the RTX stream when the peer negotiated it
// (RFC 4588 section 4): the RTX SSRC and payload type, sequence numbers of
// its own that follow each other, the original sequence number in the first
// two bytes of the payload, the original timestamp and marker.
func TestTrackWriterRetransmitsOnRTX(t *testing.T) {
	rec := newRecorder()
	buf := newRetransmitBuffer(64)
	w := newRTXTestWriter(t, rec, buf)
	for i, f := range []*frame{frameAt(0, 0, true, 0, 3), frameAt(3, 3000, false, 1, 3)} {
		buf.put(f)
		if !w.write(f) {
			t.Fatalf("frame %d not written", i)
		}
	}
	media := rec.snapshot()
	var rtxSeq uint16
	for i, k := range []int{1, 4, 5} {
		orig := media[k]
		if !w.retransmit(orig.hdr.SequenceNumber, int64(i)*int64(time.Second), minResendGap) {
			t.Fatalf("packet %d not retransmitted", k)
		}
		// The recorder keeps the payload it was given, which the writer
		// reuses: check it now.
		p := rec.snapshot()[len(media)+i]
		if p.hdr.SSRC != ssrcVideoRTX || p.hdr.PayloadType != fakePTVideoRTX || p.hdr.Timestamp != orig.hdr.Timestamp ||
			p.hdr.Marker != orig.hdr.Marker {
			t.Fatalf("RTX packet %d: %+v, original %+v", i, p.hdr, orig.hdr)
		}
		if i > 0 && p.hdr.SequenceNumber != rtxSeq+1 {
			t.Fatalf("RTX packet %d has seq %d after %d", i, p.hdr.SequenceNumber, rtxSeq)
		}
		rtxSeq = p.hdr.SequenceNumber
		if osn := binary.BigEndian.Uint16(p.payload); osn != orig.hdr.SequenceNumber || string(p.payload[2:]) != string(orig.payload) {
			t.Fatalf("RTX packet %d: OSN %d payload %x, want %d %x", i, osn, p.payload[2:], orig.hdr.SequenceNumber, orig.payload)
		}
	}
	// The bounds per packet hold on RTX as on the SSRC.
	if w.retransmit(media[5].hdr.SequenceNumber, 2*int64(time.Second)+1, minResendGap) {
		t.Fatal("resent again within the gap")
	}
	st := w.stats()
	if st.Retransmits != 3 || st.Suppressed != 1 || st.Packets != 9 || st.Bytes != 6*3+3*(3+rtxHeaderSize) {
		t.Fatalf("stats %+v", st)
	}
	// Media packets keep the track's SSRC and sequence numbers.
	f := frameAt(6, 6000, false, 2, 1)
	buf.put(f)
	w.write(f)
	if p := rec.snapshot()[len(media)+3]; p.hdr.SSRC != ssrcVideo || p.hdr.PayloadType != fakePTVideo ||
		p.hdr.SequenceNumber != media[5].hdr.SequenceNumber+1 {
		t.Fatalf("media packet after RTX: %+v", p.hdr)
	}
}

// RTX is used only when its codec was negotiated for the track's codec.
func TestBindRTXNeedsItsCodec(t *testing.T) {
	for name, codecs := range map[string][]webrtc.RTPCodecParameters{
		"no rtx codec": {
			{RTPCodecCapability: h264Capability("42e01f"), PayloadType: fakePTVideo},
		},
		"rtx of another codec": {
			{RTPCodecCapability: h264Capability("42e01f"), PayloadType: fakePTVideo},
			{RTPCodecCapability: rtxCapability(fakePTVideo + 2), PayloadType: fakePTVideoRTX},
		},
	} {
		tr := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(""), "w")
		ctx := &trackContext{id: "x", ssrc: ssrcVideo, rtxSSRC: ssrcVideoRTX, codecs: codecs, ws: newRecorder()}
		if _, err := tr.Bind(ctx); err != nil {
			t.Fatal(err)
		}
		if b := tr.current.Load(); b.rtxSSRC != 0 {
			t.Fatalf("%s: RTX SSRC %x bound", name, b.rtxSSRC)
		}
	}
	tr := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(""), "w")
	bindRTX(t, tr, newRecorder())
	if b := tr.current.Load(); b.rtxSSRC != ssrcVideoRTX || b.rtxPayloadType != fakePTVideoRTX {
		t.Fatalf("binding %+v", b)
	}
}

// lossyConn is the server's UDP socket with a lossy way out: it drops the
// first copy of each video RTP packet of SSRC ssrc whose sequence number is
// a multiple of every (RTP headers are not encrypted by SRTP).
type lossyConn struct {
	net.PacketConn
	ssrc  atomic.Uint32
	every uint16

	mu      sync.Mutex
	passed  bool // a packet of ssrc went through: the receiver knows where the stream starts
	dropped []uint16
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	// RTP (version 2), not RTCP (packet types 192-223, RFC 5761).
	if len(b) >= 12 && b[0]>>6 == 2 && (b[1]&0x7f < 64 || b[1]&0x7f > 95) &&
		binary.BigEndian.Uint32(b[8:12]) == c.ssrc.Load() {
		seq := binary.BigEndian.Uint16(b[2:4])
		c.mu.Lock()
		// The first packet is never dropped: a receiver cannot NACK what
		// comes before the first packet it sees.
		drop := c.passed && seq%c.every == 0 && !slices.Contains(c.dropped, seq)
		if drop {
			c.dropped = append(c.dropped, seq)
		}
		c.passed = true
		c.mu.Unlock()
		if drop {
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// droppedSeqs returns the sequence numbers dropped so far.
func (c *lossyConn) droppedSeqs() []uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.dropped)
}

// lossySettings is a server SettingEngine whose one UDP socket on
// loopback is c's.
func lossySettings(t testing.TB, every uint16) (webrtc.SettingEngine, *lossyConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &lossyConn{PacketConn: conn, every: every}
	mux := webrtc.NewICEUDPMux(nil, c)
	t.Cleanup(func() { _ = mux.Close() })
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se, c
}

// sortBySeq returns pkts in the order of their sequence numbers, extended
// from the first one's.
func sortBySeq(pkts []sent) []sent {
	out := slices.Clone(pkts)
	if len(out) == 0 {
		return out
	}
	first := out[0].hdr.SequenceNumber
	slices.SortStableFunc(out, func(a, b sent) int {
		return int(int16(a.hdr.SequenceNumber-first)) - int(int16(b.hdr.SequenceNumber-first))
	})
	return out
}

// A viewer behind a lossy link gets every video packet: the lost ones are
// resent on the RTX stream when its offer has RTX (and its SRTP replay
// protection, on, rejects none of them, however late), on the track's SSRC
// with their sequence numbers otherwise.
func TestLossyViewerGetsEveryPacket(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	srcV, _ := framesOf(events)
	for _, rtx := range []bool{true, false} {
		name := "rtx"
		if !rtx {
			name = "no rtx"
		}
		t.Run(name, func(t *testing.T) {
			nc := natstest.EmbeddedConn(t)
			pub := newPublisher(t, nc, "lossy", 1)
			r := newBusRelay(t, Config{Conn: nc})
			ann := busAnnouncement("lossy", 1, events)
			v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			se, link := lossySettings(t, 10)
			// Without RTX a late resend on the SSRC may fall outside the
			// replay window: that is what RTX is for.
			p := connectPeerWith(t, v, ann, peerOptions{server: &se, replayProtection: rtx, noRTX: !rtx})
			var vs *webrtc.RTPSender
			for _, s := range p.server.GetSenders() {
				if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
					vs = s
				}
			}
			enc := vs.GetParameters().Encodings[0]
			answer := p.server.LocalDescription().SDP
			group := "a=ssrc-group:FID " + itoa(uint32(enc.SSRC)) + " " + itoa(uint32(enc.RTX.SSRC))
			if rtx {
				if enc.RTX.SSRC == 0 || !strings.Contains(answer, group) || !strings.Contains(answer, "rtx/90000") ||
					!strings.Contains(answer, "a=ssrc:"+itoa(uint32(enc.RTX.SSRC))+" msid:") {
					t.Fatalf("answer without RTX (SSRC %d):\n%s", enc.RTX.SSRC, answer)
				}
			} else if enc.RTX.SSRC != 0 || strings.Contains(answer, "rtx") || strings.Contains(answer, "FID") {
				t.Fatalf("answer with RTX to an offer without:\n%s", answer)
			}
			link.ssrc.Store(uint32(enc.SSRC))
			v.Start()
			// The link stops dropping for the last quarter of the stream:
			// pion returns an RTX repair from a Read of the track, before
			// the next media packet, so repairs need media after them.
			marked := make(chan struct{})
			done := feed{events: events, speed: 2, mark: len(srcV) * 3 / 4, marked: marked}.start(t, pub)
			select {
			case <-marked:
				link.ssrc.Store(0)
			case <-time.After(20 * time.Second):
				t.Fatal("publisher did not get there")
			}
			waitDone(t, done)

			dropped := link.droppedSeqs()
			if len(dropped) < 5 {
				t.Fatalf("only %d packets dropped", len(dropped))
			}
			video := p.video.waitFor(t, 10*time.Second, "every video packet", func(s []sent) bool {
				return checkRTP(s, true, 1<<31).Lost == 0 && countMarkers(s) >= len(srcV)
			})
			// Repairs arrive after newer packets, except one that comes
			// before the next packet is sent (a frame's last packet on a
			// fast loopback): at least one is late, none is lost.
			c := checkRTP(video, true, 1<<31)
			if c.Late == 0 || c.Lost != 0 {
				t.Fatalf("%+v with %d dropped", c, len(dropped))
			}
			checkVideo(t, srcV, depacketizeH264(t, sortBySeq(video)))
			for _, s := range video {
				if s.hdr.SSRC != uint32(enc.SSRC) {
					t.Fatalf("video packet on SSRC %d, want %d", s.hdr.SSRC, enc.SSRC)
				}
			}
			repaired := p.repaired.snapshot()
			if !rtx {
				if len(repaired) != 0 {
					t.Fatalf("%d packets on RTX without RTX negotiated", len(repaired))
				}
				if st := v.Stats().Video; st.Retransmits < uint64(len(dropped)) {
					t.Fatalf("stats %+v with %d dropped", st, len(dropped))
				}
				return
			}
			if got := p.rtxSSRC.Load(); got != uint32(enc.RTX.SSRC) {
				t.Fatalf("RTX on SSRC %d, want %d", got, enc.RTX.SSRC)
			}
			for _, s := range repaired {
				if !slices.Contains(dropped, s.hdr.SequenceNumber) {
					t.Fatalf("seq %d repaired but never dropped", s.hdr.SequenceNumber)
				}
			}
			// Every retransmission reached the client: SRTP replay
			// protection rejected none.
			eventually(t, 10*time.Second, "every retransmission received", func() bool {
				return v.Stats().Video.Retransmits == uint64(len(p.repaired.snapshot()))
			})
			st := v.Stats().Video
			t.Logf("%d dropped, %d retransmitted on RTX, stats %+v", len(dropped), st.Retransmits, st)
			if st.Retransmits < uint64(len(dropped)) || st.WriteErrors != 0 {
				t.Fatalf("stats %+v with %d dropped", st, len(dropped))
			}
		})
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// seenSSRCs is an interceptor that records the SSRCs of the packets its
// local streams write.
type seenSSRCs struct {
	interceptor.NoOp
	mu   sync.Mutex
	seen []uint32
}

func (s *seenSSRCs) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		s.mu.Lock()
		s.seen = append(s.seen, h.SSRC)
		s.mu.Unlock()
		return w.Write(h, payload, a)
	})
}

type seenSSRCsFactory struct{ i *seenSSRCs }

func (f seenSSRCsFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.i, nil }

// The sender report interceptor sees only its stream's packets: RTX
// packets written through the same WriteStream pass it by.
func TestMediaOnlyInterceptorSkipsRTX(t *testing.T) {
	inner := &seenSSRCs{}
	i, err := mediaOnlyFactory{seenSSRCsFactory{inner}}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	w := i.BindLocalStream(&interceptor.StreamInfo{SSRC: ssrcVideo}, interceptor.RTPWriterFunc(
		func(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
			out = append(out, h.SSRC)
			return 0, nil
		}))
	for _, ssrc := range []uint32{ssrcVideo, ssrcVideoRTX, ssrcVideo} {
		if _, err := w.Write(&rtp.Header{SSRC: ssrc}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(out, []uint32{ssrcVideo, ssrcVideoRTX, ssrcVideo}) || !slices.Equal(inner.seen, []uint32{ssrcVideo, ssrcVideo}) {
		t.Fatalf("written %x, seen by the interceptor %x", out, inner.seen)
	}
}
