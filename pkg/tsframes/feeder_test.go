package tsframes

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

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

// TestProbeKeepsFrames: while mediacommon reads the first AAC frame of
// aac.ts, the video packets are kept and demuxed afterwards: the first video
// frame is the stream's first access unit.
func TestProbeKeepsFrames(t *testing.T) {
	data := readFixture(t, "aac")
	first := int64(-1)
	for _, pkt := range packetsOf(data) {
		if pid(pkt) == 256 && pkt[1]&0x40 != 0 {
			pl, _ := packetPayload(pkt)
			first = decodeTS(pl[9:14])
			break
		}
	}
	res := demuxBytes(t, data)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	if v := res.video(); len(v) == 0 || v[0].PTS != first || !v[0].Key {
		t.Fatalf("first video frame %+v, want the keyframe at %d", v[0], first)
	}
}

// TestProbeLimit: while an AAC track shows no frame, the video packets kept
// for later are bounded (probeLimit): beyond it they are dropped and
// reported; once the AAC frame comes, the kept ones and those that follow
// come out.
func TestProbeLimit(t *testing.T) {
	v := videoTrack()
	aac := &mpegts.Track{PID: 257, Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2,
	}}}
	tw := newTSWriter(t, v, aac)
	// Keyframes of 120 kB (650 packets) until well beyond probeLimit
	// packets, then the first AAC frame, then two more access units.
	type au struct {
		pts    int64
		offset int // where its packets start in the stream
		data   []byte
	}
	var aus []au
	for i := 0; i*650 < probeLimit+3000; i++ {
		idr := randomNALU(0x65, 120000, int64(i))
		pts := 90000 + int64(i)*3000
		aus = append(aus, au{pts, tw.buf.Len(), annexB(testSPS, testPPS, idr)})
		tw.h264(v, pts, testSPS, testPPS, idr)
	}
	if err := tw.w.WriteMPEG4Audio(aac, 90000, [][]byte{{0x21, 0x10, 0x05, 0x00}}); err != nil {
		t.Fatal(err)
	}
	for _, pts := range []int64{aus[len(aus)-1].pts + 3000, aus[len(aus)-1].pts + 6000} {
		aus = append(aus, au{pts, tw.buf.Len(), annexB(testP)})
		tw.h264(v, pts, testP)
	}
	stream := tw.buf.Bytes()

	// The packets kept are the video packets from number probeLimit on.
	var want []au
	for _, a := range aus {
		n := 0
		for _, pkt := range packetsOf(stream[:a.offset]) {
			if pid(pkt) == 256 {
				n++
			}
		}
		if n >= probeLimit {
			want = append(want, a)
		}
	}
	if len(want) < 3 || len(want) == len(aus) {
		t.Fatalf("bad setup: %d of %d access units after the limit", len(want), len(aus))
	}

	res := demuxBytes(t, stream)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrDemux for the dropped packets", res.errors)
	}
	if len(res.anns) != 1 || len(res.anns[0].Tracks) != 2 || res.anns[0].Tracks[1] != (Track{PID: 257, Kind: KindAudio, Codec: CodecAAC, Channels: 2, SampleRate: 44100}) {
		t.Errorf("announcements %+v", res.anns)
	}
	video := res.video()
	if len(video) != len(want) {
		t.Fatalf("%d video frames, want %d (the access units from packet %d on)", len(video), len(want), probeLimit)
	}
	for i, w := range want {
		if video[i].PTS != w.pts || !bytes.Equal(video[i].Data, w.data) {
			t.Errorf("video %d: PTS %d, %d bytes; want PTS %d, %d bytes", i, video[i].PTS, len(video[i].Data), w.pts, len(w.data))
		}
	}
}

// TestFeederNoProbe: for a PMT without AAC/AC-3/E-AC-3 the feeder yields
// the PAT and PMT and nothing more, without reading the input.
func TestFeederNoProbe(t *testing.T) {
	in := &input{
		pr:    newPacketReader(iotest.ErrReader(errors.New("the input must not be read"))),
		psi:   newPSITracker(),
		stats: &counters{},
		bad:   func(err error) { t.Errorf("decode error %v", err) },
	}
	var pre []byte
	for _, p := range append(sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0)), sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...) {
		if err := in.psi.push(p); err != nil {
			t.Fatal(err)
		}
		pre = append(pre, p...)
	}
	f := newFeeder(&programSpan{in: in}, in.psi)
	got, err := io.ReadAll(f)
	if !errors.Is(err, errProbeOverrun) || !bytes.Equal(got, pre) {
		t.Errorf("read %d bytes (%v), want the %d bytes of PAT and PMT, then errProbeOverrun", len(got), err, len(pre))
	}
	if f.probing {
		t.Error("probing a PMT of H.264 and Opus")
	}
	// With an AAC stream, it probes.
	if err := in.psi.push(sectionPackets(0x1000, 1, pmtSection(1, 0, esVideo, esEntry{0x0F, 258, nil}))[0]); err != nil {
		t.Fatal(err)
	}
	if f := newFeeder(&programSpan{in: in}, in.psi); !f.probing || !f.probe.has(258) || f.probe.has(256) {
		t.Error("not probing the AAC stream (only)")
	}
}

// TestReaderStartFailsAfterPMTChange: after a PMT change, the first AAC
// frame that mediacommon cannot use comes from the packets set aside during
// the drain; the failure is counted and track detection starts again on the
// input (it does not wait for yet another PMT).
func TestReaderStartFailsAfterPMTChange(t *testing.T) {
	adts, err := mpeg4audio.ADTSPackets{{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2, AU: []byte{0x21, 0x10, 0x05, 0x00},
	}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	broken := append([]byte(nil), adts...)
	broken[0] = 0 // no ADTS sync word

	ccs := map[uint16]*byte{256: new(byte), 258: new(byte)}
	var stream [][]byte
	add := func(p uint16, pes []byte) {
		stream = append(stream, tsPackets(p, ccs[p], pes)...)
	}
	video := func(pts int64, nalus ...[]byte) []byte {
		pes := pesWithPTS(0xE0, pts, -1, annexB(nalus...))
		setPESLength(pes, 0) // ends at the next start
		return pes
	}
	stream = append(stream, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
	stream = append(stream, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo))...)
	add(256, video(90000, testSPS, testPPS, testIDR))
	stream = append(stream, sectionPackets(0x1000, 1, pmtSection(1, 0, esVideo, esEntry{0x0F, 258, nil}))...)
	add(258, pesWithPTS(0xC0, 90000, -1, broken)) // set aside while the IDR completes
	add(256, video(93000, testP))                 // ends the drain; lost with the failed start
	add(258, pesWithPTS(0xC0, 92000, -1, adts))
	add(256, video(96000, testIDR))
	add(256, video(99000, testP))

	res := demuxBytes(t, bytes.Join(stream, nil))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrDemux", res.errors)
	}
	if len(res.anns) != 2 || len(res.anns[1].Tracks) != 2 || res.anns[1].Tracks[1] != (Track{PID: 258, Kind: KindAudio, Codec: CodecAAC, Channels: 2, SampleRate: 44100}) {
		t.Errorf("announcements %+v", res.anns)
	}
	v := res.video()
	if len(v) != 3 || v[0].PTS != 90000 || v[1].PTS != 96000 || v[2].PTS != 99000 || !v[1].Key {
		t.Errorf("%d video frames, want those at 90000, 96000 and 99000", len(v))
	}
}
