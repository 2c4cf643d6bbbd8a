package tsframes

import (
	"bytes"
	"context"
	"testing"
)

// TestPMTChange: pmtchange.ts is 3 s of video, then 3 s of video + Opus from
// another ffmpeg run (PMT version 0 both times): two announcements, frames
// on both sides, timestamps continuous.
func TestPMTChange(t *testing.T) {
	want := readExpect(t, "pmtchange")
	res := demuxBytes(t, readFixture(t, "pmtchange"))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if len(res.anns) != 2 {
		t.Fatalf("%d announcements, want 2: %+v", len(res.anns), res.anns)
	}
	if tr := res.anns[0].Tracks; len(tr) != 1 || tr[0].Codec != CodecH264 || tr[0].ProfileLevelID != "42c00d" {
		t.Errorf("first announcement %+v, want H264 only", tr)
	}
	if tr := res.anns[1].Tracks; len(tr) != 2 || tr[0].Codec != CodecH264 || tr[0].ProfileLevelID != "42c00d" ||
		tr[1].Codec != CodecOpus || !tr[1].WebRTC || tr[1].Channels != 2 {
		t.Errorf("second announcement %+v, want H264 + Opus", tr)
	}
	if res.stats.PMTChanges != 1 {
		t.Errorf("PMTChanges = %d, want 1", res.stats.PMTChanges)
	}
	// Video frames on both sides of the change, 3000 apart all along.
	secondAnn := -1
	for i, ev := range res.events {
		if ev.ann != nil {
			secondAnn = i
		}
	}
	before, after := 0, 0
	for _, ev := range res.events[:secondAnn] {
		if ev.frame != nil {
			if ev.frame.Kind != KindVideo {
				t.Errorf("audio frame before the Opus track was announced")
			}
			before++
		}
	}
	for _, ev := range res.events[secondAnn+1:] {
		if ev.frame != nil && ev.frame.Kind == KindVideo {
			after++
		}
	}
	if before != 90 || after != 90 {
		t.Errorf("video frames %d before and %d after the change, want 90 and 90", before, after)
	}
	video := res.video()
	if len(video) != want.videoFrames {
		t.Fatalf("%d video frames, want %d", len(video), want.videoFrames)
	}
	for i := 1; i < len(video); i++ {
		if d := video[i].PTS - video[i-1].PTS; d != 3000 {
			t.Fatalf("video %d: PTS step %d across the stream, want 3000", i, d)
		}
	}
	// The Opus track starts with the second part, within 100 ms of its video.
	if audio := res.audio(); len(audio) != want.audioPackets || max(audio[0].PTS-video[90].PTS, video[90].PTS-audio[0].PTS) > 9000 {
		t.Errorf("%d audio packets (want %d), first at %d, video of the second part at %d",
			len(audio), want.audioPackets, audio[0].PTS, video[90].PTS)
	}
}

// TestPMTChangeMidPES: a PMT change that lands inside a video PES lets that
// PES complete: every access unit comes out whole.
func TestPMTChangeMidPES(t *testing.T) {
	video := readFixture(t, "video")
	_, pmtAV := psiPackets(t, readFixture(t, "av")) // same PMT PID, video + Opus
	pat, _ := psiPackets(t, video)

	// Insert PAT + the video+Opus PMT between two packets of a video PES in
	// the middle of the stream.
	pkts := packetsOf(video)
	at := -1
	for i := len(pkts) / 2; i+1 < len(pkts); i++ {
		if pid(pkts[i]) == 256 && pkts[i][1]&0x40 != 0 && pid(pkts[i+1]) == 256 && pkts[i+1][1]&0x40 == 0 {
			at = i + 1
			break
		}
	}
	if at < 0 {
		t.Fatal("no multi-packet video PES found")
	}
	var mixed []byte
	for i, p := range pkts {
		if i == at {
			mixed = append(mixed, pat...)
			mixed = append(mixed, pmtAV...)
		}
		mixed = append(mixed, p...)
	}

	clean := demuxBytes(t, video)
	res := demuxBytes(t, mixed)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	// video.ts repeats its video-only PMT, which changes the content back.
	if len(res.anns) != 3 || len(res.anns[1].Tracks) != 2 || len(res.anns[2].Tracks) != 1 || res.stats.PMTChanges != 2 {
		t.Errorf("announcements %+v, PMT changes %d: want video, video+Opus, video", res.anns, res.stats.PMTChanges)
	}
	if len(res.frames) != len(clean.frames) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(clean.frames))
	}
	for i := range clean.frames {
		a, b := res.frames[i], clean.frames[i]
		if a.PTS != b.PTS || a.Key != b.Key || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("frame %d differs from the clean run (PTS %d/%d, %d/%d bytes)", i, a.PTS, b.PTS, len(a.Data), len(b.Data))
		}
	}
}

// TestPESTooLarge: a PES over the limit is dropped and counted; the next
// one comes out intact. The limit is lowered to 64 KiB: what astits costs
// for a PES grows with the square of its size (see MaxPESSize), which makes
// a 2 MiB PES take seconds, and much longer under the race detector.
func TestPESTooLarge(t *testing.T) {
	const limit = 64 << 10
	v := videoTrack()
	tw := newTSWriter(t, v)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	big := bytes.Repeat([]byte{0xab}, limit-1000)
	big[0] = 0x41
	tw.h264(v, 93000, big) // fits
	huge := bytes.Repeat([]byte{0xab}, limit+1000)
	huge[0] = 0x41
	tw.h264(v, 96000, huge)
	tw.h264(v, 99000, testP)
	tw.h264(v, 102000, testIDR)

	var res result
	res.collector = &collector{t: t}
	d := NewDemuxer(bytes.NewReader(tw.buf.Bytes()), Options{OnDecodeError: func(err error) { res.errors = append(res.errors, err) }})
	d.maxPES = limit
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	if err := d.Run(ctx, res.collector); err != nil {
		t.Fatal(err)
	}
	if res.errorsIs(ErrPESTooLarge) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrPESTooLarge", res.errors)
	}
	want := []Frame{
		{PTS: 90000, Data: annexB(testSPS, testPPS, testIDR)},
		{PTS: 93000, Data: annexB(big)},
		{PTS: 99000, Data: annexB(testP)},
		{PTS: 102000, Data: annexB(testSPS, testPPS, testIDR)},
	}
	if len(res.frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(want))
	}
	for i, w := range want {
		if res.frames[i].PTS != w.PTS || !bytes.Equal(res.frames[i].Data, w.Data) {
			t.Errorf("frame %d: PTS %d, %d bytes; want PTS %d, %d bytes", i, res.frames[i].PTS, len(res.frames[i].Data), w.PTS, len(w.Data))
		}
	}
}

// TestReaderStartFails: when mediacommon cannot start on a PMT because the
// first AAC frame is not ADTS, the failure is counted and the reader starts
// again further on.
func TestReaderStartFails(t *testing.T) {
	data := append([]byte(nil), readFixture(t, "aac")...)
	broken := false
	for i := 0; i < len(data) && !broken; i += packetSize {
		pkt := data[i : i+packetSize]
		if pid(pkt) != 257 || pkt[1]&0x40 == 0 {
			continue
		}
		pl, _ := packetPayload(pkt)
		adts := pl[9+int(pl[8]):]
		if adts[0] != 0xFF || adts[1]&0xF0 != 0xF0 {
			t.Fatal("first AAC PES does not start with ADTS")
		}
		adts[0] = 0x00 // break the sync word
		broken = true
	}
	res := demuxBytes(t, data)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 {
		t.Fatalf("errors %v, want one ErrDemux", res.errors)
	}
	// The first GOP went by while the first reader looked for the AAC
	// config; the second reader starts at the next keyframe.
	if len(res.anns) != 1 || len(res.anns[0].Tracks) != 2 || res.anns[0].Tracks[1].Codec != CodecAAC {
		t.Errorf("announcements %+v", res.anns)
	}
	if v := res.video(); len(v) != 90 || res.keyframes() != 3 || !v[0].Key {
		t.Errorf("%d video frames, %d keyframes; want the last 3 GOPs (90, 3)", len(v), res.keyframes())
	}
}

// TestUnusablePMT: a PMT mediacommon rejects (Opus registration without the
// Opus descriptor) is counted; output starts with the next PMT content.
func TestUnusablePMT(t *testing.T) {
	var stream []byte
	for _, p := range sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0)) {
		stream = append(stream, p...)
	}
	for _, p := range sectionPackets(0x1000, 0, pmtSection(1, 0, esEntry{0x1B, 256, nil}, esEntry{0x06, 257, []byte{0x05, 0x04, 'O', 'p', 'u', 's'}})) {
		stream = append(stream, p...)
	}
	v, a := videoTrack(), opusTrack()
	tw := newTSWriter(t, v, a)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	tw.opus(a, 90000, opusPacket20ms)
	tw.h264(v, 93000, testP)
	stream = append(stream, tw.buf.Bytes()...)

	res := demuxBytes(t, stream)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 || len(res.errors) != 1 {
		t.Errorf("errors %v, want one ErrDemux", res.errors)
	}
	if len(res.anns) != 1 || len(res.anns[0].Tracks) != 2 || res.stats.PMTChanges != 1 {
		t.Errorf("announcements %+v, %d PMT changes", res.anns, res.stats.PMTChanges)
	}
	if len(res.video()) != 2 || len(res.audio()) != 1 {
		t.Errorf("%d video, %d audio frames", len(res.video()), len(res.audio()))
	}
}
