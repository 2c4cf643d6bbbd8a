package whip

import (
	"testing"
	"time"
)

// ntpOf is the NTP timestamp of d after the NTP epoch.
func ntpOf(d time.Duration) uint64 {
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

func TestTimelineAlignsAudioOnVideoBySenderReports(t *testing.T) {
	tl := newTimeline(90000, 48000)
	t0 := time.Unix(1000, 0)
	// Video starts at RTP 4,294,960,000 (wraps soon); audio's first packet,
	// captured 100 ms after video's first frame, arrives 150 ms after it.
	vBase, aBase := uint32(4294960000), uint32(1000)
	tl.observe(trackVideo, vBase, t0)
	tl.observe(trackAudio, aBase, t0.Add(150*time.Millisecond))
	if got := tl.pts(trackAudio, aBase); got != 150*90 {
		t.Fatalf("audio before the reports: PTS %d, want %d (arrival)", got, 150*90)
	}
	// Video's wraps: timestamps keep counting.
	tl.observe(trackVideo, vBase+9000, t0.Add(100*time.Millisecond))
	if got := tl.pts(trackVideo, vBase+9000); got != 9000 {
		t.Fatalf("video across the wrap: PTS %d, want 9000", got)
	}
	// Reports: video's first frame at NTP 5 s, audio's first packet at 5.1 s.
	ntp0 := 5 * time.Second
	if tl.senderReport(trackVideo, ntpOf(ntp0+time.Second), vBase+90000) {
		t.Fatal("aligned with one report")
	}
	if !tl.senderReport(trackAudio, ntpOf(ntp0+100*time.Millisecond+time.Second), aBase+48000) {
		t.Fatal("not aligned with both reports")
	}
	if got := tl.pts(trackAudio, aBase+4800); got < 200*90-1 || got > 200*90+1 { // NTP fractions round
		t.Fatalf("audio 100 ms in after the reports: PTS %d, want %d", got, 200*90)
	}
	if got := tl.pts(trackVideo, vBase+9000); got != 9000 {
		t.Fatalf("video moved: PTS %d, want 9000", got)
	}
	if tl.shift.Round(time.Millisecond) != -50*time.Millisecond {
		t.Fatalf("audio shift %v, want -50ms", tl.shift)
	}
}
