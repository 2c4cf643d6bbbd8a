//go:build external

package transcode

import (
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// collectVideo keeps the video frames a reader of a stream gets (the
// played ones, or the source's with sourceVideo).
func collectVideo(t *testing.T, nc *nats.Conn, stream string, sourceVideo bool) *busCollector {
	t.Helper()
	return collect(t, nc, stream, bus.SubscribeOptions{SourceVideo: sourceVideo}, "video", func(dst []bus.Message, m bus.Message) []bus.Message {
		if m.Frame.Kind != tsframes.KindVideo {
			return dst
		}
		return append(dst, m)
	})
}

// TestReencodeBFrames: bframes.ts (H.264 High, 2 B-frames, 1 s GOP), fed in
// real time: the stage detects the B-frames, announces the source's track
// with b_frames and a derived H.264 track as the video, and a reader then
// gets only derived frames, from a keyframe: constrained baseline, no
// reordering (DTS = PTS, PTS growing by one frame), the source's
// keyframes at the same PTS, every source frame after the first re-encoded
// keyframe re-encoded once; the derived track is announced again with
// the profile-level-id of its SPS once known. A reader asking for the
// source gets the source's frames only.
func TestReencodeBFrames(t *testing.T) {
	ts := newTestStage(t, Config{Mode: ModeAuto})
	pub := ts.open(t, "bf", 1)
	played := collectVideo(t, ts.nc, "bf", false)
	source := collectVideo(t, ts.nc, "bf", true)
	src := tstest.Demux(t, tstest.Read(t, "bframes.ts")).Kind(tsframes.KindVideo)
	feed(t, pub, tstest.Read(t, "bframes.ts"), true, nil)
	last := src[len(src)-1].PTS
	for _, f := range src {
		last = max(last, f.PTS)
	}
	// The encoder holds no frame back (zero latency), but ffmpeg's
	// decoder of the source holds as many as it reorders (2) until more
	// input comes: all but the last few come out while the source is live.
	played.wait(t, 5*time.Second, "the derived frames up to the source's last but eight", func(frames []bus.Message) bool {
		return len(frames) > 0 && frames[len(frames)-1].Derived && frames[len(frames)-1].Frame.PTS >= last-8*3000
	})

	frames, _ := played.snapshot()
	anns := played.announcements()
	var ann *bus.Announcement
	for i := range anns {
		if v, ok := anns[i].Track(anns[i].Video); ok && v.DerivedFrom != 0 {
			ann = &anns[i]
			break
		}
	}
	if ann == nil {
		t.Fatalf("no announcement with a derived video track: %+v", anns[len(anns)-1])
	}
	v, _ := ann.Track(ann.Video)
	s, _ := ann.Track(v.DerivedFrom)
	if v.Codec != tsframes.CodecH264 || !v.WebRTC || s.PID != 256 || s.Codec != tsframes.CodecH264 || !s.BFrames || v.BFrames {
		t.Errorf("derived track %+v from %+v: want H.264 from 256, the source marked b_frames", v, s)
	}

	// The played video: the source's frames first (before the switch),
	// then derived frames only, from a keyframe on.
	first := -1
	for i, m := range frames {
		if m.Derived {
			first = i
			break
		}
	}
	if first < 0 || !frames[first].Frame.Key {
		t.Fatalf("first derived frame %d: %+v, want a keyframe", first, frames[max(first, 0)].Frame)
	}
	keys := map[int64]bool{}
	for _, f := range src {
		if f.Key {
			keys[f.PTS] = true
		}
	}
	derived := frames[first:]
	for i, m := range derived {
		f := m.Frame
		switch {
		case !m.Derived:
			t.Fatalf("derived frame %d: a source frame played after the switch (PTS %d)", i, f.PTS)
		case f.DTS != f.PTS:
			t.Fatalf("derived frame %d: DTS %d, PTS %d: reordered", i, f.DTS, f.PTS)
		case i > 0 && f.PTS != derived[i-1].Frame.PTS+3000:
			t.Fatalf("derived frame %d: PTS %d after %d, want one frame (3000) later", i, f.PTS, derived[i-1].Frame.PTS)
		case f.Key != keys[f.PTS]:
			t.Fatalf("derived frame %d at PTS %d: key %v, source key %v", i, f.PTS, f.Key, keys[f.PTS])
		case f.Key && (len(f.Data) < 5 || f.Data[4]&0x1f != 7 || f.Data[5] != 66):
			t.Fatalf("derived keyframe %d: starts % x, want an SPS of profile 66 (baseline)", i, f.Data[:min(8, len(f.Data))])
		}
	}
	// The source frames from the first re-encoded keyframe on, one each.
	want := 0
	for _, f := range src {
		if f.PTS >= derived[0].Frame.PTS && f.PTS <= derived[len(derived)-1].Frame.PTS {
			want++
		}
	}
	if len(derived) != want {
		t.Errorf("%d derived frames from PTS %d, want %d (the source's from there)", len(derived), derived[0].Frame.PTS, want)
	}
	checkDerivedProfile(t, played, frames)
	t.Logf("%d source frames; played: %d of the source, then %d derived from PTS %d (%.2f s in) to %d (the source's last %d); %d announcements; delay %.0f ms",
		len(src), first, len(derived), derived[0].Frame.PTS, float64(derived[0].Frame.PTS-src[0].DTS)/90000,
		derived[len(derived)-1].Frame.PTS, last, len(anns), 1000*testutil.ToFloat64(ts.stage.metrics.delay.WithLabelValues("bf")))

	source.wait(t, 5*time.Second, "every source frame", func(frames []bus.Message) bool { return len(frames) >= len(src) })
	srcFrames, _ := source.snapshot()
	if len(srcFrames) != len(src) {
		got := map[int64]bool{}
		for _, m := range srcFrames {
			got[m.Frame.PTS] = true
		}
		var missing []int64
		for _, f := range src {
			if !got[f.PTS] {
				missing = append(missing, f.PTS)
			}
		}
		t.Errorf("source reader: %d frames, want the %d of the source; missing PTS %v", len(srcFrames), len(src), missing)
	}
	for i, m := range srcFrames {
		if m.Derived || m.Frame.PID != 256 {
			t.Fatalf("source reader, frame %d: derived %v, PID %d", i, m.Derived, m.Frame.PID)
		}
	}
}

// TestNoReencodeWithoutBFrames: av.ts (-bf 0) is not re-encoded: no
// derived video track, no video job, the source's frames played.
func TestNoReencodeWithoutBFrames(t *testing.T) {
	ts := newTestStage(t, Config{Mode: ModeAuto})
	pub := ts.open(t, "plain", 1)
	played := collectVideo(t, ts.nc, "plain", false)
	src := tstest.Demux(t, tstest.Read(t, "av.ts")).Kind(tsframes.KindVideo)
	feed(t, pub, tstest.Read(t, "av.ts"), false, nil)
	played.wait(t, 5*time.Second, "every source frame", func(frames []bus.Message) bool { return len(frames) == len(src) })
	frames, _ := played.snapshot()
	anns := played.announcements()
	for _, a := range anns {
		if v, ok := a.Track(a.Video); !ok || v.DerivedFrom != 0 || v.BFrames {
			t.Fatalf("announcement video %+v", v)
		}
	}
	for i, m := range frames {
		if m.Derived {
			t.Fatalf("frame %d derived", i)
		}
	}
	if n := ts.stage.Active(); n != 0 {
		t.Errorf("%d transcodes running, want 0", n)
	}
}

// TestReencodeCPU720p: the CPU time of the child re-encoding a 720p30
// H.264 High stream with B-frames (x264 veryfast -bf 2, 3 Mb/s), fed in
// real time for WHEPCAST_TRANSCODE_SECONDS (default 10). The figure goes
// to docs/benchmarks.md.
func TestReencodeCPU720p(t *testing.T) {
	secs := 10
	if v := os.Getenv("WHEPCAST_TRANSCODE_SECONDS"); v != "" {
		fmt.Sscan(v, &secs)
	}
	data := ffmpegFixture(t, "720p.ts",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x720:rate=30:duration=%d", secs),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-bf", "2",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "3M", "-maxrate", "4M", "-bufsize", "3M")
	ts := newTestStage(t, Config{Mode: ModeAuto})
	pub := ts.open(t, "hd", 1)
	played := collectVideo(t, ts.nc, "hd", false)
	src := tstest.Demux(t, data).Kind(tsframes.KindVideo)
	start := time.Now()
	feed(t, pub, data, true, nil)
	last := int64(0)
	for _, f := range src {
		last = max(last, f.PTS)
	}
	played.wait(t, 10*time.Second, "the frames re-encoded up to the last but eight", func(frames []bus.Message) bool {
		return len(frames) > 0 && frames[len(frames)-1].Frame.PTS >= last-8*3000
	})
	elapsed := time.Since(start)
	cpu := testutil.ToFloat64(ts.stage.metrics.cpu.WithLabelValues("hd"))
	delay := testutil.ToFloat64(ts.stage.metrics.delay.WithLabelValues("hd"))
	frames, _ := played.snapshot()
	derived := 0
	var bytes int
	for _, m := range frames {
		if m.Derived {
			derived++
			bytes += len(m.Frame.Data)
		}
	}
	// The job starts about a second in (detection and the bitrate
	// window), so the CPU is over the time it ran: the derived frames.
	ran := float64(derived) / 30
	t.Logf("FIGURE reencode_720p30_cpu_seconds_per_second=%.3f (%.1f%% of a core; %.2f CPU-s over %d derived frames = %.1f s of video; wall %v) delay_latest=%.0fms derived_bitrate=%.0fkb/s",
		cpu/ran, 100*cpu/ran, cpu, derived, ran, elapsed.Round(time.Millisecond), 1000*delay, float64(bytes)*8/ran/1000)
	if cpu <= 0 || derived < (secs-2)*30 {
		t.Fatalf("cpu %.2f s, %d derived frames for %d s", cpu, derived, secs)
	}
}

// TestH265Rendition: hevc.ts (H.265 Main, no H.264): the stage makes an
// H.264 rendition (no B-detection needed), announced as the video with
// derived_from the H.265 track; a reader gets the H.265 frames throughout
// (for viewers that offer H.265) and, from its first keyframe, the derived
// H.264 frames at the H.265 frames' PTS; the derived track is announced
// again with the profile-level-id of its SPS once known.
func TestH265Rendition(t *testing.T) {
	ts := newTestStage(t, Config{Mode: ModeAuto})
	pub := ts.open(t, "hevc", 1)
	played := collectVideo(t, ts.nc, "hevc", false)
	src := tstest.Demux(t, tstest.Read(t, "hevc.ts")).Kind(tsframes.KindVideo)
	feed(t, pub, tstest.Read(t, "hevc.ts"), true, nil)
	last := int64(0)
	for _, f := range src {
		last = max(last, f.PTS)
	}
	played.wait(t, 5*time.Second, "every H.265 frame, and the H.264 rendition up to the source's last but eight", func(frames []bus.Message) bool {
		n, end := 0, int64(0)
		for _, m := range frames {
			if m.Derived {
				end = m.Frame.PTS
			} else {
				n++
			}
		}
		return n >= len(src) && end >= last-8*3000
	})
	frames, _ := played.snapshot()
	anns := played.announcements()
	a := anns[len(anns)-1]
	v, _ := a.Track(a.Video)
	s, _ := a.Track(v.DerivedFrom)
	if v.Codec != tsframes.CodecH264 || s.Codec != tsframes.CodecH265 || s.BFrames {
		t.Fatalf("announcement video %+v from %+v: want H.264 derived from the H.265 track", v, s)
	}
	srcPTS := map[int64]bool{}
	for _, f := range src {
		srcPTS[f.PTS] = true
	}
	var h265, h264 int
	for i, m := range frames {
		switch {
		case m.Frame.Codec == tsframes.CodecH265 && !m.Derived:
			h265++
		case m.Frame.Codec == tsframes.CodecH264 && m.Derived:
			if h264 == 0 && !m.Frame.Key {
				t.Fatalf("frame %d: the first H.264 frame is not a keyframe", i)
			}
			if !srcPTS[m.Frame.PTS] || m.Frame.DTS != m.Frame.PTS {
				t.Fatalf("frame %d: H.264 at PTS %d DTS %d, not a source frame's", i, m.Frame.PTS, m.Frame.DTS)
			}
			h264++
		default:
			t.Fatalf("frame %d: %s derived %v", i, m.Frame.Codec, m.Derived)
		}
	}
	checkDerivedProfile(t, played, frames)
	t.Logf("%d H.265 frames, %d H.264 frames of the rendition", h265, h264)
	if h265 != len(src) || h264 < len(src)/2 {
		t.Errorf("%d H.265 frames (want %d), %d H.264 (want at least half)", h265, len(src), h264)
	}
}

// checkDerivedProfile checks the profile-level-id announced for the
// derived H.264 track: that of the SPS the derived keyframes carry (the
// same in each), announced once the output's first SPS is known: before
// it "" (a node offers its default), after it never another value (which
// would end the node's viewers for nothing).
func checkDerivedProfile(t *testing.T, c *busCollector, frames []bus.Message) {
	t.Helper()
	want := ""
	for i, m := range frames {
		if !m.Derived || !m.Frame.Key {
			continue
		}
		plid := spsProfileLevelID(t, m.Frame.Data)
		if want != "" && plid != want {
			t.Fatalf("derived keyframe %d (PTS %d): SPS profile-level-id %s, the previous ones %s", i, m.Frame.PTS, plid, want)
		}
		want = plid
	}
	if want == "" {
		t.Fatal("no derived keyframe")
	}
	c.waitAnnouncement(t, 5*time.Second, "a derived video track with a profile-level-id", func(a bus.Announcement) bool {
		v, ok := a.Track(a.Video)
		return ok && v.DerivedFrom != 0 && v.ProfileLevelID != ""
	})
	var seq []string // the derived track's successive profile-level-ids
	for _, a := range c.announcements() {
		v, ok := a.Track(a.Video)
		if !ok || v.DerivedFrom == 0 {
			continue
		}
		if len(seq) == 0 || seq[len(seq)-1] != v.ProfileLevelID {
			seq = append(seq, v.ProfileLevelID)
		}
	}
	if !slices.Equal(seq, []string{"", want}) && !slices.Equal(seq, []string{want}) {
		t.Errorf("derived track announced with profile-level-ids %q, want %q once known (the output's SPS)", seq, want)
	}
	t.Logf("derived track's profile-level-id %s, announced as %q", want, seq)
}

// spsProfileLevelID is the profile-level-id (SPS bytes 1..3, in hex) of
// the SPS in the Annex-B access unit au; it fails when au has none.
func spsProfileLevelID(t *testing.T, au []byte) string {
	t.Helper()
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(au); err != nil {
		t.Fatalf("derived keyframe: %v", err)
	}
	for _, n := range nalus {
		if len(n) >= 4 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return hex.EncodeToString(n[1:4])
		}
	}
	t.Fatalf("derived keyframe without an SPS: starts % x", au[:min(8, len(au))])
	return ""
}

// waitAnnouncement waits until c has received an announcement for which
// cond holds, at most timeout.
func (c *busCollector) waitAnnouncement(t *testing.T, timeout time.Duration, what string, cond func(bus.Announcement) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		anns := c.announcements()
		if slices.ContainsFunc(anns, cond) {
			return
		}
		select {
		case <-c.signal:
		case <-deadline.C:
			t.Fatalf("waiting %v for %s: %d announcements, the last %+v", timeout, what, len(anns), anns[max(len(anns)-1, 0):])
		}
	}
}
