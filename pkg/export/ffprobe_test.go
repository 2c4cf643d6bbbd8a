//go:build external

package export

// The test that runs ffprobe (the build tag external: scripts/test.sh
// installs it and always sets it).

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestFFprobeDecodesExports(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "cam", "av.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	from, to := exportRange(s)
	video := len(kind(s.between(from, to), tsframes.KindVideo))
	for _, ext := range []string{"ts", "mp4"} {
		t.Run(ext, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/export/cam."+ext+"?from="+rfc(from)+"&to="+rfc(to), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			file := filepath.Join(t.TempDir(), "clip."+ext)
			if err := os.WriteFile(file, body, 0o600); err != nil {
				t.Fatal(err)
			}
			// Every video frame decoded, without a decoder error; the
			// first one a keyframe.
			out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_frames",
				"-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_read_frames:frame=key_frame",
				"-read_intervals", "%+#1", "-of", "default=nw=1", file).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			text := string(out)
			if !strings.Contains(text, "codec_name=h264") || !strings.Contains(text, "key_frame=1") {
				t.Errorf("ffprobe: first frame not an H.264 keyframe:\n%s", text)
			}
			out, err = exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_frames",
				"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", file).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			text = strings.TrimSpace(string(out))
			t.Logf("ffprobe: %s", text)
			if !strings.Contains(text+"\n", "h264,"+strconv.Itoa(video)+"\n") || !strings.Contains(text, "opus,") {
				t.Errorf("ffprobe: %q, want h264 with %d frames and opus", text, video)
			}
			if strings.Contains(text, "rror") {
				t.Errorf("ffprobe reported errors: %s", text)
			}
		})
	}
}
