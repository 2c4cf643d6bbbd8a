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

// TestFFmpegPublishes publishes a fixture with ffmpeg's SRT caller, as the
// README tells users to, and gets the fixture's frames.
func TestFFmpegPublishes(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed: apt-get install ffmpeg")
	}
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Passphrase: "0123456789abc"}, pubs)
	want := tstest.Demux(t, tstest.Read(t, "av.ts"))

	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	url := fmt.Sprintf("srt://%s?streamid=publish:cam1&pkt_size=1316&passphrase=0123456789abc", l.Addr())
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-i", tstest.Path(t, "av.ts"), "-c", "copy", "-f", "mpegts", url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	p := rec.Opened(t, testDeadline)
	p.WaitEnded(t, testDeadline)
	// ffmpeg remuxes: the timestamps and packets may shift, the frames not.
	if got := len(p.Frames()); got < len(want.Frames)*9/10 {
		t.Errorf("%d frames, want about %d", got, len(want.Frames))
	}
}
