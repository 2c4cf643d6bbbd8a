package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The bus publisher is what broker --demo passes to Loop.
var _ Publisher = (*bus.Publisher)(nil)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	videoPID = 256
	audioPID = 257
)

var clockStart = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock advances instantly: After moves the time forward by d and fires
// at once, so a test sees exactly the times Loop waits for, without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: clockStart} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// published is one frame as the publisher saw it.
type published struct {
	frame tsframes.Frame
	at    time.Time
}

// recorder is a Publisher that records what it receives and cancels the
// loop after limit frames.
type recorder struct {
	clock     Clock
	limit     int
	cancel    context.CancelFunc
	announced []tsframes.Announcement
	frames    []published
	// onPublish, when set, runs for each frame (index i) and may fail it.
	onPublish func(i int, f tsframes.Frame) error
}

func (r *recorder) Announce(ctx context.Context, a tsframes.Announcement) error {
	if len(r.frames) > 0 {
		return errors.New("announced after the first frame")
	}
	r.announced = append(r.announced, a)
	return nil
}

func (r *recorder) Publish(ctx context.Context, f tsframes.Frame) error {
	if len(r.announced) == 0 {
		return errors.New("frame before the announcement")
	}
	i := len(r.frames)
	r.frames = append(r.frames, published{frame: f, at: r.clock.Now()})
	if len(r.frames) >= r.limit {
		r.cancel()
	}
	if r.onPublish != nil {
		return r.onPublish(i, f)
	}
	return nil
}

// synthFrames is a 0.2 s clip: 6 video frames at 30 fps starting at 126585
// and 10 Opus packets of 20 ms starting at 126000, as ffmpeg lays them out.
func synthFrames() (tsframes.Announcement, []tsframes.Frame) {
	a := tsframes.Announcement{Tracks: []tsframes.Track{
		{PID: videoPID, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
		{PID: audioPID, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000},
	}}
	var frames []tsframes.Frame
	for i := range 10 {
		pts := int64(126000 + i*1800)
		frames = append(frames, tsframes.Frame{PID: audioPID, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus,
			PTS: pts, DTS: pts, Duration: 1800, Data: []byte{0xfc, byte(i)}})
	}
	for i := range 6 {
		ts := int64(126585 + i*3000)
		frames = append(frames, tsframes.Frame{PID: videoPID, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264,
			PTS: ts, DTS: ts, Key: i == 0, Data: []byte{0, 0, 0, 1, 0x65, byte(i)}})
	}
	return a, frames
}

func synthClip(t *testing.T) *clip {
	t.Helper()
	a, frames := synthFrames()
	c, err := newClip(a, frames)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runLoop runs c.loop until the recorder's limit, with a deadline.
func runLoop(t *testing.T, c *clip, rec *recorder, clock Clock) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rec.cancel = cancel
	if rec.clock == nil {
		rec.clock = clock
	}
	err := c.loop(ctx, rec, clock, discardLogger)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("the loop hit the test deadline")
	}
	return err
}

var discardLogger = slog.New(slog.DiscardHandler)

func TestTimestampsContinueAcrossLoops(t *testing.T) {
	c := synthClip(t)
	clock := newFakeClock()
	rec := &recorder{limit: 3*16 + 5}
	err := runLoop(t, c, rec, clock)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop returned %v, want context.Canceled", err)
	}
	if len(rec.announced) != 1 || len(rec.announced[0].Tracks) != 2 {
		t.Fatalf("announced %+v, want the clip's announcement once", rec.announced)
	}
	if len(rec.frames) != rec.limit {
		t.Fatalf("%d frames published, want %d", len(rec.frames), rec.limit)
	}
	var video, audio []tsframes.Frame
	for _, p := range rec.frames {
		switch p.frame.PID {
		case videoPID:
			video = append(video, p.frame)
		case audioPID:
			audio = append(audio, p.frame)
		}
	}
	if len(video) < 18 || len(audio) < 30 {
		t.Fatalf("%d video and %d audio frames, want at least 3 passes", len(video), len(audio))
	}
	for i := 1; i < len(video); i++ {
		if d := video[i].PTS - video[i-1].PTS; d != 3000 {
			t.Errorf("video PTS %d -> %d: delta %d, want 3000", video[i-1].PTS, video[i].PTS, d)
		}
		if video[i].DTS != video[i].PTS {
			t.Errorf("video DTS %d != PTS %d", video[i].DTS, video[i].PTS)
		}
		if want := i%6 == 0; video[i].Key != want {
			t.Errorf("video frame %d key %v, want %v", i, video[i].Key, want)
		}
	}
	for i := 1; i < len(audio); i++ {
		if d := audio[i].PTS - audio[i-1].PTS; d != audio[i-1].Duration {
			t.Errorf("audio PTS %d -> %d: delta %d, want the packet duration %d", audio[i-1].PTS, audio[i].PTS, d, audio[i-1].Duration)
		}
	}
	// The payloads repeat pass after pass, each a fresh copy.
	_, src := synthFrames()
	if !bytes.Equal(video[7].Data, src[11].Data) || !bytes.Equal(audio[12].Data, src[2].Data) {
		t.Errorf("payloads differ from the clip's: %x %x", video[7].Data, audio[12].Data)
	}
	video[1].Data[5] = 0xff
	if video[7].Data[5] != 1 || c.frames[3].Data[5] == 0xff {
		t.Error("published payloads share memory with each other or with the clip")
	}
}

func TestPacingFollowsTimestamps(t *testing.T) {
	c := synthClip(t)
	clock := newFakeClock()
	rec := &recorder{limit: 2*16 + 3}
	if err := runLoop(t, c, rec, clock); !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop returned %v", err)
	}
	const origin = 126000
	for _, p := range rec.frames {
		want := clockStart.Add(time.Duration(p.frame.DTS-origin) * time.Second / 90000)
		if !p.at.Equal(want) {
			t.Errorf("frame PID %d DTS %d published at +%v, want +%v", p.frame.PID, p.frame.DTS, p.at.Sub(clockStart), want.Sub(clockStart))
		}
	}
	// Two passes of 0.2 s and the first video frame of the third.
	if got := rec.frames[len(rec.frames)-1].at.Sub(clockStart); got < 400*time.Millisecond {
		t.Errorf("last frame at +%v, want at least +400ms", got)
	}
}

func TestLaggingMovesTheSchedule(t *testing.T) {
	c := synthClip(t)
	clock := newFakeClock()
	rec := &recorder{limit: 16}
	// Publishing frame 4 takes 3 s.
	rec.onPublish = func(i int, f tsframes.Frame) error {
		if i == 4 {
			clock.advance(3 * time.Second)
		}
		return nil
	}
	if err := runLoop(t, c, rec, clock); !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop returned %v", err)
	}
	// Frame 5 goes out at once (3 s late), and the frames after it keep
	// their spacing from it instead of bursting.
	f5 := rec.frames[5]
	if want := rec.frames[4].at.Add(3 * time.Second); !f5.at.Equal(want) {
		t.Errorf("frame 5 at +%v, want +%v", f5.at.Sub(clockStart), want.Sub(clockStart))
	}
	for _, p := range rec.frames[6:] {
		want := f5.at.Add(time.Duration(p.frame.DTS-f5.frame.DTS) * time.Second / 90000)
		if !p.at.Equal(want) {
			t.Errorf("frame DTS %d at +%v, want +%v", p.frame.DTS, p.at.Sub(clockStart), want.Sub(clockStart))
		}
	}
}

// blockingClock never fires; waiting tells the test that Loop waits.
type blockingClock struct {
	waiting chan time.Duration
}

func (c *blockingClock) Now() time.Time { return clockStart }

func (c *blockingClock) After(d time.Duration) <-chan time.Time {
	c.waiting <- d
	return make(chan time.Time)
}

func TestCancelReturnsPromptly(t *testing.T) {
	c := synthClip(t)
	clock := &blockingClock{waiting: make(chan time.Duration, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rec := &recorder{limit: 1000, clock: clock, cancel: cancel}
	done := make(chan error, 1)
	go func() { done <- c.loop(ctx, rec, clock, discardLogger) }()

	select {
	case d := <-clock.waiting:
		// The first frame is due at once; Loop now waits for the second
		// (the first video frame, 585/90000 s later).
		if want := time.Duration(585) * time.Second / 90000; d != want {
			t.Errorf("waiting %v, want %v", d, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loop never waited")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Loop returned %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Loop did not return within 2 s of cancel")
	}
	if len(rec.frames) != 1 {
		t.Errorf("%d frames published, want 1", len(rec.frames))
	}
}

func TestPublishErrors(t *testing.T) {
	c := synthClip(t)
	clock := newFakeClock()
	rec := &recorder{limit: 1000}
	rec.onPublish = func(i int, f tsframes.Frame) error {
		switch i {
		case 2:
			return errors.New("a transient failure")
		case 7:
			return fmt.Errorf("publisher: %w", bus.ErrClosed)
		}
		return nil
	}
	err := runLoop(t, c, rec, clock)
	if !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Loop returned %v, want bus.ErrClosed", err)
	}
	if len(rec.frames) != 8 {
		t.Errorf("%d frames published, want 8 (a transient error skips one frame, ErrClosed stops)", len(rec.frames))
	}
}

type failingAnnouncer struct{ recorder }

func (failingAnnouncer) Announce(context.Context, tsframes.Announcement) error {
	return errors.New("no bus")
}

func TestAnnounceError(t *testing.T) {
	c := synthClip(t)
	pub := &failingAnnouncer{}
	err := c.loop(t.Context(), pub, newFakeClock(), discardLogger)
	if err == nil || err.Error() != "demo: announcing the clip's tracks: no bus" {
		t.Errorf("Loop returned %v", err)
	}
	if len(pub.frames) != 0 {
		t.Errorf("%d frames published after a failed announcement", len(pub.frames))
	}
}

func TestLoopNilPublisher(t *testing.T) {
	if err := Loop(t.Context(), nil, Options{}); err == nil {
		t.Error("Loop accepted a nil Publisher")
	}
}

func TestTicksToDuration(t *testing.T) {
	cases := []struct {
		ticks int64
		want  time.Duration
	}{
		{0, 0},
		{90000, time.Second},
		{3000, 33333333 * time.Nanosecond},
		{1800, 20 * time.Millisecond},
		{90000 * 86400 * 365, 365 * 24 * time.Hour},
		{-90000, -time.Second},
	}
	for _, c := range cases {
		if got := ticksToDuration(c.ticks); got != c.want {
			t.Errorf("ticksToDuration(%d) = %v, want %v", c.ticks, got, c.want)
		}
	}
}

func TestBundledSampleLoopsSeamlessly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	clock := newFakeClock()
	// Two full passes and the start of the third.
	rec := &recorder{limit: 2*800 + 10, clock: clock}
	ctx, rec.cancel = context.WithCancel(ctx)
	err := Loop(ctx, rec, Options{Clock: clock})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop returned %v", err)
	}
	last := map[uint16]tsframes.Frame{}
	var origin int64 = -1
	boundaries := 0
	for _, p := range rec.frames {
		f := p.frame
		if origin < 0 {
			origin = f.DTS
		}
		if want := clockStart.Add(ticksToDuration(f.DTS - origin)); !p.at.Equal(want) {
			t.Fatalf("%s frame DTS %d published at +%v, want +%v", f.Codec, f.DTS, p.at.Sub(clockStart), want.Sub(clockStart))
		}
		prev, ok := last[f.PID]
		last[f.PID] = f
		if !ok {
			continue
		}
		want := int64(3000)
		if f.Kind == tsframes.KindAudio {
			want = prev.Duration
		}
		if d := f.PTS - prev.PTS; d != want {
			t.Errorf("%s PTS %d -> %d: delta %d, want %d", f.Codec, prev.PTS, f.PTS, d, want)
		}
		if (f.PTS-origin)%900000 < 3000 && f.Kind == tsframes.KindVideo && f.PTS-origin >= 900000 {
			boundaries++
			if !f.Key {
				t.Errorf("the first video frame of a pass (PTS %d) is not a keyframe", f.PTS)
			}
		}
	}
	if boundaries != 2 {
		t.Errorf("%d loop boundaries crossed, want 2", boundaries)
	}
}

func TestLoopRejectsABadSample(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for name, data := range map[string][]byte{
		"garbage": bytes.Repeat([]byte("not MPEG-TS "), 100),
		"empty":   {},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{limit: 1}
			err := Loop(ctx, rec, Options{Sample: data, Clock: newFakeClock()})
			if !errors.Is(err, ErrEmptySample) {
				t.Errorf("Loop returned %v, want ErrEmptySample", err)
			}
			if len(rec.announced) != 0 {
				t.Error("a bad sample was announced")
			}
		})
	}
}
