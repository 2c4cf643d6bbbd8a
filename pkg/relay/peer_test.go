package relay

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
)

// loopbackSettings limits ICE to UDP over 127.0.0.1.
func loopbackSettings() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// peer is a viewer's PeerConnection (the server side, as pkg/whep builds
// it) connected to a pion client that records what it receives.
type peer struct {
	server, client *webrtc.PeerConnection
	video, audio   *recorder
	// repaired records the video packets that came on the RTX stream,
	// unwrapped (their original sequence number), also recorded in video
	// unless dropped as duplicates (see peerOptions.replayProtection).
	repaired *recorder
	// rtxSSRC is the SSRC the latest RTX packet came on.
	rtxSSRC atomic.Uint32
	readers sync.WaitGroup
}

// peerOptions change how connectPeerWith builds the two PeerConnections.
type peerOptions struct {
	// server, when set, is the server's SettingEngine (default: its own
	// UDP socket on loopback).
	server *webrtc.SettingEngine
	// replayProtection keeps the client's SRTP replay protection on and
	// drops RTX repairs of packets it got (as a browser's jitter buffer
	// does: pion's NACK generator does not see repairs and asks again);
	// off, it sees retransmissions of packets it got.
	replayProtection bool
	// noRTX leaves RTX out of the client's offer (pion's default codecs
	// have it, as browsers do).
	noRTX bool
}

// connectPeer negotiates a client (offering to receive video and audio,
// like a browser) with a server PeerConnection that sends v's tracks, and
// returns once the server is connected. It does not call v.Start.
func connectPeer(t testing.TB, v *Viewer, ann bus.Announcement) *peer {
	t.Helper()
	return connectPeerWith(t, v, ann, peerOptions{})
}

// connectPeerWith is connectPeer with options.
func connectPeerWith(t testing.TB, v *Viewer, ann bus.Announcement, opts peerOptions) *peer {
	t.Helper()
	p := &peer{video: newRecorder(), audio: newRecorder(), repaired: newRecorder()}

	sm := &webrtc.MediaEngine{}
	if err := RegisterCodecs(sm, ann); err != nil {
		t.Fatal(err)
	}
	sir := &interceptor.Registry{}
	if err := RegisterInterceptors(sm, sir); err != nil {
		t.Fatal(err)
	}
	sse := loopbackSettings()
	if opts.server != nil {
		sse = *opts.server
	}
	server, err := webrtc.NewAPI(webrtc.WithMediaEngine(sm), webrtc.WithInterceptorRegistry(sir),
		webrtc.WithSettingEngine(sse)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p.server = server

	cm := &webrtc.MediaEngine{}
	if opts.noRTX {
		for _, c := range []struct {
			params webrtc.RTPCodecParameters
			kind   webrtc.RTPCodecType
		}{
			{webrtc.RTPCodecParameters{RTPCodecCapability: h264Capability(""), PayloadType: fakePTVideo}, webrtc.RTPCodecTypeVideo},
			{webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability(), PayloadType: fakePTAudio}, webrtc.RTPCodecTypeAudio},
		} {
			if err := cm.RegisterCodec(c.params, c.kind); err != nil {
				t.Fatal(err)
			}
		}
	} else if err := cm.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	cir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(cm, cir); err != nil {
		t.Fatal(err)
	}
	cse := loopbackSettings()
	cse.DisableSRTPReplayProtection(!opts.replayProtection)
	client, err := webrtc.NewAPI(webrtc.WithMediaEngine(cm), webrtc.WithInterceptorRegistry(cir),
		webrtc.WithSettingEngine(cse)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p.client = client
	t.Cleanup(p.close)

	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := client.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	client.OnTrack(func(tr *webrtc.TrackRemote, rx *webrtc.RTPReceiver) {
		rec := p.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			rec = p.video
		}
		p.readers.Add(2)
		go func() {
			// Reading RTCP lets the client's interceptors see our sender
			// reports, so its receiver reports carry LSR/DLSR (as a
			// browser's do).
			defer p.readers.Done()
			for {
				if _, _, err := rx.ReadRTCP(); err != nil {
					return
				}
			}
		}()
		go func() {
			defer p.readers.Done()
			// got[seq] is the count of packets received when seq came.
			got, n := map[uint16]int{}, 0
			for {
				pkt, attr, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if rtxSSRC, ok := attr.Get(webrtc.AttributeRtxSsrc).(uint32); ok {
					p.rtxSSRC.Store(rtxSSRC)
					_, _ = p.repaired.WriteRTP(&pkt.Header, pkt.Payload)
					if at, ok := got[pkt.SequenceNumber]; ok && n-at < 1<<14 && opts.replayProtection {
						continue
					}
				}
				got[pkt.SequenceNumber] = n
				n++
				_, _ = rec.WriteRTP(&pkt.Header, pkt.Payload)
			}
		}()
	})

	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered

	if err := server.SetRemoteDescription(*client.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	var vs, as *webrtc.RTPSender
	if tr := v.VideoTrack(); tr != nil {
		if vs, err = server.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	if tr := v.AudioTrack(); tr != nil {
		if as, err = server.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	v.BindSenders(vs, as)
	connected := make(chan struct{})
	var once sync.Once
	server.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	answer, err := server.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(server)
	if err := server.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	for _, line := range strings.Split(server.LocalDescription().SDP, "\n") {
		if strings.HasPrefix(line, "a=candidate") && !strings.Contains(line, "127.0.0.1") {
			t.Fatalf("candidate outside loopback: %s", line)
		}
	}
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("PeerConnection not connected")
	}
	return p
}

// close closes both PeerConnections and waits for the readers.
func (p *peer) close() {
	_ = p.client.Close()
	_ = p.server.Close()
	p.readers.Wait()
}

// nack makes the client ask for seqs of the video track again.
func (p *peer) nack(t testing.TB, ssrc uint32, seqs ...uint16) {
	t.Helper()
	pairs := make([]rtcp.NackPair, len(seqs))
	for i, s := range seqs {
		pairs[i] = rtcp.NackPair{PacketID: s}
	}
	if err := p.client.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: pairs}}); err != nil {
		t.Fatal(err)
	}
}

// waitCtx is a context for one step of a test.
func waitCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
