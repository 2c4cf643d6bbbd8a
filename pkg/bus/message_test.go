package bus

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// stored is one stored message fed to the decoder.
type stored struct {
	subject string
	hdr     map[string]string
	data    string
}

func (s stored) header() nats.Header {
	h := nats.Header{}
	for k, v := range s.hdr {
		h.Set(k, v)
	}
	return h
}

// casesDecode feeds the decoder test and the fuzz seeds.
var casesDecode = []struct {
	name string
	in   []stored
	// want lists the complete messages, in order; wantErrs counts the
	// messages rejected with an error.
	want     []Message
	wantErrs int
}{
	{
		name: "announcement then frames",
		in: []stored{
			{"media.c.tracks", map[string]string{HeaderEpoch: "7"}, `{"stream":"c","epoch":7,"tracks":[{"pid":256,"kind":"video","codec":"H264","webrtc":true}],"video_pid":256,"audio_pid":257}`},
			{"media.c.v.key", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "900", HeaderDTS: "800", HeaderKey: "1"}, "K"},
			{"media.c.v.delta", map[string]string{HeaderEpoch: "7", HeaderCodec: "H264", HeaderPTS: "-5", HeaderDTS: "-6"}, "D"},
			{"media.c.a", map[string]string{HeaderEpoch: "7", HeaderCodec: "Opus", HeaderPTS: "8589934592", HeaderDur: "1800"}, "A"},
		},
		want: []Message{
			{Seq: 1, Epoch: 7, Tracks: &Announcement{Stream: "c", Epoch: 7, Video: 256, Audio: 257,
				Tracks: []tsframes.Track{{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true}}}},
			{Seq: 2, Epoch: 7, Frame: tsframes.Frame{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: 900, DTS: 800, Key: true, Data: []byte("K")}},
			{Seq: 3, Epoch: 7, Frame: tsframes.Frame{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: -5, DTS: -6, Data: []byte("D")}},
			{Seq: 4, Epoch: 7, Frame: tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, PTS: 8589934592, DTS: 8589934592, Duration: 1800, Data: []byte("A")}},
		},
	},
	{
		name: "frame of another epoch gets no PID",
		in: []stored{
			{"media.c.tracks", map[string]string{HeaderEpoch: "7"}, `{"stream":"c","epoch":7,"tracks":[],"video_pid":256}`},
			{"media.c.v.delta", map[string]string{HeaderEpoch: "8", HeaderCodec: "H264", HeaderPTS: "1", HeaderDTS: "1"}, "D"},
		},
		want: []Message{
			{Seq: 1, Epoch: 7, Tracks: &Announcement{Stream: "c", Epoch: 7, Tracks: []tsframes.Track{}, Video: 256}},
			{Seq: 2, Epoch: 8, Frame: tsframes.Frame{Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: 1, DTS: 1, Data: []byte("D")}},
		},
	},
	{
		name: "three parts",
		in: []stored{
			{"media.c.v.key", map[string]string{HeaderEpoch: "1", HeaderCodec: "H264", HeaderPTS: "3", HeaderDTS: "3", HeaderKey: "1", HeaderParts: "3"}, "ab"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "2/3"}, "cd"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "3/3"}, "e"},
		},
		want: []Message{
			{Seq: 1, Epoch: 1, Frame: tsframes.Frame{Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: 3, DTS: 3, Key: true, Data: []byte("abcde")}},
		},
	},
	{
		name: "missing part: frame discarded, next frame fine",
		in: []stored{
			{"media.c.v.key", map[string]string{HeaderEpoch: "1", HeaderCodec: "H264", HeaderPTS: "3", HeaderDTS: "3", HeaderParts: "3"}, "ab"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "3/3"}, "e"},
			{"media.c.a", map[string]string{HeaderEpoch: "1", HeaderCodec: "Opus", HeaderPTS: "4"}, "A"},
		},
		want: []Message{
			{Seq: 3, Epoch: 1, Frame: tsframes.Frame{Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, PTS: 4, DTS: 4, Data: []byte("A")}},
		},
		wantErrs: 1,
	},
	{
		name: "frame interrupting parts",
		in: []stored{
			{"media.c.v.key", map[string]string{HeaderEpoch: "1", HeaderCodec: "H264", HeaderPTS: "3", HeaderDTS: "3", HeaderParts: "2"}, "ab"},
			{"media.c.v.delta", map[string]string{HeaderEpoch: "1", HeaderCodec: "H264", HeaderPTS: "6", HeaderDTS: "6"}, "x"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "2/2"}, "cd"},
		},
		want: []Message{
			{Seq: 2, Epoch: 1, Frame: tsframes.Frame{Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: 6, DTS: 6, Data: []byte("x")}},
		},
		wantErrs: 1,
	},
	{
		name: "malformed messages",
		in: []stored{
			{"media.c.a", map[string]string{HeaderCodec: "Opus", HeaderPTS: "4"}, "no epoch"},
			{"media.c.a", map[string]string{HeaderEpoch: "x", HeaderPTS: "4"}, "bad epoch"},
			{"media.c.a", map[string]string{HeaderEpoch: "1"}, "no pts"},
			{"media.c.a", map[string]string{HeaderEpoch: "1", HeaderPTS: "1.5"}, "bad pts"},
			{"media.c.a", map[string]string{HeaderEpoch: "1", HeaderPTS: "1", HeaderDur: "?"}, "bad dur"},
			{"media.c.v.delta", map[string]string{HeaderEpoch: "1", HeaderPTS: "1", HeaderDTS: "z"}, "bad dts"},
			{"media.c.v.key", map[string]string{HeaderEpoch: "1", HeaderPTS: "1", HeaderParts: "0"}, "bad parts"},
			{"media.c.v.key", map[string]string{HeaderEpoch: "1", HeaderPTS: "1", HeaderParts: "99999"}, "too many parts"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "1/2"}, "part 1"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "2"}, "no total"},
			{"media.c.part", map[string]string{HeaderEpoch: "1", HeaderPart: "2/2"}, "orphan"},
			{"media.c.tracks", map[string]string{HeaderEpoch: "1"}, "{not json"},
			{"media.c.unknown", map[string]string{HeaderEpoch: "1"}, "ignored"},
		},
		wantErrs: 12,
	},
}

func decodeAll(in []stored) (msgs []Message, errs int) {
	d := decoder{subj: mustSubjects("c")}
	for i, s := range in {
		m, ok, err := d.push(uint64(i+1), s.subject, s.header(), []byte(s.data))
		if err != nil {
			errs++
		}
		if ok {
			msgs = append(msgs, m)
		}
	}
	return msgs, errs
}

func mustSubjects(name string) Subjects {
	s, err := SubjectsFor(name)
	if err != nil {
		panic(err)
	}
	return s
}

func sameMessage(a, b Message) bool {
	if a.Seq != b.Seq || a.Epoch != b.Epoch || (a.Tracks == nil) != (b.Tracks == nil) {
		return false
	}
	if a.Tracks != nil {
		ta, tb := *a.Tracks, *b.Tracks
		if ta.Stream != tb.Stream || ta.Epoch != tb.Epoch || ta.Video != tb.Video || ta.Audio != tb.Audio || len(ta.Tracks) != len(tb.Tracks) {
			return false
		}
		for i := range ta.Tracks {
			if ta.Tracks[i] != tb.Tracks[i] {
				return false
			}
		}
		return true
	}
	fa, fb := a.Frame, b.Frame
	return fa.PID == fb.PID && fa.Kind == fb.Kind && fa.Codec == fb.Codec && fa.PTS == fb.PTS &&
		fa.DTS == fb.DTS && fa.Duration == fb.Duration && fa.Key == fb.Key && bytes.Equal(fa.Data, fb.Data)
}

func TestDecoder(t *testing.T) {
	for _, tc := range casesDecode {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := decodeAll(tc.in)
			if errs != tc.wantErrs {
				t.Errorf("%d errors, want %d", errs, tc.wantErrs)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if !sameMessage(got[i], tc.want[i]) {
					t.Errorf("message %d = %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzDecoder feeds arbitrary headers and payloads, starting from the
// messages of casesDecode and casesWire: the decoder must never panic, and
// reassembled frames stay within MaxFrameSize.
func FuzzDecoder(f *testing.F) {
	seed := func(s stored) {
		parts, part := s.hdr[HeaderParts], s.hdr[HeaderPart]
		if v := s.hdr[HeaderSizes]; v != "" {
			parts, part = v, s.hdr[HeaderDurs]
		}
		f.Add(strings.TrimPrefix(s.subject, "media.c."), s.hdr[HeaderEpoch], s.hdr[HeaderPTS], parts, part, []byte(s.data))
	}
	for _, tc := range casesDecode {
		for _, s := range tc.in {
			seed(s)
		}
	}
	for _, tc := range casesWire {
		for _, s := range tc.msgs {
			seed(s)
		}
	}
	d := decoder{subj: mustSubjects("c")}
	var seq uint64
	f.Fuzz(func(t *testing.T, suffix, epoch, pts, parts, part string, data []byte) {
		seq++
		h := nats.Header{}
		// pts doubles as the DTS and the duration; parts and part are the
		// audio packet sizes and durations when they are lists.
		hdr := map[string]string{HeaderEpoch: epoch, HeaderPTS: pts, HeaderDTS: pts, HeaderDur: pts}
		if strings.Contains(parts, ",") {
			hdr[HeaderSizes] = parts
		} else {
			hdr[HeaderParts] = parts
		}
		if strings.Contains(part, ",") {
			hdr[HeaderDurs] = part
		} else {
			hdr[HeaderPart] = part
		}
		for k, v := range hdr {
			if v != "" {
				h.Set(k, v)
			}
		}
		m, ok, err := d.push(seq, "media.c."+suffix, h, data)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if ok && len(m.Frame.Data) > MaxFrameSize {
			t.Fatalf("frame of %d bytes", len(m.Frame.Data))
		}
		if ok {
			frames, err := m.Frames(nil)
			total := 0
			for _, f := range frames {
				total += len(f.Frame.Data)
			}
			if err == nil && total != len(m.Frame.Data) {
				t.Fatalf("frames of %d bytes from a message of %d", total, len(m.Frame.Data))
			}
		}
	})
}

func TestDecodeAudioGroup(t *testing.T) {
	d := decoder{subj: mustSubjects("c")}
	hdr := func(sizes, durs string) nats.Header {
		h := nats.Header{}
		h.Set(HeaderEpoch, "7")
		h.Set(HeaderCodec, "Opus")
		h.Set(HeaderPTS, "1000")
		h.Set(HeaderDur, "4500")
		if sizes != "" {
			h.Set(HeaderSizes, sizes)
		}
		if durs != "" {
			h.Set(HeaderDurs, durs)
		}
		return h
	}
	m, ok, err := d.push(9, "media.c.a", hdr("2,1,3", "1800,900,1800"), []byte("aabccc"))
	if !ok || err != nil {
		t.Fatalf("push: %v %v", ok, err)
	}
	frames, err := m.Frames(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pts, dur int64
		data     string
		more     bool
	}{{1000, 1800, "aa", true}, {2800, 900, "b", true}, {3700, 1800, "ccc", false}}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i, w := range want {
		f := frames[i].Frame
		if frames[i].Seq != 9 || frames[i].Epoch != 7 || f.PTS != w.pts || f.DTS != w.pts || f.Duration != w.dur ||
			string(f.Data) != w.data || f.More != w.more || f.Kind != tsframes.KindAudio || cap(f.Data) != len(f.Data) {
			t.Errorf("frame %d: seq %d %+v, want %+v", i, frames[i].Seq, f, w)
		}
	}
	// A single packet is the message itself.
	m, ok, err = d.push(10, "media.c.a", hdr("", ""), []byte("x"))
	if frames, err2 := m.Frames(nil); !ok || err != nil || err2 != nil || len(frames) != 1 || string(frames[0].Frame.Data) != "x" || frames[0].Frame.Duration != 4500 {
		t.Fatalf("single packet: %v %v %v %+v", ok, err, err2, frames)
	}
	// Malformed layouts are refused.
	for _, tc := range []struct{ sizes, durs, data string }{
		{"2,1", "1800", "aab"},     // counts differ
		{"3", "1800", "aaa"},       // one packet
		{"1,x", "1800,1800", "ab"}, // not a number
		{"1,0", "1800,1800", "a"},  // empty packet
		{"1,1", "1800,-5", "ab"},   // negative duration
		{"", "1800,1800", "ab"},    // sizes missing
		{strings.Repeat("1,", 40) + "1", strings.Repeat("9,", 40) + "9", strings.Repeat("a", 41)}, // too many
	} {
		if _, ok, err := d.push(11, "media.c.a", hdr(tc.sizes, tc.durs), []byte(tc.data)); ok || err == nil {
			t.Errorf("sizes %q durs %q: ok %v err %v, want refused", tc.sizes, tc.durs, ok, err)
		}
	}
	// Sizes that do not add up to the payload.
	m, ok, err = d.push(12, "media.c.a", hdr("2,2", "1800,1800"), []byte("abc"))
	if !ok || err != nil {
		t.Fatalf("push: %v %v", ok, err)
	}
	if frames, err := m.Frames(nil); err == nil || len(frames) != 0 {
		t.Fatalf("sizes 2+2 for 3 bytes: %d frames, %v", len(frames), err)
	}
}
