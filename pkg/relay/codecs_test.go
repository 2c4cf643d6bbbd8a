package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestNormalizeProfileLevelID(t *testing.T) {
	for in, want := range map[string]string{
		"42c00d": "42e00d", // x264 baseline: constraint_set1 -> constrained baseline
		"42e01f": "42e01f",
		"42001f": "42001f",
		"4d401f": "4d001f",
		"640028": "640028",
		"64081f": "64001f",
		"f4001f": "f4001f", // other profiles as they are
		"":       "",
		"42c0":   "",
		"zzzzzz": "",
	} {
		if got := normalizeProfileLevelID(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func ann(tracks ...tsframes.Track) bus.Announcement {
	return bus.NewAnnouncement("s", 1, tsframes.Announcement{Tracks: tracks})
}

var (
	h264Track = tsframes.Track{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c00d"}
	opusTrack = tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000}
	aacTrack  = tsframes.Track{PID: 258, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC}
)

func TestTrackSet(t *testing.T) {
	high := h264Track
	high.ProfileLevelID = "640028"
	otherLevel := h264Track
	otherLevel.ProfileLevelID = "42c01e"
	unknown := h264Track
	unknown.ProfileLevelID = ""
	av := trackSetOf(ann(h264Track, opusTrack))
	for _, c := range []struct {
		name string
		set  trackSet
		same bool
	}{
		{"identical", trackSetOf(ann(h264Track, opusTrack)), true},
		{"other level", trackSetOf(ann(otherLevel, opusTrack)), true},
		{"profile not known yet", trackSetOf(ann(unknown, opusTrack)), true},
		{"other PIDs", trackSetOf(ann(tsframes.Track{PID: 300, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, ProfileLevelID: "42c00d"}, opusTrack)), true},
		{"other profile", trackSetOf(ann(high, opusTrack)), false},
		{"video only", trackSetOf(ann(h264Track)), false},
		{"AAC instead of Opus", trackSetOf(ann(h264Track, aacTrack)), false},
	} {
		if got := av.sameAs(c.set); got != c.same {
			t.Errorf("%s: sameAs = %v, want %v (%s vs %s)", c.name, got, c.same, av, c.set)
		}
	}
	// A viewer negotiated for High plays constrained baseline (a
	// transcoding stage's rendition), not the other way round.
	if hv := trackSetOf(ann(high, opusTrack)); !hv.sameAs(av) || av.sameAs(hv) {
		t.Errorf("High viewer, constrained baseline stream: %v (want true); constrained baseline viewer, High stream: %v (want false)", hv.sameAs(av), av.sameAs(hv))
	}
	if s := trackSetOf(ann(h264Track, aacTrack)); !s.video || s.audio || s.String() != "H264/42e00d" {
		t.Errorf("H264+AAC: %+v %s", s, s)
	}
}

func TestRegisterCodecs(t *testing.T) {
	m := &webrtc.MediaEngine{}
	if err := RegisterCodecs(m, ann(h264Track, opusTrack)); err != nil {
		t.Fatal(err)
	}
	if err := RegisterInterceptors(m, &interceptor.Registry{}); err != nil {
		t.Fatal(err)
	}
	if err := RegisterCodecs(&webrtc.MediaEngine{}, ann(aacTrack)); !errors.Is(err, ErrNoTracks) {
		t.Fatalf("AAC only: %v, want ErrNoTracks", err)
	}
	// What a browser offers is answered with packetization-mode=1, the
	// stream's profile and Opus.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: browserOffer}); err != nil {
		t.Fatal(err)
	}
	set := trackSetOf(ann(h264Track, opusTrack))
	for _, tr := range []webrtc.TrackLocal{
		newTrack(webrtc.RTPCodecTypeVideo, h264Capability(set.profile), "s"),
		newTrack(webrtc.RTPCodecTypeAudio, opusCapability(), "s"),
	} {
		if _, err := pc.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The browser's constrained baseline entry with packetization-mode=1
	// (PT 106) matches the stream's 42e00d exactly; nothing else is kept
	// but its RTX (PT 107), with both SSRCs in an FID group.
	for _, want := range []string{
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
		"a=rtpmap:111 opus/48000/2",
		"m=video 9 UDP/TLS/RTP/SAVPF 106 107\r\n",
		"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"a=rtcp-fb:106 nack pli",
		"a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n",
		"a=ssrc-group:FID ",
	} {
		if !strings.Contains(answer.SDP, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer.SDP)
		}
	}
}

func TestMatchCodec(t *testing.T) {
	c := func(pt uint8, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt),
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/h264", ClockRate: 90000, SDPFmtpLine: fmtp}}
	}
	want := h264Capability("42e01f")
	for _, tc := range []struct {
		name   string
		offers []webrtc.RTPCodecParameters
		pt     uint8
		ok     bool
	}{
		{"same profile preferred", []webrtc.RTPCodecParameters{c(96, "packetization-mode=1;profile-level-id=640032"), c(102, "packetization-mode=1;profile-level-id=42e01f")}, 102, true},
		{"mode 0 never", []webrtc.RTPCodecParameters{c(97, "packetization-mode=0;profile-level-id=42e01f"), c(96, "packetization-mode=1;profile-level-id=640032")}, 96, true},
		{"only mode 0", []webrtc.RTPCodecParameters{c(97, "profile-level-id=42e01f")}, 0, false},
		{"no H264", nil, 0, false},
	} {
		got, ok := matchCodec(want, tc.offers)
		if ok != tc.ok || (ok && uint8(got.PayloadType) != tc.pt) {
			t.Errorf("%s: got PT %d ok %v, want PT %d ok %v", tc.name, got.PayloadType, ok, tc.pt, tc.ok)
		}
	}
}

// browserOffer is a recvonly WHEP offer as Chrome makes it (trimmed).
const browserOffer = `v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24
a=setup:actpass
a=mid:0
a=recvonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24
a=setup:actpass
a=mid:1
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=104
a=rtpmap:106 H264/90000
a=rtcp-fb:106 goog-remb
a=rtcp-fb:106 transport-cc
a=rtcp-fb:106 ccm fir
a=rtcp-fb:106 nack
a=rtcp-fb:106 nack pli
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=106
a=rtpmap:108 H264/90000
a=rtcp-fb:108 goog-remb
a=rtcp-fb:108 transport-cc
a=rtcp-fb:108 ccm fir
a=rtcp-fb:108 nack
a=rtcp-fb:108 nack pli
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=rtpmap:127 H264/90000
a=rtcp-fb:127 goog-remb
a=rtcp-fb:127 transport-cc
a=rtcp-fb:127 ccm fir
a=rtcp-fb:127 nack
a=rtcp-fb:127 nack pli
a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:125 rtx/90000
a=fmtp:125 apt=127
a=rtpmap:39 H264/90000
a=rtcp-fb:39 goog-remb
a=rtcp-fb:39 transport-cc
a=rtcp-fb:39 ccm fir
a=rtcp-fb:39 nack
a=rtcp-fb:39 nack pli
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
`

// stripRTX removes the RTX payload types from the video section of an
// offer: an offer without RTX.
func stripRTX(offer string) string {
	lines := strings.Split(strings.ReplaceAll(offer, "\r\n", "\n"), "\n")
	rtx := map[string]bool{}
	for _, l := range lines {
		if pt, codec, ok := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " "); ok && codec == "rtx/90000" {
			rtx[pt] = true
		}
	}
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "m=video ") {
			f := strings.Fields(l)
			kept := f[:3]
			for _, pt := range f[3:] {
				if !rtx[pt] {
					kept = append(kept, pt)
				}
			}
			out = append(out, strings.Join(kept, " "))
			continue
		}
		pt, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(l, "a=rtpmap:"), "a=fmtp:"), " ")
		if (strings.HasPrefix(l, "a=rtpmap:") || strings.HasPrefix(l, "a=fmtp:")) && rtx[pt] {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}

// In pkg/whep's order (tracks added before the offer is applied), RTX is
// answered when offered, and left out, with its SSRC, when not.
func TestAnswerHasRTXOnlyWhenOffered(t *testing.T) {
	for _, offered := range []bool{true, false} {
		offer := browserOffer
		if !offered {
			offer = stripRTX(offer)
			if strings.Contains(offer, "rtx") {
				t.Fatal("rtx left in the offer")
			}
		}
		m := &webrtc.MediaEngine{}
		if err := RegisterCodecs(m, ann(h264Track, opusTrack)); err != nil {
			t.Fatal(err)
		}
		pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		set := trackSetOf(ann(h264Track, opusTrack))
		tr, err := pc.AddTransceiverFromTrack(newTrack(webrtc.RTPCodecTypeVideo, h264Capability(set.profile), "s"),
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
			t.Fatal(err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			t.Fatal(err)
		}
		rtxSSRC := tr.Sender().GetParameters().Encodings[0].RTX.SSRC
		hasRTX := strings.Contains(answer.SDP, "a=fmtp:107 apt=106") && strings.Contains(answer.SDP, "a=ssrc-group:FID ")
		if hasRTX != offered || (rtxSSRC != 0) != offered || (!offered && strings.Contains(answer.SDP, "rtx")) {
			t.Fatalf("rtx offered %v: RTX SSRC %d, answer:\n%s", offered, rtxSSRC, answer.SDP)
		}
	}
}
