package transcode

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// recordingPublisher keeps what a wrapped publisher passes on.
type recordingPublisher struct {
	mu     sync.Mutex
	anns   []tsframes.Announcement
	frames []tsframes.Frame
}

func (r *recordingPublisher) Announce(_ context.Context, a tsframes.Announcement) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.anns = append(r.anns, a)
	return nil
}

func (r *recordingPublisher) Publish(_ context.Context, f tsframes.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, f)
	return nil
}

func (r *recordingPublisher) PublishCue(context.Context, tsframes.Cue) error { return nil }

func (r *recordingPublisher) SetIngestStats(bus.IngestStats)     {}
func (r *recordingPublisher) Shutdown(ctx context.Context) error { return nil }

var (
	videoTrack = tsframes.Track{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true}
	aacTrack   = tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 44100}
	opusTrack  = tsframes.Track{PID: 258, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000}
)

// newFakeStage is a stage whose "ffmpeg" is true(1): its transcodes never
// get media (nothing is published on the bus), which is what admission
// and announcements are tested with.
func newFakeStage(t *testing.T, max int) (*Stage, func(stream string, epoch uint64) (ingest.Publisher, *recordingPublisher)) {
	t.Helper()
	nc := natstest.EmbeddedConn(t)
	s, err := New(nc, prometheus.NewRegistry(), Config{Mode: ModeAudio, FFmpeg: "true", MaxTranscodes: max})
	if err != nil {
		t.Fatalf("true(1) stands for ffmpeg here: %v", err)
	}
	t.Cleanup(s.Close)
	open := func(stream string, epoch uint64) (ingest.Publisher, *recordingPublisher) {
		rec := &recordingPublisher{}
		pubs := s.Publishers(func(context.Context, string, uint64, func(time.Duration, error)) (ingest.Publisher, error) {
			return rec, nil
		})
		p, err := pubs(t.Context(), stream, epoch, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		return p, rec
	}
	return s, open
}

func TestAnnouncesDerivedTrackAndRenamesSource(t *testing.T) {
	_, open := newFakeStage(t, 0)
	p, rec := open("cam", 1)
	ctx := t.Context()
	if err := p.Announce(ctx, tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, tsframes.Frame{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, Data: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	want := derivedTrack(derivedPIDBase, aacTrack)
	if len(rec.anns) != 1 || len(rec.anns[0].Tracks) != 3 || rec.anns[0].Tracks[2] != want {
		t.Fatalf("announced %+v, want the source's tracks and %+v", rec.anns, want)
	}
	if want.DerivedFrom != 257 || want.Codec != tsframes.CodecOpus || !want.WebRTC {
		t.Fatalf("derived track %+v", want)
	}
	if rec.frames[0].PID != derivedPIDBase || rec.frames[0].Codec != tsframes.CodecAAC || rec.frames[1].PID != 256 {
		t.Fatalf("frames passed on: %+v", rec.frames)
	}

	// Opus in the source: nothing to transcode, the AAC keeps its PID.
	if err := p.Announce(ctx, tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack, opusTrack}}); err != nil {
		t.Fatal(err)
	}
	if got := rec.anns[1].Tracks; len(got) != 3 {
		t.Fatalf("announced %+v with an Opus track in the source", got)
	}
	if err := p.Publish(ctx, tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC}); err != nil {
		t.Fatal(err)
	}
	if rec.frames[2].PID != 257 {
		t.Fatalf("source frame renamed to %d without a transcode", rec.frames[2].PID)
	}
}

func TestDerivedPIDAvoidsTheSourcePIDs(t *testing.T) {
	a := tsframes.Announcement{Tracks: []tsframes.Track{{PID: derivedPIDBase}, {PID: derivedPIDBase + 1}, aacTrack}}
	if got := derivedPID(a); got != derivedPIDBase+2 {
		t.Fatalf("derived PID %d, want %d", got, derivedPIDBase+2)
	}
}

func TestMaxTranscodes(t *testing.T) {
	s, open := newFakeStage(t, 1)
	ctx := t.Context()
	a := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack}}
	p1, rec1 := open("one", 1)
	p2, rec2 := open("two", 1)
	if err := p1.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := p2.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	if len(rec1.anns[0].Tracks) != 3 || len(rec2.anns[0].Tracks) != 2 {
		t.Fatalf("announced %d and %d tracks: want the derived track for the first stream only", len(rec1.anns[0].Tracks), len(rec2.anns[0].Tracks))
	}
	if got := testutil.ToFloat64(s.metrics.rejected); got != 1 {
		t.Fatalf("rejected %v, want 1", got)
	}
	if s.Active() != 1 {
		t.Fatalf("%d transcodes, want 1", s.Active())
	}
	// The first stream ends: its slot is free for the second's next
	// announcement.
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p2.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	if len(rec2.anns[1].Tracks) != 3 || s.Active() != 1 {
		t.Fatalf("after the first ended: %d tracks, %d transcodes", len(rec2.anns[1].Tracks), s.Active())
	}
	if got := testutil.ToFloat64(s.metrics.active); got != 1 {
		t.Fatalf("whepcast_transcode_active %v, want 1", got)
	}
}

func TestNewEpochReplacesTheTranscode(t *testing.T) {
	s, open := newFakeStage(t, 0)
	ctx := t.Context()
	a := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack}}
	old, _ := open("cam", 1)
	if err := old.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	next, rec := open("cam", 2)
	if err := next.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	j := s.jobs["cam"]
	s.mu.Unlock()
	if j == nil || j.epoch != 2 || s.Active() != 1 {
		t.Fatalf("job %+v, %d transcodes: want epoch 2's only", j, s.Active())
	}
	// The old publication ending leaves the new epoch's transcode alone.
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Active() != 1 || len(rec.anns[0].Tracks) != 3 {
		t.Fatalf("%d transcodes after the old epoch ended", s.Active())
	}
	// A format change of the source (here its sample rate) restarts it.
	b := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, {PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 48000}}}
	if err := next.Announce(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	j2 := s.jobs["cam"]
	s.mu.Unlock()
	if j2 == j || j2 == nil || j2.src.SampleRate != 48000 {
		t.Fatalf("source format changed: job %+v", j2)
	}
}
