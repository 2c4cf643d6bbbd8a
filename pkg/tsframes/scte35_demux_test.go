package tsframes_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// cueSink records the cues and, for each, how many video frames came
// before it.
type cueSink struct {
	tstest.Demuxed
	cues        []tsframes.Cue
	videoBefore []int
}

func (s *cueSink) Cue(c tsframes.Cue) error {
	s.cues = append(s.cues, c)
	s.videoBefore = append(s.videoBefore, len(s.Kind(tsframes.KindVideo)))
	return nil
}

// TestDemuxSCTE35Cues: the splice_insert and time_signal sections of a PID
// of stream type 0x86 reach a CueSink with their splice time on the frames'
// timeline (pts_adjustment applied), the raw section and its fields; an
// immediate splice gets the stream's latest timestamp; splice_null is
// ignored and a section with a bad CRC is dropped and counted.
func TestDemuxSCTE35Cues(t *testing.T) {
	base := tstest.Read(t, "av.ts")
	pts := tstest.VideoPTS(t, base)
	if len(pts) < 150 {
		t.Fatalf("av.ts has %d video PES", len(pts))
	}
	first := pts[0]
	insert := tstest.SpliceInsert(42, first+2*90000, 900, 30*90000)
	signal := tstest.TimeSignal(first + 4*90000)
	immediate := tsframes.AppendSpliceInfo(nil, tsframes.SpliceInfo{Command: tsframes.SpliceInsert, EventID: 43})
	null := tsframes.AppendSpliceInfo(nil, tsframes.SpliceInfo{Command: tsframes.SpliceNull})
	bad := append([]byte{}, insert...)
	bad[len(bad)-1] ^= 0xFF
	ts := tstest.SCTE35(t, base, []tstest.CueAt{
		{Before: first, Section: null},
		{Before: first + 90000, Section: insert}, // 1 s of pre-roll
		{Before: first + 90000, Section: bad},
		{Before: first + 3*90000, Section: signal},
		{Before: first + 5*90000, Section: immediate},
	})

	var s cueSink
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var decodeErrs []error
	d := tsframes.NewDemuxer(bytes.NewReader(ts), tsframes.Options{OnDecodeError: func(err error) { decodeErrs = append(decodeErrs, err) }})
	if err := d.Run(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.cues) != 3 {
		t.Fatalf("%d cues, want 3: %+v", len(s.cues), s.cues)
	}
	want := []struct {
		pts     int64
		command tsframes.SpliceCommand
		id      uint32
		oon     bool
		dur     int64
		sec     []byte
	}{
		{first + 2*90000, tsframes.SpliceInsert, 42, true, 30 * 90000, insert},
		{first + 4*90000, tsframes.TimeSignal, 0, false, 0, signal},
		{-1, tsframes.SpliceInsert, 43, false, 0, immediate},
	}
	for i, w := range want {
		c := s.cues[i]
		if w.pts >= 0 && c.PTS != w.pts {
			t.Errorf("cue %d: PTS %d, want %d", i, c.PTS, w.pts)
		}
		if c.Command != w.command || c.EventID != w.id || c.OutOfNetwork != w.oon || c.Duration != w.dur ||
			c.PID != tstest.CuePID || !bytes.Equal(c.Section, w.sec) {
			t.Errorf("cue %d: %+v, want %+v", i, c, w)
		}
	}
	// The immediate splice applies at the latest timestamp read: within the
	// video PES before which it was written.
	if imm := s.cues[2].PTS; imm < first+4*90000 || imm > first+5*90000 {
		t.Errorf("immediate cue at PTS %d, want about %d", imm, first+5*90000)
	}
	// Cues come as they are read, ahead of the frames they apply to.
	if n := s.videoBefore[0]; n < 25 || n > 35 {
		t.Errorf("first cue after %d video frames, want about 30 (1 s)", n)
	}
	st := d.Stats()
	if st.Cues != 3 {
		t.Errorf("Stats.Cues %d, want 3", st.Cues)
	}
	scte := 0
	for _, err := range decodeErrs {
		if errors.Is(err, tsframes.ErrSCTE35) {
			scte++
		}
	}
	if scte != 1 {
		t.Errorf("%d SCTE-35 decode errors (%v), want 1 (the bad CRC)", scte, decodeErrs)
	}
	// The media is demuxed as without the cues.
	ref := tstest.Demux(t, base)
	if len(s.Frames) != len(ref.Frames) {
		t.Errorf("%d frames with cues, %d without", len(s.Frames), len(ref.Frames))
	}
}

// TestDemuxSCTE35WithoutCueSink: a Sink that takes no cues gets the same
// frames, and nothing breaks.
func TestDemuxSCTE35WithoutCueSink(t *testing.T) {
	base := tstest.Read(t, "av.ts")
	first := tstest.VideoPTS(t, base)[0]
	ts := tstest.SCTE35(t, base, []tstest.CueAt{{Before: first + 90000, Section: tstest.TimeSignal(first + 2*90000)}})
	got := tstest.Demux(t, ts)
	ref := tstest.Demux(t, base)
	if len(got.Frames) != len(ref.Frames) {
		t.Errorf("%d frames with cues, %d without", len(got.Frames), len(ref.Frames))
	}
}
