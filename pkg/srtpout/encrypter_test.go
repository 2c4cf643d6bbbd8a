package srtpout

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/piontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 20 * time.Second

// pair is a sending peer (one video track, answering) and a receive-only
// peer (offering, as a WHEP player does), connected on loopback.
type pair struct {
	send, recv *webrtc.PeerConnection
	sender     *webrtc.RTPSender
	tracks     chan *webrtc.TrackRemote
}

// connect connects a pair whose peers offer only profile; senderServer
// makes the sending peer the DTLS server (the offer says a=setup:active).
func connect(t *testing.T, profile dtls.SRTPProtectionProfile, senderServer bool) *pair {
	t.Helper()
	tune := func(se *webrtc.SettingEngine) { se.SetSRTPProtectionProfiles(profile) }
	p := &pair{tracks: make(chan *webrtc.TrackRemote, 1)}
	var err error
	p.send, err = piontest.API(t, tune).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.send.Close() })
	p.recv = piontest.RecvOnly(t, tune, webrtc.RTPCodecTypeVideo)
	t.Cleanup(func() { _ = p.recv.Close() })
	p.recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { p.tracks <- tr })

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	if p.sender, err = p.send.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	sendUp, recvUp := connected(p.send), connected(p.recv)
	offer := piontest.Offer(t, p.recv)
	if senderServer {
		offer = strings.ReplaceAll(offer, "a=setup:actpass", "a=setup:active")
	}
	if err := p.send.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := p.send.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.send)
	if err := p.send.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(testTimeout)
	select {
	case <-gathered:
	case <-timeout:
		t.Fatal("gathering timed out")
	}
	piontest.Answer(t, p.recv, p.send.LocalDescription().SDP)
	for _, up := range []<-chan struct{}{sendUp, recvUp} {
		select {
		case <-up:
		case <-timeout:
			t.Fatalf("not connected: %v %v", p.send.ConnectionState(), p.recv.ConnectionState())
		}
	}
	return p
}

// connected returns a channel closed when pc is connected.
func connected(pc *webrtc.PeerConnection) <-chan struct{} {
	up := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(up) })
		}
	})
	return up
}

// TestEncrypterPacketsDecryptAtThePeer sends packets encrypted by an
// Encrypter made from the sender's DTLS transport through its ICE path: the
// peer's pion decrypts each, with the sequence numbers, timestamps and
// payloads sent, across a sequence number rollover, for both DTLS roles and
// the SRTP profiles browsers use.
func TestEncrypterPacketsDecryptAtThePeer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile dtls.SRTPProtectionProfile
		want    string
	}{
		{"aes-cm-sha1-80", dtls.SRTP_AES128_CM_HMAC_SHA1_80, "SRTP_AES128_CM_HMAC_SHA1_80"},
		{"aead-aes-128-gcm", dtls.SRTP_AEAD_AES_128_GCM, "SRTP_AEAD_AES_128_GCM"},
	} {
		for _, server := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/client", true: "/server"}[server], func(t *testing.T) {
				p := connect(t, tc.profile, server)
				local := p.send.CurrentLocalDescription().SDP
				if got := IsDTLSClient(local); got == server {
					t.Fatalf("IsDTLSClient = %v with the offer's setup changed: %v", got, server)
				}
				enc, err := FromDTLS(p.sender.Transport(), IsDTLSClient(local))
				if err != nil {
					t.Fatal(err)
				}
				if got := enc.Profile().String(); got != tc.want {
					t.Fatalf("profile %s, want %s", got, tc.want)
				}
				params := p.sender.GetParameters()
				ssrc := uint32(params.Encodings[0].SSRC)
				pt := uint8(params.Codecs[0].PayloadType)
				const n = 40
				start := uint16(65536 - n/2) // the sequence numbers wrap
				sent := make([][]byte, n)
				for i := range n {
					h := &rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc, SequenceNumber: start + uint16(i),
						Timestamp: 1000 + uint32(i)*3000, Marker: i%2 == 1}
					sent[i] = []byte{0x10, byte(i), 2, 3, 4, 5, 6, 7, byte(i)}
					pkt := make([]byte, enc.Size(h, sent[i]))
					if err := enc.EncryptTo(pkt, h, sent[i]); err != nil {
						t.Fatal(err)
					}
					if err := enc.Send(pkt); err != nil {
						t.Fatal(err)
					}
				}
				var tr *webrtc.TrackRemote
				select {
				case tr = <-p.tracks:
				case <-time.After(testTimeout):
					t.Fatal("no track at the peer")
				}
				if err := tr.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					got, _, err := tr.ReadRTP()
					if err != nil {
						t.Fatalf("packet %d: %v", i, err)
					}
					if got.SequenceNumber != start+uint16(i) || got.Timestamp != 1000+uint32(i)*3000 ||
						got.Marker != (i%2 == 1) || !bytes.Equal(got.Payload, sent[i]) {
						t.Fatalf("packet %d: seq %d ts %d marker %v payload %x, want seq %d ts %d payload %x",
							i, got.SequenceNumber, got.Timestamp, got.Marker, got.Payload,
							start+uint16(i), 1000+uint32(i)*3000, sent[i])
					}
				}
			})
		}
	}
}

// TestFromDTLSBeforeConnected fails with ErrNotConnected, not
// ErrPionLayout: the fields are where this package reads them.
func TestFromDTLSBeforeConnected(t *testing.T) {
	pc, err := piontest.API(t, nil).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = FromDTLS(pc.SCTP().Transport(), true)
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("FromDTLS before DTLS: %v, want ErrNotConnected (pion's DTLSTransport fields moved?)", err)
	}
	if _, _, err := fields(pc.SCTP().Transport()); err != nil {
		t.Fatalf("pion's DTLSTransport fields: %v", err)
	}
}

func TestIsDTLSClient(t *testing.T) {
	for sdp, want := range map[string]bool{
		"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:active\r\n":  true,
		"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:passive\r\n": false,
		"v=0\r\na=setup:actpass\r\n":                                   false,
		"v=0\r\n":                                                      false,
	} {
		if got := IsDTLSClient(sdp); got != want {
			t.Errorf("IsDTLSClient(%q) = %v, want %v", sdp, got, want)
		}
	}
}
