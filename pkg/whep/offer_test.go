package whep

import (
	"errors"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestPlan(t *testing.T) {
	h265 := tsframes.Track{PID: 300, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true, ProfileID: 1, LevelID: 60}
	h265Main10 := tsframes.Track{PID: 300, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true, ProfileID: 2, LevelID: 93}
	h265High := tsframes.Track{PID: 300, Kind: tsframes.KindVideo, Codec: tsframes.CodecH265, WebRTC: true, ProfileID: 1, TierFlag: 1, LevelID: 120}
	// The H.264 rendition a transcoding stage makes of the H.265 track.
	derived := tsframes.Track{PID: 7937, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01f", DerivedFrom: 300}
	h264V := relay.Want{Video: true, VideoCodec: tsframes.CodecH264}
	h265V := relay.Want{Video: true, VideoCodec: tsframes.CodecH265}
	cases := []struct {
		name   string
		offer  []string
		tracks []tsframes.Track
		want   relay.Want
		err    string
	}{
		{"av", []string{"video", "audio"}, []tsframes.Track{trackH264, trackOpus}, relay.Want{Video: true, Audio: true, VideoCodec: tsframes.CodecH264}, ""},
		{"video offer on av", []string{"video"}, []tsframes.Track{trackH264, trackOpus}, h264V, ""},
		{"audio offer on av", []string{"audio"}, []tsframes.Track{trackH264, trackOpus}, relay.Want{Audio: true}, ""},
		{"av offer on audio only", []string{"video", "audio"}, []tsframes.Track{trackOpus}, relay.Want{Audio: true}, ""},
		{"av offer on H.264+AAC", []string{"video", "audio"}, []tsframes.Track{trackH264, trackAAC}, h264V, ""},
		{"audio offer on H.264+AAC", []string{"audio"}, []tsframes.Track{trackH264, trackAAC}, relay.Want{},
			`stream "s": audio is AAC, which WebRTC cannot carry; video (H264) was not offered`},
		{"av offer on H.265+AAC", []string{"video", "audio"}, []tsframes.Track{h265, trackAAC}, relay.Want{},
			`stream "s": video is H265 (profile-id=1, tier-flag=0), which the offer's video section does not accept, and the stream has no H264 rendition; audio is AAC, which WebRTC cannot carry`},
		{"H.265 offer on H.265+Opus", []string{"h265", "audio"}, []tsframes.Track{h265, trackOpus}, relay.Want{Video: true, Audio: true, VideoCodec: tsframes.CodecH265}, ""},
		{"H.265 offer on H.265 Main 10", []string{"h265"}, []tsframes.Track{h265Main10}, h265V, ""},
		{"H.265 offer on H.265 high tier", []string{"h265"}, []tsframes.Track{h265High}, relay.Want{},
			`stream "s": video is H265 (profile-id=1, tier-flag=1), which the offer's video section does not accept, and the stream has no H264 rendition`},
		{"H.265+H.264 offer on H.265", []string{"h265+h264"}, []tsframes.Track{h265}, h265V, ""},
		{"H.265+H.264 offer on H.265 with an H.264 rendition", []string{"h265+h264"}, []tsframes.Track{h265, derived}, h265V, ""},
		{"H.264 offer on H.265 with an H.264 rendition", []string{"video"}, []tsframes.Track{h265, derived, trackOpus},
			relay.Want{Video: true, Audio: false, VideoCodec: tsframes.CodecH264}, ""},
		{"H.265 offer on H.264", []string{"h265"}, []tsframes.Track{trackH264}, relay.Want{},
			`stream "s": the offer's video section does not accept H264 with packetization-mode=1`},
		{"video offer on audio", []string{"video"}, []tsframes.Track{trackOpus}, relay.Want{},
			`stream "s": the stream has no video; audio (Opus) was not offered`},
		{"VP8 offer", []string{"vp8"}, []tsframes.Track{trackH264}, relay.Want{},
			`stream "s": the offer's video section does not accept H264 with packetization-mode=1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseOffer([]byte(fixedOffer(c.offer...)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := plan(o, liveEntry("s", c.tracks...).Tracks)
			if c.err != "" {
				if !errors.Is(err, errNotPlayable) || !strings.HasSuffix(err.Error(), c.err) {
					t.Fatalf("plan error = %v, want ...%s", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("plan = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestParseOfferSendrecvBecomesRecvonly(t *testing.T) {
	in := strings.ReplaceAll(fixedOffer("video", "audio"), "a=recvonly", "a=sendrecv")
	o, err := parseOffer([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(o.sdp, "sendrecv") || strings.Count(o.sdp, "a=recvonly") != 2 {
		t.Fatalf("offer not rewritten:\n%s", o.sdp)
	}
	if o.video == nil || o.video.mid != "0" || o.audio == nil || o.audio.mid != "1" {
		t.Fatalf("sections %+v %+v", o.video, o.audio)
	}
	// Unchanged when already recvonly.
	in = fixedOffer("video")
	if o, err = parseOffer([]byte(in)); err != nil || o.sdp != in {
		t.Fatalf("recvonly offer changed: %v", err)
	}
}

func TestParseOfferErrors(t *testing.T) {
	cases := []struct {
		name string
		sdp  string
		err  error
	}{
		{"garbage", "hello", errBadOffer},
		{"no media", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", errBadOffer},
		{"no ufrag", strings.ReplaceAll(fixedOffer("video"), "a=ice-ufrag:abcd\r\n", ""), errBadOffer},
		{"duplicate mid", strings.ReplaceAll(fixedOffer("video", "audio"), "a=mid:1", "a=mid:0"), errBadOffer},
		{"inactive only", strings.ReplaceAll(fixedOffer("video"), "a=recvonly", "a=inactive"), errNotPlayable},
		{"port 0", strings.ReplaceAll(fixedOffer("audio"), "m=audio 9", "m=audio 0"), errNotPlayable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseOffer([]byte(c.sdp)); !errors.Is(err, c.err) {
				t.Fatalf("parseOffer = %v, want %v", err, c.err)
			}
		})
	}
}
