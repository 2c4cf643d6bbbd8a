package ingest

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

var avTracks = tsframes.Announcement{Tracks: []tsframes.Track{
	{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264},
	{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC},
}}

// arrival is a frame and when it reaches the interleaver (ms after t0).
type arrival struct {
	f  tsframes.Frame
	ms int
}

// muxedLikeFFmpeg returns what an ffmpeg MPEG-TS muxer sends in real time
// for secs seconds of 30 fps video and AAC: each video frame at its PTS,
// the audio in PES of 350 ms that leave when full, 350 ms after their PTS.
func muxedLikeFFmpeg(secs int) []arrival {
	var in []arrival
	const pes = 350
	nextPES := 0
	for ms := 0; ms < secs*1000; ms++ {
		if ms%pes == 0 && ms >= pes { // the PES started at ms-350 is full
			in = append(in, arrival{tsframes.Frame{Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, PTS: int64(nextPES) * 90}, ms})
			nextPES += pes
		}
		if ms*30%1000 < 30 { // one video frame each 33.3 ms
			pts := int64(ms) * 90
			in = append(in, arrival{tsframes.Frame{Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: pts, Key: ms%1000 == 0}, ms})
		}
	}
	return in
}

// run feeds in (after announcing a) and returns every frame published, with
// the time (ms) it left.
func run(il *interleaver, a tsframes.Announcement, in []arrival) []arrival {
	t0 := time.Unix(1000, 0)
	var out []arrival
	for _, f := range il.announce(a, t0, nil) {
		out = append(out, arrival{f, 0})
	}
	for _, x := range in {
		now := t0.Add(time.Duration(x.ms) * time.Millisecond)
		for _, f := range il.frame(x.f, now, nil) {
			out = append(out, arrival{f, x.ms})
		}
	}
	for _, f := range il.flush(nil) {
		out = append(out, arrival{f, -1})
	}
	return out
}

func kinds(frames []arrival, k tsframes.Kind) []int64 {
	var pts []int64
	for _, x := range frames {
		if x.f.Kind == k {
			pts = append(pts, x.f.PTS)
		}
	}
	return pts
}

// checkAllInOrder fails unless out has every frame of in, each kind in its
// order.
func checkAllInOrder(t *testing.T, in, out []arrival) {
	t.Helper()
	for _, k := range []tsframes.Kind{tsframes.KindVideo, tsframes.KindAudio} {
		if w, g := kinds(in, k), kinds(out, k); !slices.Equal(w, g) {
			t.Fatalf("kind %v: published PTS %v, want %v", k, g, w)
		}
	}
}

// TestInterleaverHoldsVideoUntilItsAudio: with audio in 350 ms PES that
// arrive 350 ms after their PTS, each video frame leaves with the audio PES
// that covers it, not before; nothing is lost or reordered.
func TestInterleaverHoldsVideoUntilItsAudio(t *testing.T) {
	in := muxedLikeFFmpeg(5)
	out := run(&interleaver{}, avTracks, in)
	checkAllInOrder(t, in, out)

	audioEnd := int64(-1) // PTS up to which audio was published
	lastAudio := int64(-1)
	held := 0
	for _, x := range out {
		switch x.f.Kind {
		case tsframes.KindAudio:
			if lastAudio >= 0 {
				audioEnd = x.f.PTS + (x.f.PTS - lastAudio)
			} else {
				audioEnd = x.f.PTS
			}
			lastAudio = x.f.PTS
		case tsframes.KindVideo:
			if x.ms < 0 {
				continue // flushed at the end
			}
			if x.f.PTS >= audioEnd && x.ms-int(x.f.PTS/90) < int(maxHold/time.Millisecond) {
				t.Fatalf("video PTS %d (%d ms) left at %d ms before the audio covering it (audio up to %d) and before the bound",
					x.f.PTS, x.f.PTS/90, x.ms, audioEnd)
			}
			if d := x.ms - int(x.f.PTS/90); d > 0 {
				held++
			}
			if d := x.ms - int(x.f.PTS/90); d > 1000 {
				t.Fatalf("video PTS %d held %d ms, bound 1000", x.f.PTS, d)
			}
		}
	}
	if held < 100 {
		t.Fatalf("%d video frames held, want most of the 150", held)
	}
}

// TestInterleaverWithoutAudioPassesVideo: a stream announced without audio,
// and one whose audio stopped for a second, publish each video frame as it
// arrives.
func TestInterleaverWithoutAudioPassesVideo(t *testing.T) {
	var in []arrival
	for ms := 0; ms < 3000; ms += 40 {
		in = append(in, arrival{tsframes.Frame{Kind: tsframes.KindVideo, PTS: int64(ms) * 90}, ms})
	}
	videoOnly := tsframes.Announcement{Tracks: avTracks.Tracks[:1]}
	for _, x := range run(&interleaver{}, videoOnly, in) {
		if x.ms != int(x.f.PTS/90) {
			t.Fatalf("video-only: PTS %d left at %d ms", x.f.PTS, x.ms)
		}
	}

	// Audio announced but absent: held at most maxHold at the start, then
	// not at all.
	out := run(&interleaver{}, avTracks, in)
	checkAllInOrder(t, in, out)
	for _, x := range out {
		d := x.ms - int(x.f.PTS/90)
		if d < 0 || d > 1000 || (x.f.PTS/90 > 1000 && d != 0) {
			t.Fatalf("audio absent: PTS %d (%d ms) left at %d ms", x.f.PTS, x.f.PTS/90, x.ms)
		}
	}
}

// TestInterleaverAnnouncementFlushes: a new announcement publishes the
// frames held under the previous one first.
func TestInterleaverAnnouncementFlushes(t *testing.T) {
	il := &interleaver{}
	t0 := time.Unix(1000, 0)
	il.announce(avTracks, t0, nil)
	il.frame(tsframes.Frame{Kind: tsframes.KindAudio, PTS: 0, Duration: 1800}, t0, nil)
	if got := il.frame(tsframes.Frame{Kind: tsframes.KindVideo, PTS: 0}, t0, nil); len(got) != 1 {
		t.Fatalf("covered video: %d frames out, want 1", len(got))
	}
	for i := range 3 {
		if got := il.frame(tsframes.Frame{Kind: tsframes.KindVideo, PTS: int64(3000 * (i + 1))}, t0, nil); len(got) != 0 {
			t.Fatalf("uncovered video %d left at once", i)
		}
	}
	got := il.announce(tsframes.Announcement{Tracks: avTracks.Tracks[:1]}, t0, nil)
	if len(got) != 3 || got[0].PTS != 3000 || got[2].PTS != 9000 {
		t.Fatalf("announcement flushed %+v, want the 3 held frames in order", got)
	}
}

// TestInterleaverBoundsHeldFrames: however far the video runs ahead of the
// audio, at most maxHeldFrames wait and none more than maxHoldPTS ahead.
func TestInterleaverBoundsHeldFrames(t *testing.T) {
	il := &interleaver{}
	t0 := time.Unix(1000, 0)
	il.announce(avTracks, t0, nil)
	il.frame(tsframes.Frame{Kind: tsframes.KindAudio, PTS: 0, Duration: 1800}, t0, nil)
	out := 0
	for i := range 1000 {
		// Fed faster than real time: 1000 frames 1 ms apart, 10 ms of
		// PTS each.
		now := t0.Add(time.Duration(i) * time.Millisecond / 2)
		got := il.frame(tsframes.Frame{Kind: tsframes.KindVideo, PTS: int64(i) * 900}, now, nil)
		out += len(got)
		if len(il.held) > maxHeldFrames {
			t.Fatalf("%d frames held", len(il.held))
		}
		for _, h := range il.held {
			if h.f.PTS-il.audioEnd > maxHoldPTS {
				t.Fatalf("frame PTS %d held %d ahead of the audio", h.f.PTS, h.f.PTS-il.audioEnd)
			}
		}
	}
	if out+len(il.held) != 1000 {
		t.Fatalf("%d out + %d held, want 1000", out, len(il.held))
	}
}

// TestInterleaverPublishesWhenTheSourcePauses: a source sends aac.ts up to
// its second audio PES, then pauses: the video past the first PES's audio
// (PTS 126000 to 154800), which it held waiting for audio, is published
// maxHold after it arrived, without waiting for the source's next bytes;
// the rest follows when it resumes.
func TestInterleaverPublishesWhenTheSourcePauses(t *testing.T) {
	data := tstest.Read(t, "aac.ts")
	const (
		prefix    = 30832  // up to the second audio PES
		firstHeld = 157920 // the first video PTS past the first PES's audio
	)
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(t.Context(), "cam1", Source{Kind: "test", Body: r, Interrupt: func() { r.CloseWithError(io.ErrClosedPipe) }})
		done <- err
	}()
	sent := time.Now()
	if _, err := w.Write(data[:prefix]); err != nil {
		t.Fatal(err)
	}
	p := f.nextPub(t)
	deadline := time.After(testDeadline)
	for published := false; !published; {
		_, frames, _, _ := p.snapshot()
		for _, fr := range frames {
			if fr.Kind != tsframes.KindVideo || fr.PTS < firstHeld {
				continue
			}
			if fr.PTS != firstHeld {
				t.Fatalf("video at PTS %d published before the one at %d", fr.PTS, firstHeld)
			}
			if held := time.Since(sent); held < maxHold-50*time.Millisecond {
				t.Fatalf("the video at PTS %d was published %v after it arrived, want it held about %v for its audio", fr.PTS, held, maxHold)
			}
			published = true
			break
		}
		if published {
			break
		}
		select {
		case <-p.got:
		case <-deadline:
			t.Fatal("the held video was not published while the source paused")
		}
	}
	if _, err := w.Write(data[prefix:]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, frames, _, _ := p.snapshot()
	tstest.SameFramesPerTrack(t, frames, tstest.DemuxWith(t, data, tsframes.Options{SourceAudio: true}).Frames)
}
