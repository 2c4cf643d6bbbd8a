package bus

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func testCue(t testing.TB, pts int64) tsframes.Cue {
	t.Helper()
	sec := tstest.SpliceInsert(7, pts&(1<<33-1), 0, 15*90000)
	si, err := tsframes.ParseSpliceInfo(sec)
	if err != nil {
		t.Fatal(err)
	}
	return tsframes.Cue{PID: 0x1F0, PTS: pts, SpliceInfo: si, Section: sec}
}

// TestCueRoundTrip: a cue's message carries the section and the PTS
// (beyond 33 bits: the unwrapped timeline) and decodes to the same cue, for
// readers that ask for cues only.
func TestCueRoundTrip(t *testing.T) {
	subj := mustSubjects("cam")
	c := testCue(t, 1<<33+90000)
	m := newEncoder(subj, 5).cue(c)
	if m.Subject != "media.cam.cue" || m.Header.Get(HeaderPTS) != "8590024592" || m.Header.Get(HeaderEpoch) != "5" ||
		!bytes.Equal(m.Data, c.Section) {
		t.Fatalf("cue message %s %v %x", m.Subject, m.Header, m.Data)
	}
	d := decoder{subj: subj, cues: true}
	got, ok, err := d.push(9, m.Subject, m.Header, m.Data)
	if err != nil || !ok || got.Cue == nil || got.IsFrame() || got.Epoch != 5 || got.Seq != 9 {
		t.Fatalf("decoded %+v ok %v err %v", got, ok, err)
	}
	want := c
	want.PID = 0 // not carried
	if got.Cue.PTS != want.PTS || got.Cue.SpliceInfo != want.SpliceInfo || !bytes.Equal(got.Cue.Section, want.Section) {
		t.Fatalf("decoded cue %+v, want %+v", *got.Cue, want)
	}
	if _, ok, err := (&decoder{subj: subj}).push(9, m.Subject, m.Header, m.Data); ok || err != nil {
		t.Fatalf("a reader without cues got one: ok %v err %v", ok, err)
	}
	m.Data = append([]byte{}, m.Data...)
	m.Data[len(m.Data)-1] ^= 1
	if _, ok, err := d.push(10, m.Subject, m.Header, m.Data); ok || err == nil {
		t.Fatalf("a cue with a bad CRC decoded: ok %v err %v", ok, err)
	}
}

// TestPublishCue: cues go on the bus between the frames, in order, to the
// subscriptions and range readers that ask for them; the others get the
// frames alone.
func TestPublishCue(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	p := newPublisher(t, ctx, nc, "cues", PublisherConfig{})
	if err := p.PublishCue(ctx, testCue(t, 0)); err != nil {
		t.Fatalf("cue before the announcement: %v", err)
	}
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	withCues, without := newCollector(), newCollector()
	subscribe(t, ctx, nc, "cues", SubscribeOptions{Cues: true}, withCues)
	subscribe(t, ctx, nc, "cues", SubscribeOptions{}, without)
	if err := p.Publish(ctx, videoFrame(90000, true, []byte{0, 0, 0, 1, 0x65, 1})); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishCue(ctx, testCue(t, 93000)); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, videoFrame(93000, false, []byte{0, 0, 0, 1, 0x41, 2})); err != nil {
		t.Fatal(err)
	}
	msgs := withCues.waitFor(t, ctx, "two frames and a cue", func(m []Message) bool { return len(m) >= 4 })
	kinds := ""
	for _, m := range msgs {
		switch {
		case m.Tracks != nil:
			kinds += "A"
		case m.Cue != nil:
			kinds += "C"
			if m.Cue.PTS != 93000 || m.Cue.EventID != 7 || m.Epoch != p.Epoch() {
				t.Errorf("cue %+v epoch %d", *m.Cue, m.Epoch)
			}
		default:
			kinds += "F"
		}
	}
	if kinds != "AFCF" {
		t.Fatalf("messages %s, want AFCF (announcement, frame, cue, frame)", kinds)
	}
	got := without.waitFor(t, ctx, "two frames", func(m []Message) bool { return countFrames(m) >= 2 })
	for _, m := range got {
		if m.Cue != nil {
			t.Fatal("a subscription without Cues got a cue")
		}
	}
	if st := p.Stats(); st.Dropped != 0 || st.Errors != 0 {
		t.Fatalf("publisher stats %+v", st)
	}

	// A range reader asked for cues gets it in place.
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	r, err := OpenRange(ctx, nc, "cues", start, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.DeliverCues()
	kinds = ""
	for range 3 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Cue != nil {
			kinds += "C"
		} else if m.IsFrame() {
			kinds += "F"
		}
	}
	if kinds != "FCF" {
		t.Fatalf("range read %s, want FCF", kinds)
	}
}

// TestEarlierCues: a range reader that asks for them also gets the cues
// stored before its first keyframe (published ahead of the frames they
// apply to), first, with the keyframe's store time; then the range's own.
func TestEarlierCues(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	p := newPublisher(t, ctx, nc, "early", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return p.PublishCue(ctx, testCue(t, 90000)) },
		func() error { return p.Publish(ctx, videoFrame(90000, true, []byte{0, 0, 0, 1, 0x65, 1})) },
		func() error { return p.Publish(ctx, videoFrame(93000, false, []byte{0, 0, 0, 1, 0x41, 2})) },
		func() error { return p.PublishCue(ctx, testCue(t, 99000)) },
		func() error { return p.Publish(ctx, videoFrame(96000, false, []byte{0, 0, 0, 1, 0x41, 3})) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	r, err := OpenRange(ctx, nc, "early", time.Now().Add(-time.Second), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.DeliverCues()
	if err := r.EarlierCues(ctx); err != nil {
		t.Fatal(err)
	}
	var kinds string
	for range 5 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Cue != nil:
			kinds += "C"
			if kinds == "C" && (m.Cue.PTS != 90000 || !m.Published.Equal(r.Start())) {
				t.Errorf("earlier cue PTS %d published %s, want 90000 at the keyframe's %s", m.Cue.PTS, m.Published, r.Start())
			}
		case m.IsFrame():
			kinds += "F"
		}
	}
	if kinds != "CFFCF" {
		t.Fatalf("range read %s, want CFFCF (the earlier cue, then the range)", kinds)
	}
}
