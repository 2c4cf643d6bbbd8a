package tsframes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

type frameKey struct {
	pid uint16
	pts int64
}

// cleanFrames indexes the frames of a clean run.
func cleanFrames(res result) map[frameKey][]byte {
	m := map[frameKey][]byte{}
	for _, f := range res.frames {
		m[frameKey{f.PID, f.PTS}] = f.Data
	}
	return m
}

// checkNoCorruptFrame: every frame of a damaged run is byte-identical to the
// frame with the same PID and PTS of the clean run.
func checkNoCorruptFrame(t *testing.T, clean map[frameKey][]byte, res result) {
	t.Helper()
	for i, f := range res.frames {
		want, ok := clean[frameKey{f.PID, f.PTS}]
		if !ok {
			t.Fatalf("frame %d (PID %d, PTS %d) is not in the clean run", i, f.PID, f.PTS)
		}
		if !bytes.Equal(f.Data, want) {
			t.Fatalf("frame %d (PID %d, PTS %d): corrupted data emitted (%d bytes, clean %d)", i, f.PID, f.PTS, len(f.Data), len(want))
		}
	}
}

// garbage returns n random bytes without 0x47.
func garbage(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		for b[i] = byte(rng.Intn(256)); b[i] == syncByte; b[i] = byte(rng.Intn(256)) {
		}
	}
	return b
}

// insertAt returns data with chunks inserted at the given offsets (sorted).
func insertAt(data []byte, offsets []int, chunks [][]byte) []byte {
	var out []byte
	prev := 0
	for i, off := range offsets {
		out = append(out, data[prev:off]...)
		out = append(out, chunks[i]...)
		prev = off
	}
	return append(out, data[prev:]...)
}

func TestGarbage(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	cleanIdx := cleanFrames(clean)
	n := len(data) / packetSize

	for _, tc := range []struct {
		name    string
		aligned bool // at packet boundaries, or inside packets
	}{{"between packets", true}, {"inside packets", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(7))
			var offsets []int
			var chunks [][]byte
			for i := 1; i <= 6; i++ {
				off := (n * i / 8) * packetSize
				if !tc.aligned {
					off += 1 + rng.Intn(packetSize-2)
				}
				offsets = append(offsets, off)
				chunks = append(chunks, garbage(rng, 1+rng.Intn(400)))
			}
			res := demuxBytes(t, insertAt(data, offsets, chunks))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.stats.Resyncs != 6 || res.errorsIs(ErrSync) != 6 {
				t.Errorf("Resyncs %d, ErrSync %d, want 6", res.stats.Resyncs, res.errorsIs(ErrSync))
			}
			// The packet in front of each chunk is dropped as suspect.
			if got := res.errorsIs(ErrCorruptPacket); got != 6 {
				t.Errorf("ErrCorruptPacket %d, want 6", got)
			}
			if res.stats.DecodeErrors == 0 || res.stats.DecodeErrors != uint64(len(res.errors)-6) {
				t.Errorf("DecodeErrors %d for %d reported problems (6 resyncs)", res.stats.DecodeErrors, len(res.errors))
			}
			checkNoCorruptFrame(t, cleanIdx, res)
			// After the last chunk (at 6/8 of the file) the stream is whole
			// again: the last GOP is complete.
			v, cv := res.video(), clean.video()
			if len(v) < len(cv)-12 {
				t.Errorf("%d video frames of %d", len(v), len(cv))
			}
			for i := 1; i <= 30; i++ {
				if v[len(v)-i].PTS != cv[len(cv)-i].PTS {
					t.Fatalf("last GOP incomplete: frame -%d at %d, clean %d", i, v[len(v)-i].PTS, cv[len(cv)-i].PTS)
				}
			}
		})
	}
}

// TestGarbageLive: as TestGarbage, but read one byte at a time, so every
// packet is passed on as soon as its 188 bytes are in and the packet in
// front of each chunk is retracted (its PES in progress dropped) when the
// garbage after it is read. No damaged frame comes out.
func TestGarbageLive(t *testing.T) {
	data := readFixture(t, "av")
	cleanIdx := cleanFrames(demuxBytes(t, data))
	n := len(data) / packetSize
	for _, tc := range []struct {
		name    string
		aligned bool
	}{{"between packets", true}, {"inside packets", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(7))
			var offsets []int
			var chunks [][]byte
			for i := 1; i <= 6; i++ {
				off := (n * i / 8) * packetSize
				if !tc.aligned {
					off += 1 + rng.Intn(packetSize-2)
				}
				offsets = append(offsets, off)
				chunks = append(chunks, garbage(rng, 1+rng.Intn(400)))
			}
			res := demux(t, iotest.OneByteReader(bytes.NewReader(insertAt(data, offsets, chunks))))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.stats.Resyncs != 6 || res.errorsIs(ErrSync) != 6 || res.errorsIs(ErrCorruptPacket) != 6 {
				t.Errorf("Resyncs %d, ErrSync %d, ErrCorruptPacket %d, want 6", res.stats.Resyncs, res.errorsIs(ErrSync), res.errorsIs(ErrCorruptPacket))
			}
			checkNoCorruptFrame(t, cleanIdx, res)
		})
	}
}

func TestFlippedBytes(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	n := len(data) / packetSize

	t.Run("headers", func(t *testing.T) {
		b := append([]byte(nil), data...)
		// Set transport_error_indicator on 3 video packets, break the
		// continuity counter of 3 others, and the sync byte of 2.
		var tei, cc, sync int
		for i := 50; i < n-50; i += 97 {
			pkt := b[i*packetSize : (i+1)*packetSize]
			if pid(pkt) != 256 {
				continue
			}
			switch {
			case tei < 3:
				pkt[1] |= 0x80
				tei++
			case cc < 3:
				pkt[3] = pkt[3]&0xF0 | (pkt[3]+5)&0x0F
				cc++
			case sync < 2:
				pkt[0] = 0x00
				sync++
			}
		}
		res := demuxBytes(t, b)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if got := res.errorsIs(ErrCorruptPacket); got < 3+2 {
			t.Errorf("ErrCorruptPacket %d, want >= 5 (3 TEI, 2 suspect)", got)
		}
		if got := res.errorsIs(ErrContinuity); got < 3 {
			t.Errorf("ErrContinuity %d, want >= 3", got)
		}
		if res.stats.Resyncs != 2 {
			t.Errorf("Resyncs %d, want 2", res.stats.Resyncs)
		}
		checkNoCorruptFrame(t, cleanFrames(clean), res)
		if len(res.video()) < len(clean.video())-40 {
			t.Errorf("%d video frames of %d", len(res.video()), len(clean.video()))
		}
	})

	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewSource(11))
		b := append([]byte(nil), data...)
		for range 300 {
			b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
		}
		res := demuxBytes(t, b)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.stats.DecodeErrors == 0 {
			t.Error("no decode error counted")
		}
		if len(res.video()) == 0 || len(res.audio()) == 0 {
			t.Errorf("%d video, %d audio frames", len(res.video()), len(res.audio()))
		}
		checkVideoFrames(t, res.frames)
	})
}

// TestLostPacket: a packet missing from a video PES loses that access unit
// only.
func TestLostPacket(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	pkts := packetsOf(data)
	drop := -1
	for i := len(pkts) / 2; i+1 < len(pkts); i++ {
		if pid(pkts[i]) == 256 && pkts[i][1]&0x40 == 0 {
			drop = i
			break
		}
	}
	b := append(append([]byte(nil), data[:drop*packetSize]...), data[(drop+1)*packetSize:]...)
	res := demuxBytes(t, b)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrContinuity) != 1 || len(res.errors) != 1 {
		t.Errorf("errors %v, want one ErrContinuity", res.errors)
	}
	if len(res.video()) != len(clean.video())-1 || len(res.audio()) != len(clean.audio()) {
		t.Errorf("%d video, %d audio frames; want %d and %d", len(res.video()), len(res.audio()), len(clean.video())-1, len(clean.audio()))
	}
	checkNoCorruptFrame(t, cleanFrames(clean), res)
}

// TestTruncated: input cut inside a packet: the partial packet and the PES it
// cut are dropped; what comes out is a prefix of the clean run.
func TestTruncated(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	for _, cut := range []int{len(data)/2 + 77, len(data) - 101, 188*40 + 3} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			res := demuxBytes(t, data[:cut])
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.errorsIs(ErrCorruptPacket) != 1 || len(res.errors) != 1 {
				t.Errorf("errors %v, want one ErrCorruptPacket (partial packet)", res.errors)
			}
			for _, kind := range []Kind{KindVideo, KindAudio} {
				got, want := res.kind(kind), clean.kind(kind)
				if len(got) == 0 && cut > len(data)/2 {
					t.Fatalf("no %s frames", kind)
				}
				for i := range got {
					if got[i].PTS != want[i].PTS || !bytes.Equal(got[i].Data, want[i].Data) {
						t.Fatalf("%s frame %d differs from the clean run", kind, i)
					}
				}
			}
		})
	}
}

// TestStartMidStream: a stream cut at an arbitrary offset resynchronises and
// yields, from the next PAT/PMT and keyframe on, exactly the clean frames.
func TestStartMidStream(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	for _, off := range []int{1, 187, 100001, len(data) / 3, 188 * 700} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			res := demuxBytes(t, data[off:])
			if res.err != nil {
				t.Fatal(res.err)
			}
			wantResyncs := uint64(1)
			if off%packetSize == 0 {
				wantResyncs = 0
			}
			if res.stats.Resyncs != wantResyncs {
				t.Errorf("Resyncs %d, want %d", res.stats.Resyncs, wantResyncs)
			}
			v := res.video()
			if len(v) == 0 || !v[0].Key {
				t.Fatalf("%d video frames, first not a keyframe", len(v))
			}
			if res.events[0].ann == nil {
				t.Error("first event is not an announcement")
			}
			// Video: exactly the clean frames from that keyframe on.
			cv := clean.video()
			k := 0
			for k < len(cv) && cv[k].PTS != v[0].PTS {
				k++
			}
			if len(cv)-k != len(v) {
				t.Fatalf("%d video frames from PTS %d, clean has %d", len(v), v[0].PTS, len(cv)-k)
			}
			for i := range v {
				if v[i].PTS != cv[k+i].PTS || !bytes.Equal(v[i].Data, cv[k+i].Data) {
					t.Fatalf("video frame %d differs", i)
				}
			}
			// Audio: a suffix of the clean packets, none corrupt.
			a, ca := res.audio(), clean.audio()
			if len(a) == 0 {
				t.Fatal("no audio")
			}
			j := len(ca) - len(a)
			for i := range a {
				if a[i].PTS != ca[j+i].PTS || !bytes.Equal(a[i].Data, ca[j+i].Data) {
					t.Fatalf("audio packet %d differs from the clean run's %d", i, j+i)
				}
			}
			// Decode errors only for video before the first keyframe.
			if res.errorsIs(ErrNoKeyframe)+res.errorsIs(ErrSync) != len(res.errors) {
				t.Errorf("unexpected errors: %v", res.errors)
			}
		})
	}
}

func TestRandomInput(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	noise := make([]byte, 256<<10)
	rng.Read(noise)
	// Also noise with a sync byte every 188 bytes (fake packets).
	fake := append([]byte(nil), noise...)
	for i := 0; i < len(fake); i += packetSize {
		fake[i] = syncByte
	}
	for name, b := range map[string][]byte{"noise": noise, "fake packets": fake, "empty": nil} {
		t.Run(name, func(t *testing.T) {
			res := demuxBytes(t, b)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.frames) != 0 {
				t.Errorf("%d frames from noise", len(res.frames))
			}
			if res.stats.Bytes != uint64(len(b)) {
				t.Errorf("Bytes %d, want %d", res.stats.Bytes, len(b))
			}
			if name == "noise" && res.stats.Resyncs == 0 {
				t.Error("no resync counted")
			}
		})
	}
}

// errReader returns (0, nil) forever.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderShapes(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)
	for name, r := range map[string]io.Reader{
		"one byte":   iotest.OneByteReader(bytes.NewReader(data)),
		"half":       iotest.HalfReader(bytes.NewReader(data)),
		"data + EOF": iotest.DataErrReader(bytes.NewReader(data)),
	} {
		t.Run(name, func(t *testing.T) {
			res := demux(t, r)
			if res.err != nil || len(res.errors) != 0 {
				t.Fatalf("Run: %v, errors %v", res.err, res.errors)
			}
			if len(res.frames) != len(clean.frames) {
				t.Fatalf("%d frames, want %d", len(res.frames), len(clean.frames))
			}
			for i := range res.frames {
				if !bytes.Equal(res.frames[i].Data, clean.frames[i].Data) || res.frames[i].PTS != clean.frames[i].PTS {
					t.Fatalf("frame %d differs", i)
				}
			}
		})
	}
	t.Run("no progress", func(t *testing.T) {
		res := demux(t, emptyReader{})
		if !errors.Is(res.err, io.ErrNoProgress) {
			t.Fatalf("Run = %v, want io.ErrNoProgress", res.err)
		}
	})
}
