package relay

import "testing"

func TestTimelineContinuousAcrossWraps(t *testing.T) {
	var tl timeline
	// Video at 30 fps and audio at 20 ms crossing 2^32 and 2^33.
	for _, start := range []int64{1<<32 - 30000, 1<<33 - 30000, -30000} {
		var prevV, prevA uint32
		for i := int64(0); i < 40; i++ {
			v, ok := tl.video(start+i*3000, i == 0)
			if !ok {
				t.Fatalf("video %d dropped", i)
			}
			a, ok := tl.audio(start+i*1800, 1800)
			if !ok {
				t.Fatalf("audio %d dropped", i)
			}
			if v != uint32(start+i*3000) {
				t.Fatalf("video ts %d, want uint32(pts) %d", v, uint32(start+i*3000))
			}
			if i > 0 {
				if d := v - prevV; d != 3000 {
					t.Fatalf("start %d frame %d: video delta %d", start, i, d)
				}
				if d := a - prevA; d != 960 {
					t.Fatalf("start %d packet %d: audio delta %d", start, i, d)
				}
			}
			prevV, prevA = v, a
		}
		tl = timeline{}
	}
}

func TestTimelineAudioOriginExact(t *testing.T) {
	var tl timeline
	// 10 ms and 40 ms packets from an origin that is not a multiple of 15.
	pts := int64(1234567)
	var prev uint32
	durs := []int64{900, 3600, 1800, 900, 900, 3600}
	for i, d := range durs {
		ts, ok := tl.audio(pts, d)
		if !ok {
			t.Fatal("dropped")
		}
		if i > 0 {
			if got, want := ts-prev, uint32(durs[i-1]*48000/90000); got != want {
				t.Fatalf("packet %d: delta %d, want %d", i, got, want)
			}
		}
		prev = ts
		pts += d
	}
}

func TestTimelineEpochRebase(t *testing.T) {
	var tl timeline
	var lastV, lastA uint32
	for i := int64(0); i < 10; i++ {
		lastV, _ = tl.video(900000+i*3000, i == 0)
		lastA, _ = tl.audio(900000+i*1800, 1800)
	}
	tl.newEpoch(true)
	// The new epoch restarts near 0: audio and a delta before the keyframe
	// are dropped.
	if _, ok := tl.audio(126000, 1800); ok {
		t.Fatal("audio before the new epoch's keyframe not dropped")
	}
	if _, ok := tl.video(123585, false); ok {
		t.Fatal("delta before the new epoch's keyframe not dropped")
	}
	v, ok := tl.video(126585, true)
	if !ok || v != lastV+3000 {
		t.Fatalf("new epoch keyframe ts %d (ok %v), want %d", v, ok, lastV+3000)
	}
	v2, _ := tl.video(129585, false)
	if v2 != v+3000 {
		t.Fatalf("next frame ts %d, want %d", v2, v+3000)
	}
	// Audio: the last audio ended at lastA+960. A packet mapping before it
	// is dropped, the next one continues at or after it.
	audioEnd := lastA + 960
	var got []uint32
	for pts := int64(120000); pts < 140000; pts += 1800 {
		if a, ok := tl.audio(pts, 1800); ok {
			got = append(got, a)
		}
	}
	if len(got) == 0 {
		t.Fatal("no audio after rebase")
	}
	if int32(got[0]-audioEnd) < 0 {
		t.Fatalf("first audio after rebase at %d overlaps the previous end %d", got[0], audioEnd)
	}
	for i := 1; i < len(got); i++ {
		if got[i]-got[i-1] != 960 {
			t.Fatalf("audio delta %d after rebase", got[i]-got[i-1])
		}
	}
}

func TestTimelineEpochRebaseAudioOnly(t *testing.T) {
	var tl timeline
	var last uint32
	for i := int64(0); i < 5; i++ {
		last, _ = tl.audio(50000+i*1800, 1800)
	}
	tl.newEpoch(false)
	a, ok := tl.audio(7, 1800)
	if !ok || a != last+960 {
		t.Fatalf("first audio of the new epoch %d (ok %v), want %d", a, ok, last+960)
	}
}

func TestTimelineFirstEpochNoRebase(t *testing.T) {
	var tl timeline
	tl.newEpoch(true) // nothing sent yet: nothing to continue
	if v, ok := tl.video(5000, false); !ok || v != 5000 {
		t.Fatalf("ts %d ok %v", v, ok)
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 15, -1}} {
		if got := floorDiv(c.a, c.b); got != c.want {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
