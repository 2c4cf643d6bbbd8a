package whepbench

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestScheduleFixtures checks the bursts and access units against the
// fixtures' ffprobe counts and against tsframes' frames.
func TestScheduleFixtures(t *testing.T) {
	cases := []struct {
		file              string
		frames, keyframes int
		duration          time.Duration // approximately
	}{
		{"av.ts", 180, 6, 179 * time.Second / 30},
		{"video.ts", 120, 4, 119 * time.Second / 30},
		{"wrap.ts", 120, 4, 119 * time.Second / 30},
		{"gop4.ts", 300, 3, 299 * time.Second / 30},
	}
	for _, c := range cases {
		data := tstest.Read(t, c.file)
		s, err := NewSchedule(data)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if s.Frames() != c.frames || s.Keyframes() != c.keyframes || s.Bursts() != c.frames || s.VideoPID == 0 {
			t.Errorf("%s: %d frames, %d keyframes, %d bursts, video PID %d; want %d, %d, %d", c.file,
				s.Frames(), s.Keyframes(), s.Bursts(), s.VideoPID, c.frames, c.keyframes, c.frames)
		}
		if d := s.Duration - c.duration; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("%s: duration %v, want %v", c.file, s.Duration, c.duration)
		}
		if s.Bytes() != len(data) {
			t.Errorf("%s: %d bytes scheduled of %d", c.file, s.Bytes(), len(data))
		}
		// Bursts tile the file, in time order, one frame interval apart.
		off := 0
		for i, b := range s.bursts {
			if b.off != off || b.end <= b.off || (i > 0 && b.at < s.bursts[i-1].at) {
				t.Fatalf("%s: burst %d = %+v after offset %d", c.file, i, b, off)
			}
			if i > 0 {
				if step := b.at - s.bursts[i-1].at; step < 33*time.Millisecond || step > 34*time.Millisecond {
					t.Fatalf("%s: burst %d is %v after the previous", c.file, i, step)
				}
			}
			off = b.end
		}
		if off != len(data) || s.bursts[0].at != 0 {
			t.Errorf("%s: bursts end at %d of %d, first at %v", c.file, off, len(data), s.bursts[0].at)
		}
		// Access unit i is burst i (no B-frames), completed by burst i+1.
		want := tstest.Demux(t, data).Kind(tsframes.KindVideo)
		if len(want) != s.Frames() {
			t.Fatalf("%s: tsframes finds %d video frames, the schedule %d", c.file, len(want), s.Frames())
		}
		for i, au := range s.aus {
			next := i + 1
			if i == len(s.aus)-1 {
				next = -1
			}
			if au.pts != want[i].PTS || au.key != want[i].Key || au.last != i || au.next != next {
				t.Fatalf("%s: AU %d = %+v; want pts %d key %v last %d next %d", c.file, i, au, want[i].PTS, want[i].Key, i, next)
			}
		}
	}
}

func TestScheduleWrap(t *testing.T) {
	s, err := NewSchedule(tstest.Read(t, "wrap.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if s.aus[0].pts >= pts33 || s.aus[len(s.aus)-1].pts <= pts33 {
		t.Fatalf("PTS from %d to %d; the fixture should cross 2^33", s.aus[0].pts, s.aus[len(s.aus)-1].pts)
	}
	for i := 1; i < len(s.aus); i++ {
		if d := s.aus[i].pts - s.aus[i-1].pts; d != 3000 {
			t.Fatalf("AU %d: PTS step %d, want 3000", i, d)
		}
	}
}

func TestScheduleAudioOnly(t *testing.T) {
	s, err := NewSchedule(tstest.Read(t, "audio.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if s.VideoPID != 0 || s.Frames() != 0 || s.Bursts() < 10 {
		t.Fatalf("audio.ts: video PID %d, %d frames, %d bursts", s.VideoPID, s.Frames(), s.Bursts())
	}
	if s.Duration < 3500*time.Millisecond || s.Duration > 4*time.Second {
		t.Fatalf("audio.ts: duration %v, want about 4 s", s.Duration)
	}
	if br := s.Bitrate(); br < 80e3 || br > 100e3 {
		t.Fatalf("audio.ts: bitrate %v, want 46436*8/duration", br)
	}
}

func TestScheduleErrors(t *testing.T) {
	av := tstest.Read(t, "av.ts")
	noPAT := bytes.Clone(av)
	for off := 0; off < len(noPAT); off += tsPacketSize {
		if noPAT[off+1]&0x1f == 0 && noPAT[off+2] == 0 { // PID 0 becomes a null packet
			noPAT[off+1], noPAT[off+2] = 0x1f, 0xff
		}
	}
	bad := map[string][]byte{
		"empty":       nil,
		"partial":     av[:100],
		"not aligned": append([]byte{0}, av[:4*tsPacketSize]...),
		"no PAT":      noPAT,
		"tables only": av[:2*tsPacketSize], // PAT and PMT, no PES
		"garbage":     bytes.Repeat([]byte{0x47, 0, 0, 0x10}, 47*3),
	}
	for name, data := range bad {
		if s, err := NewSchedule(data); !errors.Is(err, ErrTS) {
			t.Errorf("%s: NewSchedule = %v, %v; want ErrTS", name, s, err)
		}
	}
	// A partial packet at the end is ignored.
	s, err := NewSchedule(append(bytes.Clone(av), 0x47, 1, 2))
	if err != nil || s.Bytes() != len(av) {
		t.Fatalf("trailing bytes: %v, %v", s, err)
	}
}
