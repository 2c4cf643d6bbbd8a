package whep

import (
	"net/http"
	"testing"

	"github.com/pion/webrtc/v4"
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
