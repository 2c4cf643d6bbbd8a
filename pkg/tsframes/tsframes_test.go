package tsframes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDeadline bounds every Run of the tests.
const testDeadline = 20 * time.Second

// fixtures are the MPEG-TS files of ../../testdata (see gen.sh).
var fixtures = []string{"av", "video", "audio", "aac", "wrap", "gop4", "pmtchange"}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name+".ts"))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// expectation is NAME.ts.expect: the counts ffprobe reports.
type expectation struct {
	videoFrames, keyframes, audioPackets int
}

func readExpect(t testing.TB, name string) expectation {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", name+".ts.expect"))
	if err != nil {
		t.Fatalf("reading expectation: %v", err)
	}
	defer f.Close()
	vals := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s.ts.expect: malformed line %q", name, line)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s.ts.expect: %q: %v", name, line, err)
		}
		vals[k] = n
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s.ts.expect: %v", name, err)
	}
	for _, k := range []string{"video_frames", "keyframes", "audio_packets"} {
		if _, ok := vals[k]; !ok {
			t.Fatalf("%s.ts.expect: no %s", name, k)
		}
	}
	return expectation{vals["video_frames"], vals["keyframes"], vals["audio_packets"]}
}

// event is one Sink call, in order.
type event struct {
	ann   *Announcement
	frame *Frame
}

// collector is a Sink that records everything and checks the ordering
// contract as it goes: no frame of a PID the latest announcement does not
// list as WebRTC-capable.
type collector struct {
	t      testing.TB
	events []event
	anns   []Announcement
	frames []Frame
	cur    map[uint16]Track
	// hooks, optional
	onFrame func(*Frame) error
	onAnn   func(Announcement) error
}

func (c *collector) Tracks(a Announcement) error {
	c.anns = append(c.anns, a)
	c.events = append(c.events, event{ann: &c.anns[len(c.anns)-1]})
	c.cur = map[uint16]Track{}
	for _, tr := range a.Tracks {
		c.cur[tr.PID] = tr
	}
	if c.onAnn != nil {
		return c.onAnn(a)
	}
	return nil
}

func (c *collector) Frame(f Frame) error {
	tr, ok := c.cur[f.PID]
	if !ok {
		c.t.Errorf("frame of PID %d (PTS %d) before an announcement listing it", f.PID, f.PTS)
	} else if !tr.WebRTC || tr.Codec != f.Codec || tr.Kind != f.Kind {
		c.t.Errorf("frame %s/%s of PID %d does not match its track %+v", f.Kind, f.Codec, f.PID, tr)
	}
	c.frames = append(c.frames, f)
	c.events = append(c.events, event{frame: &f})
	if c.onFrame != nil {
		return c.onFrame(&c.frames[len(c.frames)-1])
	}
	return nil
}

func (c *collector) video() []Frame { return c.kind(KindVideo) }
func (c *collector) audio() []Frame { return c.kind(KindAudio) }

func (c *collector) kind(k Kind) []Frame {
	var out []Frame
	for _, f := range c.frames {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func (c *collector) keyframes() int {
	n := 0
	for _, f := range c.frames {
		if f.Key {
			n++
		}
	}
	return n
}

// result is the outcome of one Run.
type result struct {
	*collector
	err    error
	stats  Stats
	errors []error
}

// errorsIs counts the decode errors wrapping target.
func (r result) errorsIs(target error) int {
	n := 0
	for _, err := range r.errors {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// demux runs a Demuxer over r with the test deadline.
func demux(t testing.TB, r io.Reader) result {
	t.Helper()
	return demuxWith(t, r, &collector{t: t})
}

func demuxWith(t testing.TB, r io.Reader, c *collector) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	res := result{collector: c}
	d := NewDemuxer(r, Options{OnDecodeError: func(err error) { res.errors = append(res.errors, err) }})
	res.err = d.Run(ctx, c)
	if ctx.Err() != nil {
		t.Fatalf("Run did not finish within %v", testDeadline)
	}
	res.stats = d.Stats()
	return res
}

func demuxBytes(t testing.TB, b []byte) result {
	t.Helper()
	return demux(t, bytes.NewReader(b))
}

// TestFixtureCounts checks, for every fixture, the video frame, keyframe and
// audio packet counts against the ffprobe counts of NAME.ts.expect, and that
// a clean fixture produces no decode error.
func TestFixtureCounts(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			want := readExpect(t, name)
			data := readFixture(t, name)
			res := demuxBytes(t, data)
			if res.err != nil {
				t.Fatalf("Run: %v", res.err)
			}
			if got := len(res.video()); got != want.videoFrames {
				t.Errorf("video frames = %d, ffprobe counts %d", got, want.videoFrames)
			}
			if got := res.keyframes(); got != want.keyframes {
				t.Errorf("keyframes = %d, ffprobe counts %d", got, want.keyframes)
			}
			gotAudio := len(res.audio())
			if name == "aac" {
				// ffprobe counts the AAC packets; whepcast announces the AAC
				// track but never emits its frames (WebRTC cannot carry AAC).
				// The count is checked against the stream in TestAACTrack.
				if gotAudio != 0 {
					t.Errorf("audio frames = %d, want none (AAC is not emitted)", gotAudio)
				}
			} else if gotAudio != want.audioPackets {
				t.Errorf("audio packets = %d, ffprobe counts %d", gotAudio, want.audioPackets)
			}

			st := res.stats
			wantStats := Stats{
				Packets:      uint64(len(data) / packetSize),
				Bytes:        uint64(len(data)),
				Frames:       uint64(len(res.frames)),
				Keyframes:    uint64(res.keyframes()),
				AudioPackets: uint64(gotAudio),
			}
			if name == "pmtchange" {
				wantStats.PMTChanges = 1
			}
			if st != wantStats {
				t.Errorf("stats = %+v, want %+v", st, wantStats)
			}
			if len(res.errors) != 0 {
				t.Errorf("decode errors on a clean fixture: %v", res.errors)
			}
			if len(res.frames) > 0 && !res.frames[0].Key && res.frames[0].Kind == KindVideo {
				t.Errorf("first video frame is not a keyframe")
			}
		})
	}
}

// pesTimestamps calls fn for every PTS/DTS field (5 bytes) and PCR base
// (bytes 6..10 of the packet) of an aligned stream.
func pesTimestamps(b []byte, pesTS func(field []byte), pcr func(pkt []byte)) {
	for i := 0; i+packetSize <= len(b); i += packetSize {
		pkt := b[i : i+packetSize]
		pos := 4
		if pkt[3]&0x20 != 0 {
			if pkt[4] >= 7 && pkt[5]&0x10 != 0 && pcr != nil {
				pcr(pkt)
			}
			pos += 1 + int(pkt[4])
		}
		if pkt[1]&0x40 == 0 || pkt[3]&0x10 == 0 || pos+19 > packetSize {
			continue
		}
		pl := pkt[pos:]
		if pl[0] != 0 || pl[1] != 0 || pl[2] != 1 {
			continue
		}
		switch pl[7] >> 6 {
		case 2:
			pesTS(pl[9:14])
		case 3:
			pesTS(pl[9:14])
			pesTS(pl[14:19])
		}
	}
}

func decodeTS(f []byte) int64 {
	return int64(f[0]>>1&0x07)<<30 | int64(f[1])<<22 | int64(f[2]>>1)<<15 | int64(f[3])<<7 | int64(f[4]>>1)
}

// firstRawPTS is the first PTS of an aligned stream.
func firstRawPTS(b []byte) int64 {
	first := int64(-1)
	pesTimestamps(b, func(f []byte) {
		if first < 0 {
			first = decodeTS(f)
		}
	}, nil)
	return first
}

// tsWriter builds synthetic streams with mediacommon's writer.
type tsWriter struct {
	t   testing.TB
	buf bytes.Buffer
	w   *mpegts.Writer
}

func newTSWriter(t testing.TB, tracks ...*mpegts.Track) *tsWriter {
	tw := &tsWriter{t: t}
	tw.w = &mpegts.Writer{W: &tw.buf, Tracks: tracks}
	if err := tw.w.Initialize(); err != nil {
		t.Fatal(err)
	}
	return tw
}

func (tw *tsWriter) h264(tr *mpegts.Track, pts int64, au ...[]byte) {
	tw.t.Helper()
	if err := tw.w.WriteH264(tr, pts, pts, au); err != nil {
		tw.t.Fatal(err)
	}
}

func (tw *tsWriter) opus(tr *mpegts.Track, pts int64, packets ...[]byte) {
	tw.t.Helper()
	if err := tw.w.WriteOpus(tr, pts, packets); err != nil {
		tw.t.Fatal(err)
	}
}

func videoTrack() *mpegts.Track { return &mpegts.Track{PID: 256, Codec: &codecs.H264{}} }
func opusTrack() *mpegts.Track {
	return &mpegts.Track{PID: 257, Codec: &codecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: 2}}}
}

// Synthetic H.264 NAL units (only their types and SPS bytes 1..3 matter).
var (
	testSPS  = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	testSPS2 = []byte{0x67, 0x4d, 0x40, 0x1f, 0xe8, 0x80, 0x28, 0x02, 0xdd}
	testPPS  = []byte{0x68, 0xce, 0x3c, 0x80}
	testPPS2 = []byte{0x68, 0xee, 0x06, 0xf2}
	testIDR  = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	testP    = []byte{0x41, 0x9a, 0x02, 0x04, 0x11}
	testSEI  = []byte{0x06, 0x05, 0x01, 0xaa, 0x80}
)

func annexB(ns ...[]byte) []byte {
	var b []byte
	for _, n := range ns {
		b = appendNALU(b, n)
	}
	return b
}

// packetsOf splits a stream into packets.
func packetsOf(b []byte) [][]byte {
	var out [][]byte
	for i := 0; i+packetSize <= len(b); i += packetSize {
		out = append(out, b[i:i+packetSize])
	}
	return out
}

// psiPackets returns the first PAT and PMT packets of a fixture.
func psiPackets(t *testing.T, b []byte) (pat, pmt []byte) {
	t.Helper()
	for _, p := range packetsOf(b) {
		switch pid(p) {
		case pidPAT:
			if pat == nil {
				pat = p
			}
		case 0x1000: // ffmpeg's PMT PID
			if pmt == nil {
				pmt = p
			}
		}
	}
	if pat == nil || pmt == nil {
		t.Fatal("no PAT/PMT in fixture")
	}
	return pat, pmt
}
