package tsframes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// TestAnnouncementTimeout: without any SPS the announcement goes out after
// AnnounceTimeout of media time, without profile-level-id; audio held until
// then is delivered right after it, in order, none lost.
func TestAnnouncementTimeout(t *testing.T) {
	v, a := videoTrack(), opusTrack()
	tw := newTSWriter(t, v, a)
	const seconds = 4
	audioPackets := 0
	for i := range 30 * seconds {
		pts := int64(90000 + i*3000)
		tw.h264(v, pts, testIDR) // an IDR, but never an SPS
		if i%3 == 0 {
			// 100 ms of Opus per 3 video frames.
			tw.opus(a, pts, opusPacket20ms, opusPacket20ms, opusPacket20ms, opusPacket20ms, opusPacket20ms)
			audioPackets += 5
		}
	}

	var errsAtAnn int
	var res result
	c := &collector{t: t}
	c.onAnn = func(Announcement) error {
		errsAtAnn = len(res.errors)
		return nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	res.collector = c
	d := NewDemuxer(bytes.NewReader(tw.buf.Bytes()), Options{OnDecodeError: func(err error) { res.errors = append(res.errors, err) }})
	if err := d.Run(ctx, c); err != nil {
		t.Fatal(err)
	}
	res.stats = d.Stats()

	if len(res.anns) != 1 {
		t.Fatalf("%d announcements, want 1", len(res.anns))
	}
	if tr := res.anns[0].Tracks; len(tr) != 2 || tr[0].Codec != CodecH264 || tr[0].ProfileLevelID != "" {
		t.Errorf("announcement %+v, want H264 without profile-level-id", tr)
	}
	if res.events[0].ann == nil {
		t.Errorf("first event is not the announcement")
	}
	// At 30 fps, 2 s of media are 60 access units, each dropped (an IDR
	// without SPS/PPS) before the announcement.
	if errsAtAnn < 59 || errsAtAnn > 61 {
		t.Errorf("announcement after %d dropped access units, want about 60", errsAtAnn)
	}
	if got := res.errorsIs(ErrAccessUnit); got != 30*seconds || got != len(res.errors) {
		t.Errorf("%d ErrAccessUnit of %d errors, want %d", got, len(res.errors), 30*seconds)
	}
	audio := res.audio()
	if len(audio) != audioPackets || len(res.frames) != audioPackets {
		t.Fatalf("%d audio of %d frames, want %d audio", len(audio), len(res.frames), audioPackets)
	}
	for i := range audio {
		if want := int64(90000 + i*1800); audio[i].PTS != want {
			t.Fatalf("audio %d at %d, want %d", i, audio[i].PTS, want)
		}
	}
}

// TestAACTrack: AAC is announced with WebRTC false; only video is emitted.
// ffprobe's audio count (AAC frames) is checked against the AAC frames
// mediacommon finds in the stream, none of which the Demuxer emits.
func TestAACTrack(t *testing.T) {
	want := readExpect(t, "aac")
	data := readFixture(t, "aac")
	res := demuxBytes(t, data)
	if res.err != nil {
		t.Fatal(res.err)
	}
	wantTracks := []Track{
		{PID: 256, Kind: KindVideo, Codec: CodecH264, WebRTC: true, ProfileLevelID: "42c00d"},
		{PID: 257, Kind: KindAudio, Codec: CodecAAC, WebRTC: false, Channels: 1, SampleRate: 48000},
	}
	if len(res.anns) != 1 || len(res.anns[0].Tracks) != 2 ||
		res.anns[0].Tracks[0] != wantTracks[0] || res.anns[0].Tracks[1] != wantTracks[1] {
		t.Fatalf("announcements %+v, want %+v", res.anns, wantTracks)
	}
	if len(res.audio()) != 0 || len(res.video()) != want.videoFrames {
		t.Errorf("%d audio, %d video frames; want 0 and %d", len(res.audio()), len(res.video()), want.videoFrames)
	}

	r := &mpegts.Reader{R: bytes.NewReader(data)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	aacFrames := 0
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*codecs.MPEG4Audio); ok {
			r.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) error {
				aacFrames += len(aus)
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if aacFrames != want.audioPackets {
		t.Errorf("the stream has %d AAC frames, ffprobe counts %d", aacFrames, want.audioPackets)
	}
}

func TestAnnouncementOwned(t *testing.T) {
	c := &collector{t: t}
	c.onAnn = func(a Announcement) error {
		a.Tracks[0].PID = 9999
		a.Tracks[0].ProfileLevelID = "x"
		return nil
	}
	res := demuxWith(t, bytes.NewReader(readFixture(t, "pmtchange")), c)
	// The collector keeps the (modified) slice; the second announcement
	// must be fresh.
	if res.err != nil || len(res.anns) != 2 || res.anns[1].Tracks[1].PID != 257 {
		t.Fatalf("err %v, announcements %+v", res.err, res.anns)
	}
	if len(res.video()) != 180 {
		t.Errorf("%d video frames", len(res.video()))
	}
}

// TestAnnouncements: the tracks every fixture announces.
func TestAnnouncements(t *testing.T) {
	h264 := Track{PID: 256, Kind: KindVideo, Codec: CodecH264, WebRTC: true, ProfileLevelID: "42c00d"}
	opus := Track{PID: 257, Kind: KindAudio, Codec: CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000}
	opusOnly := opus
	opusOnly.PID = 256
	aac := Track{PID: 257, Kind: KindAudio, Codec: CodecAAC, Channels: 1, SampleRate: 48000}
	for name, want := range map[string][][]Track{
		"av":        {{h264, opus}},
		"video":     {{h264}},
		"audio":     {{opusOnly}},
		"aac":       {{h264, aac}},
		"wrap":      {{h264, opus}},
		"gop4":      {{h264, opus}},
		"pmtchange": {{h264}, {h264, opus}},
	} {
		t.Run(name, func(t *testing.T) {
			res := demuxBytes(t, readFixture(t, name))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.anns) != len(want) {
				t.Fatalf("announcements %+v, want %+v", res.anns, want)
			}
			for i := range want {
				if len(res.anns[i].Tracks) != len(want[i]) {
					t.Fatalf("announcement %d: %+v, want %+v", i, res.anns[i].Tracks, want[i])
				}
				for j := range want[i] {
					if res.anns[i].Tracks[j] != want[i][j] {
						t.Errorf("announcement %d track %d: %+v, want %+v", i, j, res.anns[i].Tracks[j], want[i][j])
					}
				}
			}
			if res.events[0].ann == nil {
				t.Error("first event is not an announcement")
			}
		})
	}
}

// TestAnnouncesEveryCodec: streams WebRTC cannot carry are announced (with
// WebRTC false), in PMT order, never dropped.
func TestAnnouncesEveryCodec(t *testing.T) {
	dvbSub := []byte{0x59, 0x08, 'e', 'n', 'g', 0x10, 0x00, 0x01, 0x00, 0x01}
	klv := []byte{0x05, 0x04, 'K', 'L', 'V', 'A'}
	var stream []byte
	for _, p := range sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0)) {
		stream = append(stream, p...)
	}
	for _, p := range sectionPackets(0x1000, 0, pmtSection(1, 0,
		esEntry{0x1B, 256, nil},
		esEntry{0x24, 257, nil},
		esEntry{0x02, 258, nil},
		esEntry{0x10, 259, nil},
		esEntry{0x03, 260, nil},
		esEntry{0x06, 261, esOpus.desc},
		esEntry{0x06, 262, dvbSub},
		esEntry{0x06, 263, klv},
		esEntry{0x99, 264, nil},
		esEntry{0x11, 265, nil},
	)) {
		stream = append(stream, p...)
	}
	res := demuxBytes(t, stream)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, errors %v", res.err, res.errors)
	}
	want := []Track{
		{PID: 256, Kind: KindVideo, Codec: CodecH264, WebRTC: true}, // no SPS seen: no profile-level-id
		{PID: 257, Kind: KindVideo, Codec: CodecH265, WebRTC: true}, // to viewers that offer H.265
		{PID: 258, Kind: KindVideo, Codec: CodecMPEG12Video},
		{PID: 259, Kind: KindVideo, Codec: CodecMPEG4Video},
		{PID: 260, Kind: KindAudio, Codec: CodecMPEGAudio},
		{PID: 261, Kind: KindAudio, Codec: CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000},
		{PID: 262, Kind: KindData, Codec: CodecDVBSubtitle},
		{PID: 263, Kind: KindData, Codec: CodecKLV},
		{PID: 264, Kind: KindData, Codec: CodecUnknown},
		{PID: 265, Kind: KindAudio, Codec: CodecAACLATM}, // its config is in the stream, not the PMT
	}
	// The announcement waits for the H.264 and H.265 SPS; the input ends first.
	if len(res.anns) != 1 || len(res.anns[0].Tracks) != len(want) {
		t.Fatalf("announcements %+v", res.anns)
	}
	for i := range want {
		if res.anns[0].Tracks[i] != want[i] {
			t.Errorf("track %d: %+v, want %+v", i, res.anns[0].Tracks[i], want[i])
		}
	}
}
