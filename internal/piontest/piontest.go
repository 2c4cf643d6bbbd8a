// Package piontest builds the pion/webrtc peers of tests: an API for
// loopback peers (UDP over IPv4 on 127.0.0.1, no mDNS, pion's default
// codecs), receive-only players on it and the offer/answer steps of a WHEP
// exchange, each bounded. The caller owns and closes the PeerConnection.
package piontest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// GatherTimeout bounds candidate gathering in Offer.
const GatherTimeout = 10 * time.Second

// API returns a pion API for loopback peers (UDP over IPv4 on 127.0.0.1,
// no mDNS, pion's default codecs); tune, when not nil, adjusts its
// SettingEngine first. Both ends of a test's exchange may use it.
func API(t testing.TB, tune func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	se := Loopback()
	if tune != nil {
		tune(&se)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
}

// Loopback returns the SettingEngine of loopback peers: UDP over IPv4 on
// 127.0.0.1, no mDNS.
func Loopback() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// RecvOnly returns a PeerConnection of API(t, tune) with a receive-only
// transceiver per kind.
func RecvOnly(t testing.TB, tune func(*webrtc.SettingEngine), kinds ...webrtc.RTPCodecType) *webrtc.PeerConnection {
	t.Helper()
	pc, err := API(t, tune).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			t.Fatal(err)
		}
	}
	return pc
}

// Offer creates pc's offer, waits for its candidates (at most
// GatherTimeout) and returns the SDP with them.
func Offer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(GatherTimeout):
		t.Fatal("client gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// Answer applies the server's answer to pc.
func Answer(t testing.TB, pc *webrtc.PeerConnection, sdp string) {
	t.Helper()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatalf("SetRemoteDescription(answer): %v\n%s", err, sdp)
	}
}

// ReadRTP reads every RTP packet of each track pc receives, in a goroutine
// per track counted in wg, and gives it to fn with the track and the time it
// was read, until the track ends (pc closed). fn is called from those
// goroutines: it must be safe for concurrent use.
func ReadRTP(pc *webrtc.PeerConnection, wg *sync.WaitGroup, fn func(tr *webrtc.TrackRemote, p *rtp.Packet, at time.Time)) {
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				fn(tr, p, time.Now())
			}
		}()
	})
}
