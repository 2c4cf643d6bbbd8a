package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/whepcast/whepcast/pkg/ingest"
)

// BenchmarkIngest measures the ingest path, demux and publish into the
// embedded JetStream, one publication of av.ts (6 s of H.264 + Opus, 292 KB)
// per iteration: through Publications.Ingest directly, and through HTTP PUT.
// MB/s is of MPEG-TS input; frames/s of access units published.
func BenchmarkIngest(b *testing.B) {
	data := readFixture(b, "av.ts")
	frames := len(demux(b, data).Frames)
	for _, storage := range []string{"memory", "file"} {
		cfg := testConfig(b, "--storage", storage, "--log-level", "error")
		br, err := Start(context.Background(), cfg, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("publications/"+storage, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				sum, err := br.Publications().Ingest(context.Background(), "bench", ingest.Source{Kind: "bench", Body: bytes.NewReader(data)})
				if err != nil || sum.Frames != uint64(frames) {
					b.Fatalf("%v: %d frames", err, sum.Frames)
				}
			}
			b.ReportMetric(float64(frames*b.N)/b.Elapsed().Seconds(), "frames/s")
		})
		b.Run("http/"+storage, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			url := ingestURL(br, "benchhttp")
			for b.Loop() {
				resp, err := http.Post(url, "video/mp2t", bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(body, fmt.Appendf(nil, "frames=%d ", frames)) {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			b.ReportMetric(float64(frames*b.N)/b.Elapsed().Seconds(), "frames/s")
		})
		if err := br.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
