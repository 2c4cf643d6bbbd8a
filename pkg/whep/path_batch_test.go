package whep

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestSessionBatchesToSelectedPath(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(map[bool]string{true: "gso", false: "off"}[gso], func(t *testing.T) {
			ctx := t.Context()
			ts := newTestServer(t, func(c *Config) { c.UDPGSO = gso })
			ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
			c, _ := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
			c.waitPackets(t, ctx, 20)
			v := ts.media.all()[0]
			v.mu.Lock()
			b := v.batcher
			v.mu.Unlock()
			if !gso {
				if b != nil || ts.srv.ice.batches != nil {
					t.Fatal("batching with UDP GSO turned off")
				}
				return
			}
			pb, ok := b.(*pathBatch)
			if !ok {
				t.Fatalf("viewer batcher %T, want *pathBatch", b)
			}
			// The path is the client's end of the selected pair.
			pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("client selected pair: %v %v", pair, err)
			}
			want := netip.AddrPortFrom(netip.MustParseAddr(pair.Local.Address), pair.Local.Port)
			p := pb.current()
			if p == nil || p.remote != want {
				t.Fatalf("batch path %+v, want the client's %v", p, want)
			}
			// The socket is the one of the server's end of the pair.
			if p.conn == nil || p.conn.LocalAddr().(*net.UDPAddr).Port != int(pair.Remote.Port) {
				t.Fatalf("batch socket %v, want the one of port %d", p.conn, pair.Remote.Port)
			}
			// The fake viewer sends its video and audio packet of each tick
			// as one batch: the client got them (waitPackets above), sent
			// with GSO, two datagrams per send.
			st := ts.srv.ice.batches.Stats()
			if !st.GSO || st.GSOSends == 0 || st.Datagrams < 2*st.GSOSends || st.SendErrors != 0 {
				t.Fatalf("batch stats %+v: want GSO sends of 2 datagrams", st)
			}
		})
	}
}

func TestBatchAddr(t *testing.T) {
	udp := func(typ webrtc.ICECandidateType, addr string, port uint16) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Typ: typ, Address: addr, Port: port}
	}
	for _, tc := range []struct {
		name string
		pair *webrtc.ICECandidatePair
		want netip.AddrPort
	}{
		{"none", nil, netip.AddrPort{}},
		{"host", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeHost, "10.0.0.1", 8189), Remote: udp(webrtc.ICECandidateTypeHost, "192.0.2.7", 50000)}, netip.MustParseAddrPort("192.0.2.7:50000")},
		{"prflx mapped", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeHost, "10.0.0.1", 8189), Remote: udp(webrtc.ICECandidateTypePrflx, "::ffff:192.0.2.7", 4000)}, netip.MustParseAddrPort("192.0.2.7:4000")},
		{"ipv6", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeHost, "2001:db8::1", 8189), Remote: udp(webrtc.ICECandidateTypeHost, "2001:db8::2", 4000)}, netip.MustParseAddrPort("[2001:db8::2]:4000")},
		{"relay", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeRelay, "10.0.0.1", 8189), Remote: udp(webrtc.ICECandidateTypeHost, "192.0.2.7", 4000)}, netip.AddrPort{}},
		{"tcp", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeHost, "10.0.0.1", 8189), Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Address: "192.0.2.7", Port: 9}}, netip.AddrPort{}},
		{"mdns name", &webrtc.ICECandidatePair{Local: udp(webrtc.ICECandidateTypeHost, "10.0.0.1", 8189), Remote: udp(webrtc.ICECandidateTypeHost, "x.local", 4000)}, netip.AddrPort{}},
	} {
		if got := batchAddr(tc.pair); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
