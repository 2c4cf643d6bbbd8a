package whip

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// fakeKeys counts keyframe requests.
type fakeKeys struct {
	requests int
	waiting  bool
}

func (k *fakeKeys) requestKeyframe()             { k.requests++ }
func (k *fakeKeys) setWaitingForKeyframe(w bool) { k.waiting = w }

// records returns the video records of frames (H.264 access units, 3000
// ticks apart) as pion's packetizer sends them: STAP-A, FU-A, single NAL
// units, 1200-byte payloads.
func videoRecords(t *testing.T, frames []tsframes.Frame) [][]byte {
	t.Helper()
	pk := rtp.NewPacketizer(1200, 96, 0x1234, &codecs.H264Payloader{}, rtp.NewFixedSequencer(65500), 90000)
	var out [][]byte
	for _, f := range frames {
		for _, p := range pk.Packetize(f.Data, 3000) {
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]byte{recVideo}, b...))
		}
	}
	return out
}

// recordReader hands out one record per Read, then io.EOF.
type recordReader struct{ recs [][]byte }

func (r *recordReader) Read(p []byte) (int, error) {
	if len(r.recs) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.recs[0])
	r.recs = r.recs[1:]
	return n, nil
}

func runLoop(t *testing.T, recs [][]byte, keys *fakeKeys) *tstest.Demuxed {
	t.Helper()
	var got tstest.Demuxed
	o := offer{video: &codecChoice{pt: 96}, profileLevelID: "42c01e"}
	l := newFrameLoop(o, &got, keys, 0, slog.New(slog.DiscardHandler))
	if err := l.run(context.Background(), &recordReader{recs: recs}); err != nil {
		t.Fatal(err)
	}
	return &got
}

func TestFrameLoopReordersAndRecoversFromLoss(t *testing.T) {
	ref := tstest.Demux(t, tstest.Read(t, "video.ts")).Kind(tsframes.KindVideo)
	recs := videoRecords(t, ref)

	// Swapped packets (and sequence numbers wrapping) change nothing.
	swapped := append([][]byte(nil), recs...)
	for i := 10; i+1 < len(swapped); i += 7 {
		swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
	}
	keys := &fakeKeys{}
	got := runLoop(t, swapped, keys)
	if len(got.Frames) != len(ref) {
		t.Fatalf("%d access units, want %d", len(got.Frames), len(ref))
	}
	for i, f := range got.Frames {
		if !bytes.Equal(f.Data, ref[i].Data) || f.Key != ref[i].Key || f.PTS != int64(i)*3000 {
			t.Fatalf("access unit %d: key=%v PTS %d, %d bytes; want key=%v PTS %d, %d bytes",
				i, f.Key, f.PTS, len(f.Data), ref[i].Key, i*3000, len(ref[i].Data))
		}
	}
	if keys.waiting || keys.requests != 0 {
		t.Fatalf("waiting %v, %d keyframe requests without a loss", keys.waiting, keys.requests)
	}

	// A packet of the second access unit lost: it and the rest of its GOP
	// are dropped, a keyframe is asked for, the next GOP is published.
	lost := 0
	var first uint32
	for i := range recs {
		var p rtp.Packet
		if err := p.Unmarshal(recs[i][1:]); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p.Timestamp // the packetizer starts at a random one
		}
		if p.Timestamp == first+3000 {
			lost = i
			break
		}
	}
	keys = &fakeKeys{}
	got = runLoop(t, append(append([][]byte(nil), recs[:lost]...), recs[lost+1:]...), keys)
	secondKey := 0
	for i := 1; i < len(ref); i++ {
		if ref[i].Key {
			secondKey = i
			break
		}
	}
	if want := 1 + len(ref) - secondKey; len(got.Frames) != want || !got.Frames[1].Key || got.Frames[1].PTS != int64(secondKey)*3000 {
		t.Fatalf("%d access units (second key=%v), want %d: the first, then from the next keyframe at %d", len(got.Frames),
			len(got.Frames) > 1 && got.Frames[1].Key, want, secondKey)
	}
	if keys.requests != 1 || keys.waiting {
		t.Fatalf("%d keyframe requests, waiting %v; want 1 and no longer waiting", keys.requests, keys.waiting)
	}
}

func TestFrameLoopAsksForKeyframesAtTheInterval(t *testing.T) {
	ref := tstest.Demux(t, tstest.Read(t, "video.ts")).Kind(tsframes.KindVideo)[:30] // one GOP of 1 s
	var got tstest.Demuxed
	keys := &fakeKeys{}
	o := offer{video: &codecChoice{pt: 96}}
	l := newFrameLoop(o, &got, keys, 500*time.Millisecond, slog.New(slog.DiscardHandler))
	t0 := time.Unix(1000, 0)
	pk := rtp.NewPacketizer(1200, 96, 0x1234, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	for i, f := range ref {
		now := t0.Add(time.Duration(i) * time.Second / 30)
		for _, p := range pk.Packetize(f.Data, 3000) {
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			l.record(now, append([]byte{recVideo}, b...))
		}
		// Frame 15 arrives 500 ms after the keyframe: from then on, each
		// frame asks (the sender of PLIs bounds their rate).
		if want := max(0, i-14); keys.requests != want {
			t.Fatalf("after frame %d (%v after the keyframe): %d keyframe requests, want %d", i, now.Sub(t0), keys.requests, want)
		}
	}
}
