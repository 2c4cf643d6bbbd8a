//go:build external

package transcode

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// testLogger logs to stderr with WHEPCAST_TEST_LOGS set.
func testLogger() *slog.Logger {
	if os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// ffmpegFixture makes an MPEG-TS file with ffmpeg from args (inputs and
// codecs; the output options and file are added).
func ffmpegFixture(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.CommandContext(t.Context(), "ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), "-f", "mpegts", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testStage is a stage on an embedded NATS server.
type testStage struct {
	nc    *nats.Conn
	stage *Stage
	reg   *prometheus.Registry
	pubs  ingest.NewPublisherFunc
}

func newTestStage(t *testing.T, cfg Config) *testStage {
	t.Helper()
	nc := natstest.EmbeddedConn(t)
	reg := prometheus.NewRegistry()
	if cfg.Mode == "" {
		cfg.Mode = ModeAudio
	}
	cfg.Logger = testLogger()
	s, err := New(nc, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pc := bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}, Logger: testLogger()}
	return &testStage{nc: nc, stage: s, reg: reg, pubs: s.Publishers(ingest.BusPublishers(nc, pc))}
}

// publishSink forwards a demuxer's output to a wrapped publisher, paced
// at real time by the PTS (a live source), and keeps the source audio.
type publishSink struct {
	ctx    context.Context
	pub    ingest.Publisher
	start  time.Time
	first  int64
	paced  bool
	audio  []tsframes.Frame
	onTick func(pts int64)
}

func (p *publishSink) Tracks(a tsframes.Announcement) error { return p.pub.Announce(p.ctx, a) }

func (p *publishSink) Frame(f tsframes.Frame) error {
	if p.start.IsZero() {
		p.start, p.first = time.Now(), f.PTS
	}
	if p.paced {
		due := p.start.Add(time.Duration(f.PTS-p.first) * time.Second / 90000)
		if d := time.Until(due); d > 0 {
			select {
			case <-p.ctx.Done():
				return p.ctx.Err()
			case <-time.After(d):
			}
		}
	}
	if f.Kind == tsframes.KindAudio {
		p.audio = append(p.audio, f)
	}
	if p.onTick != nil {
		p.onTick(f.PTS)
	}
	if err := p.pub.Publish(p.ctx, f); err != nil {
		return err
	}
	return nil
}

// open opens a publication of stream (epoch): its media stream exists
// once it returns.
func (ts *testStage) open(t *testing.T, stream string, epoch uint64) ingest.Publisher {
	t.Helper()
	pub, err := ts.pubs(t.Context(), stream, epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pub.Shutdown(ctx); err != nil {
			t.Errorf("publisher shutdown: %v", err)
		}
	})
	return pub
}

// feed publishes data on pub and returns the source audio frames.
func feed(t *testing.T, pub ingest.Publisher, data []byte, paced bool, onTick func(int64)) []tsframes.Frame {
	t.Helper()
	ctx := t.Context()
	sink := &publishSink{ctx: ctx, pub: pub, paced: paced, onTick: onTick}
	if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{SourceAudio: true}).Run(ctx, sink); err != nil && ctx.Err() == nil {
		t.Error(err)
	}
	return sink.audio
}

// busCollector keeps what a reader of a stream gets: its announcements and
// the frames a pick function takes from each message.
type busCollector struct {
	what   string // the frames kept, for failures
	mu     sync.Mutex
	frames []bus.Message
	recv   []time.Time
	anns   []bus.Announcement
	signal chan struct{}
}

// collect subscribes to stream from its first message with opts; pick
// appends the frames of a message to keep (none for a message not kept).
func collect(t *testing.T, nc *nats.Conn, stream string, opts bus.SubscribeOptions, what string, pick func(dst []bus.Message, m bus.Message) []bus.Message) *busCollector {
	t.Helper()
	c := &busCollector{what: what, signal: make(chan struct{}, 1)}
	var scratch []bus.Message
	opts.FromSeq = 1
	sub, err := bus.Subscribe(t.Context(), nc, stream, opts, func(m bus.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.Tracks != nil {
			c.anns = append(c.anns, *m.Tracks)
		} else {
			scratch = pick(scratch[:0], m)
			if len(scratch) == 0 {
				return
			}
			for _, f := range scratch {
				c.frames = append(c.frames, f)
				c.recv = append(c.recv, time.Now())
			}
		}
		select {
		case c.signal <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return c
}

// collectOpus keeps the Opus frames of a stream read from the bus.
func collectOpus(t *testing.T, nc *nats.Conn, stream string) *busCollector {
	t.Helper()
	return collect(t, nc, stream, bus.SubscribeOptions{}, "Opus", func(dst []bus.Message, m bus.Message) []bus.Message {
		if m.Frame.Codec != tsframes.CodecOpus {
			return dst
		}
		dst, _ = m.Frames(dst)
		return dst
	})
}

// wait waits until cond holds over the frames (checked at each new
// message), at most timeout.
func (c *busCollector) wait(t *testing.T, timeout time.Duration, what string, cond func(frames []bus.Message) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, n := cond(c.frames), len(c.frames)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.signal:
		case <-deadline.C:
			t.Fatalf("waiting %v for %s: %d %s frames", timeout, what, n, c.what)
		}
	}
}

// snapshot returns the frames kept so far and when each was received.
func (c *busCollector) snapshot() ([]bus.Message, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Message(nil), c.frames...), append([]time.Time(nil), c.recv...)
}

// announcements returns the announcements received so far.
func (c *busCollector) announcements() []bus.Announcement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Announcement(nil), c.anns...)
}

// checkContinuous fails unless the frames are 20 ms Opus packets whose PTS
// follow each other without gap or overlap.
func checkContinuous(t *testing.T, frames []bus.Message) {
	t.Helper()
	for i, m := range frames {
		if m.Frame.Duration != 1800 {
			t.Fatalf("Opus frame %d: duration %d, want 1800 (20 ms)", i, m.Frame.Duration)
		}
		if i > 0 && m.Frame.PTS != frames[i-1].Frame.PTS+1800 {
			t.Fatalf("Opus frame %d: PTS %d after %d: not continuous", i, m.Frame.PTS, frames[i-1].Frame.PTS)
		}
	}
}

// decodePCM decodes the audio of an MPEG-TS to mono 48 kHz float samples,
// sample 0 at PTS 0 (so a sample's index is its time on the source
// timeline, modulo 2^33).
func decodePCM(t *testing.T, ts []byte) []float64 {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-loglevel", "error", "-copyts", "-f", "mpegts", "-i", "pipe:0",
		"-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", "48000", "-f", "s16le", "pipe:1")
	cmd.Stdin = bytes.NewReader(ts)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decoding: %v\n%s", err, stderr.Bytes())
	}
	pcm := make([]float64, len(out)/2)
	for i := range pcm {
		pcm[i] = float64(int16(binary.LittleEndian.Uint16(out[2*i:]))) / 32768
	}
	return pcm
}

// sourceTS writes source audio frames back into an MPEG-TS.
func sourceTS(t *testing.T, frames []tsframes.Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newTSWriter(&buf, frames[0].Codec)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.writeTables(); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.writePES(f.PTS, f.PTS, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// opusTS writes Opus frames into an MPEG-TS.
func opusTS(t *testing.T, frames []bus.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	tr := &mpegts.Track{Codec: &codecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: 2}}}
	w := &mpegts.Writer{W: &buf, Tracks: []*mpegts.Track{tr}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	for _, m := range frames {
		if err := w.WriteOpus(tr, m.Frame.PTS&(1<<33-1), [][]byte{m.Frame.Data}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// onset is the time of the first sample louder than 0.05, in seconds.
func onset(t *testing.T, pcm []float64) float64 {
	t.Helper()
	for i, x := range pcm {
		if math.Abs(x) > 0.05 {
			return float64(i) / 48000
		}
	}
	t.Fatal("no onset: silence")
	return 0
}

// toneOf is the frequency (zero crossings) and RMS level (dBFS) of pcm
// between from and to seconds.
func toneOf(pcm []float64, from, to float64) (hz, db float64) {
	a, b := int(from*48000), min(int(to*48000), len(pcm))
	crossings, sum := 0, 0.0
	for i := a; i < b; i++ {
		sum += pcm[i] * pcm[i]
		if i > a && (pcm[i-1] < 0) != (pcm[i] < 0) {
			crossings++
		}
	}
	secs := float64(b-a) / 48000
	return float64(crossings) / 2 / secs, 10 * math.Log10(sum/float64(b-a))
}

// beep is an audio source: silence with a 1 kHz beep from 1.0 s to 1.1 s.
const beep = "aevalsrc='if(between(t,1,1.1),0.5*sin(2*PI*1000*t),0)':s=%d:d=3"

// TestTranscodeToOpus publishes AAC, MP2 and AC-3 sources (mono, stereo,
// 5.1; 44.1 and 48 kHz) and checks the derived Opus track on the bus: the
// announcement lists it, its packets are 20 ms and continuous, and a beep
// is where it is in the source (A/V sync: same PTS timeline within 20 ms).
func TestTranscodeToOpus(t *testing.T) {
	cases := []struct {
		name, codec string
		rate, ch    int
		want        tsframes.Codec
	}{
		{"aac-stereo-44k", "aac", 44100, 2, tsframes.CodecAAC},
		{"aac-mono-48k", "aac", 48000, 1, tsframes.CodecAAC},
		{"mp2-stereo-48k", "mp2", 48000, 2, tsframes.CodecMPEGAudio},
		{"mp2-stereo-44k", "mp2", 44100, 2, tsframes.CodecMPEGAudio},
		{"ac3-5.1-48k", "ac3", 48000, 6, tsframes.CodecAC3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkTranscodedBeep(t, tc.name, tc.want, tc.rate, "-c:a", tc.codec, "-ar", fmt.Sprint(tc.rate), "-ac", fmt.Sprint(tc.ch))
		})
	}
}

// checkTranscodedBeep publishes H.264 and the beep source at rate encoded
// with audioArgs through the stage and checks that the announcement's audio
// is a derived Opus track made from a track of codec want, that its packets
// are 20 ms and continuous, and that the beep is within 20 ms of where it is
// in the source.
func checkTranscodedBeep(t *testing.T, name string, want tsframes.Codec, rate int, audioArgs ...string) {
	t.Helper()
	ts := newTestStage(t, Config{})
	data := ffmpegFixture(t, name+".ts", append([]string{
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
		"-f", "lavfi", "-i", fmt.Sprintf(beep, rate),
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25"}, audioArgs...)...)
	stream := "t" + fmt.Sprint(time.Now().UnixNano()%1e6)
	pub := ts.open(t, stream, 1)
	c := collectOpus(t, ts.nc, stream)
	src := feed(t, pub, data, false, nil)
	if len(src) == 0 || src[0].Codec != want {
		t.Fatalf("source audio: %d frames of %v, want %s", len(src), src, want)
	}
	// 3 s of source: all but the encoder's last packets.
	c.wait(t, 20*time.Second, "2.8 s of Opus", func(f []bus.Message) bool { return len(f) >= 140 })
	frames, _ := c.snapshot()
	checkContinuous(t, frames)

	anns := c.announcements()
	if len(anns) == 0 {
		t.Fatal("no announcement")
	}
	a := anns[len(anns)-1]
	tr, ok := a.Track(a.Audio)
	if !ok || tr.Codec != tsframes.CodecOpus || !tr.WebRTC || tr.DerivedFrom == 0 {
		t.Fatalf("announcement %+v: audio %d is not a derived Opus track", a, a.Audio)
	}
	if s, _ := a.Track(tr.DerivedFrom); s.Codec != want {
		t.Fatalf("derived from PID %d (%s), want the %s track", tr.DerivedFrom, s.Codec, want)
	}

	srcOnset := onset(t, decodePCM(t, sourceTS(t, src)))
	opusOnset := onset(t, decodePCM(t, opusTS(t, frames)))
	t.Logf("FIGURE transcode_av_offset_ms{case=%s}=%.1f", name, (opusOnset-srcOnset)*1000)
	if d := opusOnset - srcOnset; math.Abs(d) > 0.020 {
		t.Fatalf("beep at %.4f s in the Opus, %.4f s in the source: %.1f ms apart, want within 20 ms", opusOnset, srcOnset, d*1000)
	}
}

// TestTranscodeKeepsTone: a 440 Hz tone keeps its frequency and its level
// (within 1 dB; measured as mono, the channels averaged) through AAC ->
// Opus, from a stereo source and from a mono one (copied to both channels
// at its level).
func TestTranscodeKeepsTone(t *testing.T) {
	for _, ch := range []int{2, 1} {
		t.Run(fmt.Sprintf("%dch", ch), func(t *testing.T) { checkKeepsTone(t, ch, false) })
	}
	// AAC in LATM announces no channel count: the stage reads it from the
	// first StreamMuxConfig (a mono source came out 3 dB down before).
	t.Run("1ch-latm", func(t *testing.T) { checkKeepsTone(t, 1, true) })
}

func checkKeepsTone(t *testing.T, channels int, latm bool) {
	ts := newTestStage(t, Config{})
	args := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
		"-af", "volume=2", "-c:a", "aac", "-b:a", "128k", "-ac", strconv.Itoa(channels)}
	if latm {
		args = append(args, "-mpegts_flags", "latm")
	}
	data := ffmpegFixture(t, "tone.ts", args...)
	pub := ts.open(t, "tone", 1)
	c := collectOpus(t, ts.nc, "tone")
	src := feed(t, pub, data, false, nil)
	c.wait(t, 20*time.Second, "2.8 s of Opus", func(f []bus.Message) bool { return len(f) >= 140 })
	frames, _ := c.snapshot()
	srcPCM, opusPCM := decodePCM(t, sourceTS(t, src)), decodePCM(t, opusTS(t, frames))
	from := float64(src[0].PTS)/90000 + 0.5
	srcHz, srcDB := toneOf(srcPCM, from, from+2)
	hz, db := toneOf(opusPCM, from, from+2)
	t.Logf("FIGURE transcode_tone source=%.2f Hz %.2f dBFS, opus=%.2f Hz %.2f dBFS", srcHz, srcDB, hz, db)
	if math.Abs(hz-440) > 2 || math.Abs(srcHz-440) > 2 {
		t.Fatalf("tone at %.2f Hz after Opus (%.2f Hz in the source), want 440", hz, srcHz)
	}
	if math.Abs(db-srcDB) > 1 {
		t.Fatalf("level %.2f dBFS after Opus, %.2f dBFS in the source: want within 1 dB", db, srcDB)
	}
}

// TestTranscoderRestart kills the child mid-stream: the stage restarts it
// and Opus resumes within a second; the restart is counted.
func TestTranscoderRestart(t *testing.T) {
	ts := newTestStage(t, Config{})
	data := ffmpegFixture(t, "long.ts", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6", "-c:a", "aac")
	pub := ts.open(t, "kill", 1)
	c := collectOpus(t, ts.nc, "kill")
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed(t, pub, data, true, nil)
	}()
	t.Cleanup(func() { <-done })
	c.wait(t, 10*time.Second, "1 s of Opus", func(f []bus.Message) bool { return len(f) >= 50 })
	ts.stage.mu.Lock()
	j := ts.stage.jobs["kill"]
	ts.stage.mu.Unlock()
	if j == nil || j.pid.Load() == 0 {
		t.Fatal("no running transcoder")
	}
	before, _ := c.snapshot()
	killed := time.Now()
	if err := syscall.Kill(int(j.pid.Load()), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Frames already in flight may arrive right after the kill: the next
	// child's first frame is the first after the PTS gap of the restart.
	n := len(before)
	c.wait(t, 5*time.Second, "Opus after the restart", func(f []bus.Message) bool {
		return j.children.Load() >= 2 && len(f) > n+5
	})
	var resumed time.Duration
	frames, recv := c.snapshot()
	// The first frame of the new child: the first after a PTS gap.
	for i := n; i < len(frames); i++ {
		if frames[i].Frame.PTS != frames[i-1].Frame.PTS+1800 {
			resumed = recv[i].Sub(killed)
			t.Logf("gap of %d ms of audio at the restart", (frames[i].Frame.PTS-frames[i-1].Frame.PTS-1800)/90)
			break
		}
	}
	t.Logf("FIGURE transcode_restart_resume_ms=%d", resumed.Milliseconds())
	if resumed > time.Second {
		t.Fatalf("Opus resumed %v after the kill, want within 1 s", resumed)
	}
	if got := testutil.ToFloat64(ts.stage.metrics.restarts.WithLabelValues("kill")); got != 1 {
		t.Fatalf("restarts %v, want 1", got)
	}
}

// TestTranscodeCPUAndDelay publishes a live (paced) H.264+AAC stream for
// WHEPCAST_TRANSCODE_SECONDS (default 5; docs/benchmarks.md used 30) and
// reports the child's CPU time per second of audio and the delay the stage
// adds: from the bus's store time of the source PES an Opus packet needs
// (the last one before the packet's end) to that of the Opus packet.
func TestTranscodeCPUAndDelay(t *testing.T) {
	secs := 5
	if v := os.Getenv("WHEPCAST_TRANSCODE_SECONDS"); v != "" {
		fmt.Sscan(v, &secs)
	}
	ts := newTestStage(t, Config{})
	data := ffmpegFixture(t, "bench.ts",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x180:rate=30:duration=%d", secs),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=44100:duration=%d", secs),
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "30", "-c:a", "aac", "-b:a", "128k", "-ac", "2")
	pub := ts.open(t, "bench", 1)

	var mu sync.Mutex
	var src, opus []bus.Message
	sub, err := bus.Subscribe(t.Context(), ts.nc, "bench", bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if !m.IsFrame() || m.Frame.Kind != tsframes.KindAudio {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if m.Frame.Codec == tsframes.CodecOpus {
			opus = append(opus, m)
		} else {
			src = append(src, m)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	start := time.Now()
	feed(t, pub, data, true, nil)
	// Let the last packets through, then read the CPU before the job ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(opus)
		mu.Unlock()
		if n >= secs*50-10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a count, bounded by the deadline
	}
	elapsed := time.Since(start)
	cpu := testutil.ToFloat64(ts.stage.metrics.cpu.WithLabelValues("bench"))
	mu.Lock()
	defer mu.Unlock()
	if len(opus) < secs*50-10 {
		t.Fatalf("%d Opus packets for %d s", len(opus), secs)
	}
	var delays []time.Duration
	for _, o := range opus {
		end := o.Frame.PTS + o.Frame.Duration
		var need *bus.Message
		for i := range src {
			if src[i].Frame.PTS < end {
				need = &src[i]
			}
		}
		if need != nil && !o.Published.IsZero() && !need.Published.IsZero() {
			delays = append(delays, o.Published.Sub(need.Published))
		}
	}
	slices.Sort(delays)
	p50, p95 := delays[len(delays)/2], delays[len(delays)*95/100]
	t.Logf("FIGURE transcode_cpu_seconds_per_audio_second=%.4f (%.2f%% of a core over %v) delay_p50=%v delay_p95=%v source_pes=%d opus_packets=%d",
		cpu/elapsed.Seconds(), 100*cpu/elapsed.Seconds(), elapsed.Round(time.Millisecond), p50, p95, len(src), len(opus))
	if cpu <= 0 {
		t.Fatal("no CPU time counted for the child")
	}
}

// corruptingPublisher flips bytes in every third source audio PES (past
// its first ADTS header) before passing it on.
type corruptingPublisher struct {
	ingest.Publisher
	n int
}

func (c *corruptingPublisher) Publish(ctx context.Context, f tsframes.Frame) error {
	if f.Kind == tsframes.KindAudio && f.Codec != tsframes.CodecOpus {
		c.n++
		if c.n%3 == 0 && len(f.Data) > 64 {
			f.Data = append([]byte(nil), f.Data...)
			for i := 16; i < len(f.Data); i += 7 {
				f.Data[i] ^= 0x5a
			}
		}
	}
	return c.Publisher.Publish(ctx, f)
}

// TestTranscodeCorruptAAC: a third of the source's AAC PES are corrupt;
// the stage keeps publishing Opus to the end of the source (the decoder
// skips what it cannot decode) and its output stays in order.
func TestTranscodeCorruptAAC(t *testing.T) {
	ts := newTestStage(t, Config{})
	data := ffmpegFixture(t, "corrupt.ts", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-c:a", "aac", "-ac", "2")
	pub := &corruptingPublisher{Publisher: ts.open(t, "corrupt", 1)}
	c := collectOpus(t, ts.nc, "corrupt")
	src := feed(t, pub, data, false, nil)
	// The decoder drops what it cannot decode (ffmpeg alone makes 82
	// packets of this input) and recovers: Opus comes out up to the last
	// second of the source.
	last := src[len(src)-1].PTS
	c.wait(t, 20*time.Second, "Opus of the source's last second", func(f []bus.Message) bool {
		return len(f) > 0 && f[len(f)-1].Frame.PTS >= last-90000
	})
	frames, _ := c.snapshot()
	for i := 1; i < len(frames); i++ {
		if frames[i].Frame.PTS < frames[i-1].Frame.PTS+frames[i-1].Frame.Duration {
			t.Fatalf("Opus frame %d: PTS %d overlaps the previous (%d)", i, frames[i].Frame.PTS, frames[i-1].Frame.PTS)
		}
	}
	restarts := testutil.ToFloat64(ts.stage.metrics.restarts.WithLabelValues("corrupt"))
	t.Logf("FIGURE transcode_corrupt_aac opus_packets=%d restarts=%v (of 200 without corruption)", len(frames), restarts)
}

// TestTranscodeAcrossPTSWrap: the source's PTS cross 2^33 (the 33-bit
// MPEG-TS clock wraps after 26.5 hours) 1.7 s in; the Opus stays on the
// source's unwrapped timeline, continuous across the wrap.
func TestTranscodeAcrossPTSWrap(t *testing.T) {
	ts := newTestStage(t, Config{})
	data := ffmpegFixture(t, "wrap.ts", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
		"-c:a", "aac", "-ac", "2", "-muxdelay", "0", "-muxpreload", "0", "-output_ts_offset", "95442")
	pub := ts.open(t, "wrap", 1)
	c := collectOpus(t, ts.nc, "wrap")
	src := feed(t, pub, data, false, nil)
	if last := src[len(src)-1].PTS; src[0].PTS >= wrap || last < wrap {
		t.Fatalf("source PTS %d..%d do not cross 2^33", src[0].PTS, last)
	}
	c.wait(t, 20*time.Second, "3.5 s of Opus", func(f []bus.Message) bool { return len(f) >= 175 })
	frames, _ := c.snapshot()
	checkContinuous(t, frames)
	if d := frames[0].Frame.PTS - src[0].PTS; d < -3600 || d > 3600 {
		t.Fatalf("first Opus PTS %d, first source PTS %d: %d ticks apart", frames[0].Frame.PTS, src[0].PTS, d)
	}
	if last := frames[len(frames)-1].Frame.PTS; last < wrap {
		t.Fatalf("last Opus PTS %d: not past 2^33", last)
	}
}
