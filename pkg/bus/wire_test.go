package bus

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// wireEpoch and wireAnn are the epoch and the announcement of casesWire.
const wireEpoch = 7

var wireAnn = Announcement{Stream: "c", Epoch: wireEpoch, Video: 256, Audio: 257}

func wireVideo(pts, dts int64, key bool, data string) tsframes.Frame {
	return tsframes.Frame{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: pts, DTS: dts, Key: key, Data: []byte(data)}
}

func wireAudio(pts, dur int64, more bool, data string) tsframes.Frame {
	return tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, PTS: pts, DTS: pts, Duration: dur, More: more, Data: []byte(data)}
}

// casesWire are frames of stream "c", epoch 7, and the messages that carry
// them, byte for byte. TestWireRoundTrip encodes the frames into exactly
// these messages and decodes the messages into exactly these frames;
// FuzzDecoder starts from the messages.
var casesWire = []struct {
	name  string
	video bool
	// packets is the frame, or the audio packets of one PES.
	packets []tsframes.Frame
	maxData int
	msgs    []stored
}{
	{
		name:    "keyframe",
		video:   true,
		packets: []tsframes.Frame{wireVideo(900, 800, true, "\x00\x00\x00\x01\x65\x88")},
		maxData: HeaderRoom,
		msgs: []stored{
			{"media.c.v.key", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "900", HeaderDTS: "800", HeaderKey: "1"}, "\x00\x00\x00\x01\x65\x88"},
		},
	},
	{
		name:    "delta with negative timestamps",
		video:   true,
		packets: []tsframes.Frame{wireVideo(-5, -6, false, "\x00\x00\x00\x01\x41\x9a")},
		maxData: HeaderRoom,
		msgs: []stored{
			{"media.c.v.delta", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "-5", HeaderDTS: "-6"}, "\x00\x00\x00\x01\x41\x9a"},
		},
	},
	{
		name:    "empty delta",
		video:   true,
		packets: []tsframes.Frame{wireVideo(3, 3, false, "")},
		maxData: HeaderRoom,
		msgs: []stored{
			{"media.c.v.delta", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "3", HeaderDTS: "3"}, ""},
		},
	},
	{
		name:    "audio packet past 33 bits",
		packets: []tsframes.Frame{wireAudio(8589934592, 1800, false, "\xfc\x01")},
		maxData: HeaderRoom,
		msgs: []stored{
			{"media.c.a", map[string]string{HeaderEpoch: "7", HeaderCodec: "Opus", HeaderPTS: "8589934592", HeaderDur: "1800"}, "\xfc\x01"},
		},
	},
	{
		name: "audio packets of one PES",
		packets: []tsframes.Frame{
			wireAudio(1000, 1800, true, "\xfc\x01"),
			wireAudio(2800, 900, true, "\xfc"),
			wireAudio(3700, 1800, false, "\xfc\x02\x03"),
		},
		maxData: HeaderRoom,
		msgs: []stored{
			{"media.c.a", map[string]string{HeaderEpoch: "7", HeaderCodec: "Opus", HeaderPTS: "1000", HeaderDur: "4500",
				HeaderSizes: "2,1,3", HeaderDurs: "1800,900,1800"}, "\xfc\x01\xfc\xfc\x02\x03"},
		},
	},
	{
		name:    "frame of exactly one part",
		video:   true,
		packets: []tsframes.Frame{wireVideo(6, 6, false, "abcd")},
		maxData: 4,
		msgs: []stored{
			{"media.c.v.delta", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "6", HeaderDTS: "6"}, "abcd"},
		},
	},
	{
		name:    "keyframe in three parts",
		video:   true,
		packets: []tsframes.Frame{wireVideo(3, 3, true, "abcde")},
		maxData: 2,
		msgs: []stored{
			{"media.c.v.key", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "3", HeaderDTS: "3", HeaderKey: "1", HeaderParts: "3"}, "ab"},
			{"media.c.part", map[string]string{HeaderEpoch: "7", HeaderPart: "2/3"}, "cd"},
			{"media.c.part", map[string]string{HeaderEpoch: "7", HeaderPart: "3/3"}, "e"},
		},
	},
	{
		name:    "audio packets of one PES in two parts",
		packets: []tsframes.Frame{wireAudio(0, 960, true, "abc"), wireAudio(960, 960, false, "de")},
		maxData: 3,
		msgs: []stored{
			{"media.c.a", map[string]string{HeaderEpoch: "7", HeaderCodec: "Opus", HeaderPTS: "0", HeaderDur: "1920",
				HeaderSizes: "3,2", HeaderDurs: "960,960", HeaderParts: "2"}, "abc"},
			{"media.c.part", map[string]string{HeaderEpoch: "7", HeaderPart: "2/2"}, "de"},
		},
	},
}

func TestWireRoundTrip(t *testing.T) {
	enc := newEncoder(mustSubjects("c"), wireEpoch)
	for _, tc := range casesWire {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := enc.frame(tc.video, tc.packets, tc.maxData)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if len(msgs) != len(tc.msgs) {
				t.Fatalf("encoded %d messages, want %d", len(msgs), len(tc.msgs))
			}
			for i, m := range msgs {
				if w := tc.msgs[i]; m.Subject != w.subject || !sameHeader(m.Header, w.hdr) || string(m.Data) != w.data {
					t.Errorf("message %d: %s %v %q\nwant %s %v %q", i, m.Subject, m.Header, m.Data, w.subject, w.hdr, w.data)
				}
			}

			ann := wireAnn
			d := decoder{subj: mustSubjects("c"), ann: &ann}
			var got []Message
			for i, s := range tc.msgs {
				m, ok, err := d.push(uint64(i+1), s.subject, s.header(), []byte(s.data))
				if err != nil {
					t.Fatalf("decode message %d: %v", i, err)
				}
				if ok {
					if got, err = m.Frames(got); err != nil {
						t.Fatalf("frames of message %d: %v", i, err)
					}
				}
			}
			if len(got) != len(tc.packets) {
				t.Fatalf("decoded %d frames, want %d", len(got), len(tc.packets))
			}
			for i, m := range got {
				if w := tc.packets[i]; m.Seq != 1 || m.Epoch != wireEpoch || !sameFrame(m.Frame, w) {
					t.Errorf("frame %d: seq %d epoch %d %+v\nwant seq 1 epoch %d %+v", i, m.Seq, m.Epoch, m.Frame, wireEpoch, w)
				}
			}
		})
	}
}

func sameHeader(h nats.Header, want map[string]string) bool {
	got := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) != 1 {
			return false
		}
		got[k] = v[0]
	}
	return maps.Equal(got, want)
}

func sameFrame(a, b tsframes.Frame) bool {
	return a.PID == b.PID && a.Kind == b.Kind && a.Codec == b.Codec && a.PTS == b.PTS && a.DTS == b.DTS &&
		a.Duration == b.Duration && a.Key == b.Key && a.More == b.More && bytes.Equal(a.Data, b.Data)
}

// TestEncodeFrameLimits: a frame is never split in more than MaxParts
// messages, and a part carries at least HeaderRoom bytes.
func TestEncodeFrameLimits(t *testing.T) {
	enc := newEncoder(mustSubjects("c"), wireEpoch)
	if msgs, err := enc.frame(true, []tsframes.Frame{wireVideo(0, 0, true, string(make([]byte, 2*MaxParts)))}, 2); err != nil || len(msgs) != MaxParts {
		t.Fatalf("%d bytes in parts of 2: %d messages, %v; want %d", 2*MaxParts, len(msgs), err, MaxParts)
	}
	if _, err := enc.frame(true, []tsframes.Frame{wireVideo(0, 0, true, string(make([]byte, 2*MaxParts+1)))}, 2); err == nil {
		t.Fatalf("%d bytes in parts of 2: encoded, want refused", 2*MaxParts+1)
	}
	for _, tc := range []struct {
		maxPayload int64
		want       int
	}{{1 << 20, 1<<20 - HeaderRoom}, {2 * HeaderRoom, HeaderRoom}, {HeaderRoom, HeaderRoom}, {0, HeaderRoom}} {
		if got := partSize(tc.maxPayload); got != tc.want {
			t.Errorf("partSize(%d) = %d, want %d", tc.maxPayload, got, tc.want)
		}
	}
}

// TestWireAnnouncement: the announcement message is the JSON document on
// the tracks subject, with the epoch, a subject rollup and no TTL.
func TestWireAnnouncement(t *testing.T) {
	data, err := json.Marshal(wireAnn)
	if err != nil {
		t.Fatal(err)
	}
	m := newEncoder(mustSubjects("c"), wireEpoch).announcement(data)
	want := map[string]string{HeaderEpoch: "7", "Nats-Rollup": "sub", "Nats-TTL": "never"}
	if m.Subject != "media.c.tracks" || !sameHeader(m.Header, want) || !bytes.Equal(m.Data, data) {
		t.Fatalf("announcement: %s %v %q", m.Subject, m.Header, m.Data)
	}
	d := decoder{subj: mustSubjects("c")}
	got, ok, err := d.push(1, m.Subject, m.Header, m.Data)
	if !ok || err != nil || got.Epoch != wireEpoch || got.Tracks == nil || got.Tracks.Stream != "c" ||
		got.Tracks.Video != 256 || got.Tracks.Audio != 257 || d.ann == nil {
		t.Fatalf("decoded %+v ok %v: %v", got, ok, err)
	}
}
