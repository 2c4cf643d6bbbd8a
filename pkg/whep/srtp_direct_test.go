package whep

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// TestDirectSRTPSendsEveryPacket plays a session with Config.DirectSRTP:
// the client's pion decrypts the packets, and every packet the viewer wrote
// went by the fast path: into the UDP batch with GSO on, through ICE
// without batching.
func TestDirectSRTPSendsEveryPacket(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(map[bool]string{true: "gso", false: "off"}[gso], func(t *testing.T) {
			ctx := t.Context()
			ts := newTestServer(t, func(c *Config) { c.UDPGSO, c.DirectSRTP = gso, true })
			ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
			c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
			c.waitPackets(t, ctx, 40)
			sessions := ts.srv.sessions.list()
			if len(sessions) != 1 || sessions[0].direct == nil {
				t.Fatalf("sessions %v: want one with the direct path", sessions)
			}
			d := sessions[0].direct
			if !d.on.Load() {
				t.Fatal("direct SRTP not on after connecting")
			}
			// Ending the session stops the viewer: the counts are final.
			if r, _ := ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, ""); r.StatusCode != http.StatusOK {
				t.Fatalf("DELETE = %d", r.StatusCode)
			}
			v := ts.media.all()[0]
			waitFor(t, ctx, "the viewer closed", v.isClosed)
			v.mu.Lock()
			written := v.packets
			v.mu.Unlock()
			batched, direct, viaICE := d.batched.Load(), d.direct.Load(), d.viaICE.Load()
			if batched+direct+viaICE != written {
				t.Fatalf("fast path sent %d+%d+%d packets, the viewer wrote %d", batched, direct, viaICE, written)
			}
			if gso && (batched == 0 || viaICE != 0) || !gso && (viaICE != written) {
				t.Fatalf("gso %v: %d batched, %d direct, %d through ICE", gso, batched, direct, viaICE)
			}
			if got := c.packets.Load(); got < 40 || uint64(got) > written {
				t.Fatalf("client decrypted %d packets of %d sent", got, written)
			}
		})
	}
}

// TestDirectSRTPFollowsICERestart restarts ICE on a session with
// Config.DirectSRTP: the SRTP keys stay (DTLS goes on), the fast path
// follows the new pair, and the client decrypts what comes after.
func TestDirectSRTPFollowsICERestart(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.DirectSRTP = true })
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	c.waitPackets(t, ctx, 10)
	d := ts.srv.sessions.list()[0].direct
	_, restart := clientRestart(t, ctx, c)
	r, body := ts.do(t, ctx, http.MethodPatch, resp.Header.Get("Location"),
		hdr("Content-Type", sdpfrag.MediaType, "If-Match", resp.Header.Get("ETag")), restart)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("restart = %d %q", r.StatusCode, body)
	}
	answer, err := sdpfrag.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	applyRestartAnswer(t, c, answer)
	before := d.batched.Load() + d.direct.Load()
	c.waitPackets(t, ctx, 20)
	if after := d.batched.Load() + d.direct.Load(); after <= before {
		t.Fatalf("fast path sent nothing after the restart (%d before, %d after)", before, after)
	}
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("client selected pair: %v %v", pair, err)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr(pair.Local.Address), pair.Local.Port)
	if p := d.path.current(); p == nil || p.remote != want {
		t.Fatalf("fast path to %+v after the restart, want the client's %v", p, want)
	}
}
