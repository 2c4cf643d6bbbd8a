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

// TestTSWriterRoundTrip: the source's PES written by the tsWriter demux back
// to the same payloads, codec and PTS steps, for AAC in ADTS and in LATM.
func TestTSWriterRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		codec   tsframes.Codec
	}{
		{"aac.ts", tsframes.CodecAAC},
		{"latm.ts", tsframes.CodecAACLATM},
	} {
		t.Run(tc.fixture, func(t *testing.T) { testTSWriterRoundTrip(t, tc.fixture, tc.codec) })
	}
}

func testTSWriterRoundTrip(t *testing.T, fixture string, codec tsframes.Codec) {
	in := sourceAudio(t, tstest.Read(t, fixture))
	if len(in) == 0 || in[0].Codec != codec {
		t.Fatalf("no %s in %s", codec, fixture)
	}
	var buf bytes.Buffer
	w, err := newTSWriter(&buf, codec)
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
		if !bytes.Equal(out[i].Data, in[i].Data) || out[i].Codec != codec {
			t.Fatalf("frame %d: payload differs or codec %s", i, out[i].Codec)
		}
		if got, want := out[i].PTS-out[0].PTS, in[i].PTS-in[0].PTS; got != want {
			t.Fatalf("frame %d: PTS step %d, want %d", i, got, want)
		}
	}
	if want := (in[0].PTS + shift) & (1<<33 - 1); out[0].PTS != want {
		t.Fatalf("first PTS %d, want %d", out[0].PTS, want)
	}
}
