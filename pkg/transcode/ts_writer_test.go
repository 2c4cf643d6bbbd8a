package transcode

import (
	"bytes"
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// sourceAudio demuxes data with SourceAudio and returns its audio frames.
func sourceAudio(t *testing.T, data []byte) []tsframes.Frame {
	t.Helper()
	var d tstest.Demuxed
	if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{SourceAudio: true}).Run(t.Context(), &d); err != nil {
		t.Fatal(err)
	}
	return d.Kind(tsframes.KindAudio)
}

func TestTSWriterRoundTrip(t *testing.T) {
	in := sourceAudio(t, tstest.Read(t, "aac.ts"))
	if len(in) == 0 {
		t.Fatal("no AAC in aac.ts")
	}
	var buf bytes.Buffer
	w, err := newTSWriter(&buf, tsframes.CodecAAC)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.writeTables(); err != nil {
		t.Fatal(err)
	}
	// The PAT of program 1 on PID 0x1000, CRC included, as ffmpeg writes it.
	pat := []byte{0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2}
	if got := buf.Bytes()[:len(pat)]; !bytes.Equal(got, pat) {
		t.Fatalf("PAT % x, want % x", got, pat)
	}
	// Shifted across the 33-bit wrap: written modulo 2^33.
	const shift = 1<<33 - 100000
	for _, f := range in {
		if err := w.writePES(f.PTS+shift, f.PTS+shift, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len()%tsPacketSize != 0 {
		t.Fatalf("%d bytes: not whole packets", buf.Len())
	}
	out := sourceAudio(t, buf.Bytes())
	if len(out) != len(in) {
		t.Fatalf("%d frames back, wrote %d", len(out), len(in))
	}
	for i := range in {
		if !bytes.Equal(out[i].Data, in[i].Data) {
			t.Fatalf("frame %d: payload differs", i)
		}
		if got, want := out[i].PTS-out[0].PTS, in[i].PTS-in[0].PTS; got != want {
			t.Fatalf("frame %d: PTS step %d, want %d", i, got, want)
		}
	}
	if want := (in[0].PTS + shift) & (1<<33 - 1); out[0].PTS != want {
		t.Fatalf("first PTS %d, want %d", out[0].PTS, want)
	}
}
