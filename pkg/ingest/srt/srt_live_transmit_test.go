//go:build external

package srt

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
)

// TestSRTLiveTransmitPublishes: ffmpeg's MPEG-TS piped into
// srt-live-transmit, with the access-control streamid #!::r=cam1,m=publish
// (docs/ingest.md's recipe), is published as cam1 with the fixture's frames
// (at least 90%: ffmpeg remuxes).
func TestSRTLiveTransmitPublishes(t *testing.T) {
	for _, bin := range []string{"ffmpeg", "srt-live-transmit"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed: apt-get install ffmpeg srt-tools", bin)
		}
	}
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	want := tstest.Demux(t, tstest.Read(t, "av.ts"))

	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-i", tstest.Path(t, "av.ts"), "-c", "copy", "-f", "mpegts", "-")
	slt := exec.CommandContext(ctx, "srt-live-transmit", "-q", "-a:no", "-chunk:1316", "file://con",
		fmt.Sprintf("srt://%s?streamid=#!::r=cam1,m=publish", l.Addr()))
	pipe, err := ff.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	slt.Stdin = pipe
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	if err := slt.Start(); err != nil {
		t.Fatal(err)
	}
	// srt-live-transmit does not end at the end of its input: once ffmpeg
	// is done and the frames arrived, it is stopped, which ends the
	// publication.
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	p := rec.Opened(t, testDeadline)
	p.WaitFrames(t, len(want.Frames)*9/10, testDeadline)
	_ = slt.Process.Kill()
	_ = slt.Wait()
	p.WaitEnded(t, testDeadline)
	if p.Stream != "cam1" {
		t.Fatalf("stream %q, want cam1", p.Stream)
	}
	if got := len(p.Frames()); got < len(want.Frames)*9/10 {
		t.Errorf("%d frames, want about %d", got, len(want.Frames))
	}
}
