package transcode

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// aacFrame is a source audio frame of aacTrack.
var aacFrame = tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Data: []byte{1}}

// TestFiftyStreamsBoundedAndAdmittedWhenASlotFrees: 50 streams needing a
// transcode at once with --max-transcodes 3: three are transcoded, the 47
// others keep their source announcement, are counted as rejected and wait;
// when transcoded streams end, the oldest waiting streams get the freed
// slots at their next frame (no new publication needed), in order, and
// announce their derived track.
func TestFiftyStreamsBoundedAndAdmittedWhenASlotFrees(t *testing.T) {
	const streams, slots = 50, 3
	s, open := newFakeStage(t, slots)
	ctx := t.Context()
	a := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack}}
	pubs := make([]ingest.Publisher, streams)
	recs := make([]*recordingPublisher, streams)
	for i := range streams {
		pubs[i], recs[i] = open(fmt.Sprintf("s%02d", i), 1)
		if err := pubs[i].Announce(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	derived := func(i int) bool {
		recs[i].mu.Lock()
		defer recs[i].mu.Unlock()
		last := recs[i].anns[len(recs[i].anns)-1]
		return len(last.Tracks) == 3 && last.Tracks[2].DerivedFrom == aacTrack.PID
	}
	waiting := func(i int) bool {
		recs[i].mu.Lock()
		defer recs[i].mu.Unlock()
		last := recs[i].anns[len(recs[i].anns)-1]
		return last.Tracks[1].TranscodeWaiting
	}
	for i := range streams {
		if got, want := derived(i), i < slots; got != want {
			t.Fatalf("stream %d announces the derived track: %v, want %v", i, got, want)
		}
		// The refused streams' source audio says why it does not play.
		if got, want := waiting(i), i >= slots; got != want {
			t.Fatalf("stream %d's AAC track marked transcode_waiting: %v, want %v", i, got, want)
		}
	}
	if got := testutil.ToFloat64(s.metrics.rejected); got != streams-slots {
		t.Fatalf("whepcast_transcode_rejected_total %v, want %d", got, streams-slots)
	}
	if got := testutil.ToFloat64(s.metrics.waiting); got != streams-slots {
		t.Fatalf("whepcast_transcode_waiting %v, want %d", got, streams-slots)
	}
	if s.Active() != slots {
		t.Fatalf("%d transcodes, want %d", s.Active(), slots)
	}

	// Two transcoded streams end: streams 3 and 4, the oldest waiting,
	// take their slots at their next frame; stream 5 does not.
	for i := range 2 {
		if err := pubs[i].Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < 6; i++ {
		if err := pubs[i].Publish(ctx, aacFrame); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < 6; i++ {
		if got, want := derived(i), i < 5; got != want {
			t.Fatalf("after two slots freed, stream %d announces the derived track: %v, want %v", i, got, want)
		}
		if got, want := waiting(i), i >= 5; got != want {
			t.Fatalf("after two slots freed, stream %d's AAC track marked transcode_waiting: %v, want %v", i, got, want)
		}
	}
	// The frame that found the slot is the first under the derived PID.
	recs[3].mu.Lock()
	pid := recs[3].frames[len(recs[3].frames)-1].PID
	recs[3].mu.Unlock()
	if pid != derivedPIDBase {
		t.Fatalf("stream 3's source audio published under PID %d after it got a slot, want %d", pid, derivedPIDBase)
	}
	if s.Active() != slots {
		t.Fatalf("%d transcodes, want %d", s.Active(), slots)
	}
	if got := testutil.ToFloat64(s.metrics.waiting); got != streams-slots-2 {
		t.Fatalf("whepcast_transcode_waiting %v, want %d", got, streams-slots-2)
	}

	// A waiting stream that ends leaves the list; one told a slot freed
	// that ends before its next frame passes the slot on.
	if err := pubs[5].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pubs[2].Shutdown(ctx); err != nil { // frees a slot: stream 6 is told
		t.Fatal(err)
	}
	if err := pubs[6].Shutdown(ctx); err != nil { // passes it to stream 7
		t.Fatal(err)
	}
	if err := pubs[7].Publish(ctx, aacFrame); err != nil {
		t.Fatal(err)
	}
	if !derived(7) {
		t.Fatal("stream 7 did not get the slot stream 6 passed on")
	}
	if got := testutil.ToFloat64(s.metrics.waiting); got != streams-slots-2-3 {
		t.Fatalf("whepcast_transcode_waiting %v, want %d", got, streams-slots-2-3)
	}
	if s.Active() != slots {
		t.Fatalf("%d transcodes, want %d", s.Active(), slots)
	}
}

// TestWaitingStreamKeepsItsPlace: a transcoded stream whose source format
// changes frees its slot and takes it back at once; the oldest waiting
// stream, told a slot freed, finds none at its next frame and stays the
// oldest, so that it gets the next slot that frees.
func TestWaitingStreamKeepsItsPlace(t *testing.T) {
	s, open := newFakeStage(t, 1)
	ctx := t.Context()
	a := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, aacTrack}}
	p1, _ := open("one", 1)
	p2, rec2 := open("two", 1)
	p3, rec3 := open("three", 1)
	for _, p := range []ingest.Publisher{p1, p2, p3} {
		if err := p.Announce(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// The first stream's source changes sample rate: its transcode
	// restarts in the slot it had.
	b := tsframes.Announcement{Tracks: []tsframes.Track{videoTrack, {PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 48000}}}
	if err := p1.Announce(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := p2.Publish(ctx, aacFrame); err != nil { // told, but no slot
		t.Fatal(err)
	}
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []ingest.Publisher{p3, p2} {
		if err := p.Publish(ctx, aacFrame); err != nil {
			t.Fatal(err)
		}
	}
	last := func(r *recordingPublisher) int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.anns[len(r.anns)-1].Tracks)
	}
	if last(rec2) != 3 || last(rec3) != 2 {
		t.Fatalf("after the slot freed: stream two announces %d tracks, three %d; want two (the oldest waiting) transcoded", last(rec2), last(rec3))
	}
	if got := testutil.ToFloat64(s.metrics.waiting); got != 1 {
		t.Fatalf("whepcast_transcode_waiting %v, want 1", got)
	}
}
