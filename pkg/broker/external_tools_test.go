//go:build external

package broker

// The tests that run ffmpeg or curl (the build tag external: scripts/test.sh
// installs them and always sets it).

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

func TestLargeFrameArrivesWhole(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.ts")
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-v", "error", "-f", "lavfi",
		"-i", "testsrc2=size=480x270:rate=5,noise=alls=60:allf=t", "-t", "0.6",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-g", "5", "-bf", "0", "-pix_fmt", "yuv420p",
		"-f", "mpegts", "-y", big).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	want := demux(t, data)
	largest := 0
	for _, f := range want.Frames {
		largest = max(largest, len(f.Data))
	}
	const maxPayload = 64 << 10
	if largest < 3*maxPayload {
		t.Fatalf("largest access unit %d bytes: want several times %d", largest, maxPayload)
	}

	b := startBroker(t, testConfig(t, "--storage", "memory"), Options{EmbeddedMaxPayload: maxPayload})
	if status, body := put(t, ingestURL(b, "big"), bytes.NewReader(data)); status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	msgs := subscribe(t, b.Conn(), "big", countFrames(nil, len(want.Frames)))
	sameFrames(t, framesOf(msgs, msgs[len(msgs)-1].Epoch), want.Frames)

	// The frames were split into parts on the bus.
	js, _ := jetstream.New(b.Conn())
	s, err := js.Stream(t.Context(), bus.StreamPrefix+"big")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("media.big.part"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects["media.big.part"] < uint64(len(want.Frames)) {
		t.Fatalf("part messages: %v", info.State.Subjects)
	}
}

func TestFFmpegPUT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "in.mp4")
	ref := filepath.Join(dir, "ref.ts")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	// A 4 s MP4 (H.264 + Opus), and the MPEG-TS ffmpeg makes of it.
	run("-i", fixture(t, "av.ts"), "-t", "4", "-c", "copy", mp4)
	run("-i", mp4, "-c", "copy", "-f", "mpegts", ref)
	refData, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	want := demux(t, refData)

	b := startBroker(t, testConfig(t, "--storage", "memory"), Options{})
	run("-re", "-i", mp4, "-c", "copy", "-f", "mpegts", "-method", "PUT", ingestURL(b, "cam1"))
	msgs := subscribe(t, b.Conn(), "cam1", countFrames(nil, len(want.Frames)))
	sameFrames(t, framesOf(msgs, msgs[len(msgs)-1].Epoch), want.Frames)
}

func TestCurlUpload(t *testing.T) {
	data := readFixture(t, "av.ts")
	want := demux(t, data)
	b := startBroker(t, testConfig(t, "--storage", "memory", "--ingest-token", "tok"), Options{})
	out, err := exec.CommandContext(t.Context(), "curl", "-sS", "--fail-with-body", "-H", "Authorization: Bearer tok",
		"-T", fixture(t, "av.ts"), ingestURL(b, "cam1")).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("bytes=%d frames=%d", len(data), len(want.Frames))) {
		t.Fatalf("curl output %q", out)
	}
	msgs := subscribe(t, b.Conn(), "cam1", countFrames(nil, len(want.Frames)))
	sameFrames(t, framesOf(msgs, msgs[len(msgs)-1].Epoch), want.Frames)
}
