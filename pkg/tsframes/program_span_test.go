package tsframes

import (
	"bytes"
	"strings"
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

// TestPMTChangeMidOpusPES: a PMT change that drops the Opus stream lands
// inside an Opus PES: that PES completes (at its PES_packet_length) and its
// packets come out; Opus resumes once the PMT lists it again.
func TestPMTChangeMidOpusPES(t *testing.T) {
	av := readFixture(t, "av")
	pat, _ := psiPackets(t, av)
	_, pmtVideo := psiPackets(t, readFixture(t, "video")) // same PMT PID, video only

	pkts := packetsOf(av)
	at, pesPTS := -1, int64(-1)
	for i := len(pkts) / 2; i+1 < len(pkts); i++ {
		if pid(pkts[i]) == 257 && pkts[i][1]&0x40 != 0 && pid(pkts[i+1]) == 257 && pkts[i+1][1]&0x40 == 0 {
			at = i + 1
			pl, _ := packetPayload(pkts[i])
			pesPTS = decodeTS(pl[9:14])
			break
		}
	}
	if at < 0 {
		t.Fatal("no Opus PES over two packets in a row")
	}
	// The video-only PMT replaces av.ts's for 300 packets.
	var mixed []byte
	for i, p := range pkts {
		switch {
		case i == at:
			mixed = append(mixed, pat...)
			mixed = append(mixed, pmtVideo...)
		case i > at && i < at+300 && pid(p) == 0x1000:
			p = pmtVideo
		}
		mixed = append(mixed, p...)
	}

	clean := demuxBytes(t, av)
	res := demuxBytes(t, mixed)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	// Then av.ts's PMT changes the content back.
	if len(res.anns) != 3 || len(res.anns[1].Tracks) != 1 || len(res.anns[2].Tracks) != 2 || res.stats.PMTChanges != 2 {
		t.Errorf("announcements %+v, PMT changes %d: want video+Opus, video, video+Opus", res.anns, res.stats.PMTChanges)
	}
	v, cv := res.video(), clean.video()
	if len(v) != len(cv) {
		t.Fatalf("%d video frames, want %d", len(v), len(cv))
	}
	for i := range cv {
		if v[i].PTS != cv[i].PTS || !bytes.Equal(v[i].Data, cv[i].Data) {
			t.Fatalf("video frame %d differs from the clean run", i)
		}
	}
	checkNoCorruptFrame(t, cleanFrames(clean), res)
	inProgress, lost := 0, 0
	for _, f := range res.audio() {
		if f.PTS >= pesPTS && f.PTS < pesPTS+5*1800 {
			inProgress++
		}
	}
	lost = len(clean.audio()) - len(res.audio())
	if inProgress != 5 {
		t.Errorf("%d packets of the Opus PES in progress at the change came out, want its 5", inProgress)
	}
	if lost <= 0 {
		t.Errorf("%d Opus packets lost while the PMT had no Opus stream", lost)
	}
}

// TestPMTChangeDrainLimit: a PES that has not ended when DrainLimit packets
// of the new PMT were set aside is dropped and reported; everything else
// comes out.
func TestPMTChangeDrainLimit(t *testing.T) {
	ccs := map[uint16]*byte{256: new(byte), 257: new(byte)}
	var stream [][]byte
	add := func(p uint16, pes []byte) [][]byte {
		pkts := tsPackets(p, ccs[p], pes)
		stream = append(stream, pkts...)
		return pkts
	}
	stream = append(stream, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
	stream = append(stream, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...)
	add(256, pesWithPTS(0xE0, 90000, -1, annexB(testSPS, testPPS, testIDR)))
	big := pesWithPTS(0xE0, 93000, -1, annexB(randomNALU(0x41, 300000, 7)))
	setPESLength(big, 0)
	bigPkts := add(256, big)
	stream = stream[:len(stream)-len(bigPkts)+5] // its first 5 packets
	// The new PMT lists one more stream.
	stream = append(stream, sectionPackets(0x1000, 1, pmtSection(1, 0, esVideo, esOpus, esEntry{0x06, 300, nil}))...)
	const audioPES = DrainLimit + 100
	for i := range audioPES {
		add(257, pesWithPTS(0xC0, 90000+int64(i)*1800, -1, opusAU(opusPacket20ms)))
	}
	stream = append(stream, bigPkts[5:]...) // the rest of the PES in progress
	add(256, pesWithPTS(0xE0, 96000, -1, annexB(testIDR)))
	add(256, pesWithPTS(0xE0, 99000, -1, annexB(testP)))

	res := demuxBytes(t, bytes.Join(stream, nil))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrDemux for the PES cut by the drain", res.errors)
	}
	if len(res.anns) != 2 || len(res.anns[1].Tracks) != 3 {
		t.Errorf("announcements %+v", res.anns)
	}
	v := res.video()
	if len(v) != 3 || v[0].PTS != 90000 || v[1].PTS != 96000 || v[2].PTS != 99000 ||
		!bytes.Equal(v[1].Data, annexB(testSPS, testPPS, testIDR)) {
		t.Errorf("%d video frames, want those at 90000, 96000 and 99000", len(v))
	}
	a := res.audio()
	if len(a) != audioPES {
		t.Fatalf("%d audio frames, want %d", len(a), audioPES)
	}
	for i := range a {
		if a[i].PTS != 90000+int64(i)*1800 {
			t.Fatalf("audio %d at %d", i, a[i].PTS)
		}
	}
}

// TestPMTChangeDropsStreamMidPES: a PMT change that drops the Opus stream
// inside an Opus PES, while no other PES is in progress: that PES (it has a
// PES_packet_length) is still waited for and comes out whole.
func TestPMTChangeDropsStreamMidPES(t *testing.T) {
	ccs := map[uint16]*byte{256: new(byte), 257: new(byte)}
	var stream [][]byte
	add := func(p uint16, pes []byte) [][]byte {
		pkts := tsPackets(p, ccs[p], pes)
		stream = append(stream, pkts...)
		return pkts
	}
	stream = append(stream, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
	stream = append(stream, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...)
	add(256, pesWithPTS(0xE0, 90000, -1, annexB(testSPS, testPPS, testIDR))) // ends at its length
	p1, p2 := randomNALU(0xf8, 250, 1), randomNALU(0xf8, 250, 2)
	opus := add(257, pesWithPTS(0xC0, 90000, -1, append(opusAU(p1), opusAU(p2)...)))
	if len(opus) != 3 {
		t.Fatalf("%d packets", len(opus))
	}
	stream = stream[:len(stream)-2]
	stream = append(stream, sectionPackets(0x1000, 1, pmtSection(1, 0, esVideo))...)
	stream = append(stream, opus[1:]...)
	add(256, pesWithPTS(0xE0, 93000, -1, annexB(testP)))

	res := demuxBytes(t, bytes.Join(stream, nil))
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	if len(res.anns) != 2 || len(res.anns[1].Tracks) != 1 {
		t.Errorf("announcements %+v", res.anns)
	}
	a, v := res.audio(), res.video()
	if len(a) != 2 || a[0].PTS != 90000 || a[1].PTS != 91800 || !bytes.Equal(a[0].Data, p1) || !bytes.Equal(a[1].Data, p2) {
		t.Errorf("%d audio frames, want the 2 packets of the PES in progress", len(a))
	}
	if len(v) != 2 || v[0].PTS != 90000 || v[1].PTS != 93000 {
		t.Errorf("%d video frames, want 2", len(v))
	}
	// The Opus packets come out under the first announcement.
	var order []string
	for _, ev := range res.events {
		if ev.ann != nil {
			order = append(order, "tracks")
		} else {
			order = append(order, string(ev.frame.Kind))
		}
	}
	if got := strings.Join(order, " "); got != "tracks video audio audio tracks video" {
		t.Errorf("events: %s", got)
	}
}
