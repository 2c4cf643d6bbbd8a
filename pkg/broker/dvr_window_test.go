package broker

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

// TestDVRWindowOfHours: with --storage file --max-age 2h a stream is kept
// on disk for 2 h with no per-stream reservation, and its window (every
// message, the oldest keyframe) survives a broker restart on the same
// --data-dir.
func TestDVRWindowOfHours(t *testing.T) {
	data := readFixture(t, "av.ts")
	dir := t.TempDir()
	args := []string{"--storage", "file", "--max-age", "2h", "--data-dir", dir}

	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	first, err := Start(ctx, testConfig(t, args...), testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := put(t, ingestURL(first, "dvr"), bytes.NewReader(data)); status != http.StatusOK {
		_ = first.Shutdown(ctx)
		t.Fatalf("ingest: %d %s", status, body)
	}
	window := func(b *Broker) (jetstream.StreamConfig, jetstream.StreamState, time.Time) {
		t.Helper()
		js, err := jetstream.New(b.Conn())
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := bus.SubjectsFor("dvr")
		st, err := js.Stream(ctx, subj.Stream)
		if err != nil {
			t.Fatal(err)
		}
		oldest, err := bus.OldestKeyframe(ctx, js, "dvr")
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		return info.Config, info.State, oldest
	}
	cfg, before, oldest := window(first)
	if cfg.MaxAge != 2*time.Hour || cfg.Storage != jetstream.FileStorage || cfg.MaxBytes != -1 {
		t.Fatalf("stream config: max age %v, storage %v, max bytes %d; want 2h, file, none", cfg.MaxAge, cfg.Storage, cfg.MaxBytes)
	}
	if before.Msgs == 0 || oldest.IsZero() {
		t.Fatalf("stream state %+v, oldest keyframe %v", before, oldest)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := startBroker(t, testConfig(t, args...), Options{})
	_, after, oldestAfter := window(second)
	if after.Msgs != before.Msgs || after.Bytes != before.Bytes || after.FirstSeq != before.FirstSeq || !oldestAfter.Equal(oldest) {
		t.Fatalf("after the restart: %d messages (%d bytes) from seq %d, oldest keyframe %v; before: %d (%d) from %d, %v",
			after.Msgs, after.Bytes, after.FirstSeq, oldestAfter, before.Msgs, before.Bytes, before.FirstSeq, oldest)
	}
}
