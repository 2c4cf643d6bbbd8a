package tsframes_test

import (
	"bytes"
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// adtsFrames counts the ADTS frames of data, walking their lengths; it
// fails the test when they do not tile data exactly.
func adtsFrames(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		if len(data) < 7 || data[0] != 0xff || data[1]&0xf0 != 0xf0 {
			t.Fatalf("no ADTS header at frame %d (%d bytes left)", n+1, len(data))
		}
		l := int(data[3]&0x03)<<11 | int(data[4])<<3 | int(data[5])>>5
		if l < 7 || l > len(data) {
			t.Fatalf("ADTS frame %d: length %d, %d bytes left", n+1, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n
}

func TestSourceAudioDeliversAACPES(t *testing.T) {
	data := tstest.Read(t, "aac.ts")
	var off, on tstest.Demuxed
	if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{}).Run(t.Context(), &off); err != nil {
		t.Fatal(err)
	}
	if n := len(off.Kind(tsframes.KindAudio)); n != 0 {
		t.Fatalf("without SourceAudio: %d audio frames, want 0", n)
	}
	if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{SourceAudio: true}).Run(t.Context(), &on); err != nil {
		t.Fatal(err)
	}
	if got, want := len(on.Kind(tsframes.KindVideo)), len(off.Kind(tsframes.KindVideo)); got != want {
		t.Fatalf("video frames %d with SourceAudio, %d without", got, want)
	}
	audio := on.Kind(tsframes.KindAudio)
	if len(audio) == 0 {
		t.Fatal("no AAC frame delivered")
	}
	total, last := 0, int64(-1)
	for i, f := range audio {
		if f.Codec != tsframes.CodecAAC || f.Duration != 0 || f.More || f.DTS != f.PTS {
			t.Fatalf("frame %d: codec %s, duration %d, more %v, PTS %d DTS %d", i, f.Codec, f.Duration, f.More, f.PTS, f.DTS)
		}
		if f.PTS <= last {
			t.Fatalf("frame %d: PTS %d after %d", i, f.PTS, last)
		}
		last = f.PTS
		n := adtsFrames(t, f.Data)
		total += n
	}
	// testdata/aac.ts.expect: 189 audio packets as ffprobe counts them.
	if total != 189 {
		t.Fatalf("%d ADTS frames in %d PES, want 189", total, len(audio))
	}
}
