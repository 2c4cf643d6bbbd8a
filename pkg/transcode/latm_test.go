package transcode

import (
	"bytes"
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestLATMChannels reads the channel count from the StreamMuxConfig of
// testdata/latm.ts (stereo AAC in LATM/LOAS): the first PES has it, every
// one that has a config says 2, and input that is no LOAS gives 0.
func TestLATMChannels(t *testing.T) {
	d := tstest.DemuxWith(t, tstest.Read(t, "latm.ts"), tsframes.Options{SourceAudio: true})
	var latm []tsframes.Frame
	for _, f := range d.Frames {
		if f.Codec == tsframes.CodecAACLATM {
			latm = append(latm, f)
		}
	}
	if len(latm) < 10 {
		t.Fatalf("%d LATM frames in latm.ts", len(latm))
	}
	if n := latmChannels(latm[0].Data); n != 2 {
		t.Fatalf("first LATM PES: %d channels, want 2", n)
	}
	configs := 0
	for i, f := range latm {
		switch n := latmChannels(f.Data); n {
		case 0:
		case 2:
			configs++
		default:
			t.Fatalf("LATM PES %d: %d channels, want 2", i, n)
		}
	}
	t.Logf("%d of %d PES carry a configuration", configs, len(latm))
	for _, bad := range [][]byte{nil, {0x56}, {0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc}, bytes.Repeat([]byte{0x56, 0xe0, 0x01, 0xff}, 4)} {
		if n := latmChannels(bad); n != 0 {
			t.Fatalf("latmChannels(%x) = %d, want 0", bad, n)
		}
	}
}

// FuzzLATMChannels: any PES (a source's, so untrusted) gives a channel
// count between 0 and 8, never a panic.
func FuzzLATMChannels(f *testing.F) {
	f.Add([]byte{0x56, 0xe0, 0x10, 0x20, 0x00, 0x26, 0x20, 0x3f, 0xc0})
	f.Add(bytes.Repeat([]byte{0x56, 0xe0, 0x01, 0xff}, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		if n := latmChannels(data); n < 0 || n > 8 {
			t.Fatalf("latmChannels = %d", n)
		}
	})
}
