package broker

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

// putStream PUTs body to stream and returns the status, the Retry-After
// header and the response body.
func putStream(t *testing.T, b *Broker, stream string, body io.Reader) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, ingestURL(b, stream), body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(msg)
}

// catalogState polls the catalog until stream's entry is in state.
func catalogState(t *testing.T, b *Broker, stream, state string) {
	t.Helper()
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := bus.OpenCatalog(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testDeadline)
	for {
		e, err := cat.Get(t.Context(), stream)
		if err == nil && e.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog entry of %s: %+v, %v; want %s", stream, e, err, state)
		}
		time.Sleep(20 * time.Millisecond) // polling the catalog
	}
}

func TestMaxStreamsRefusesNewStreamsOnly(t *testing.T) {
	b := startBroker(t, testConfig(t, "--storage", "memory", "--max-streams", "1"), Options{})
	data := readFixture(t, "av.ts")

	pr, pw := io.Pipe()
	live := make(chan int, 1)
	go func() {
		resp, err := http.Post(ingestURL(b, "live"), "video/mp2t", pr)
		if err != nil {
			live <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		live <- resp.StatusCode
	}()
	if _, err := pw.Write(data[:188*120]); err != nil {
		t.Fatal(err)
	}
	catalogState(t, b, "live", bus.StateLive)

	status, retry, msg := putStream(t, b, "other", bytes.NewReader(data))
	if status != http.StatusServiceUnavailable || retry == "" || !strings.Contains(msg, "--max-streams: 1 of 1 live") {
		t.Fatalf("new stream at --max-streams: %d, Retry-After %q, %q; want 503 naming the limit with Retry-After", status, retry, msg)
	}
	if names := streamNames(t, b.Conn()); contains(names, "MEDIA_other") {
		t.Fatalf("a refused stream was created: %v", names)
	}
	// The live stream goes on and ends normally.
	if _, err := pw.Write(data[188*120:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if status := <-live; status != http.StatusOK {
		t.Fatalf("live stream: %d, want 200", status)
	}
	if status, _, msg := putStream(t, b, "other", bytes.NewReader(data)); status != http.StatusOK {
		t.Fatalf("new stream once the live one ended: %d %s", status, msg)
	}
}

func TestStorageBudgetRefusesNewStreamsUntilEndedOnesAreReclaimed(t *testing.T) {
	b := startBroker(t, testConfig(t, "--storage", "file", "--storage-budget", "64KiB", "--max-age", "1s"), Options{})
	data := readFixture(t, "av.ts") // 286 KiB: over the budget
	if status, _, msg := putStream(t, b, "first", bytes.NewReader(data)); status != http.StatusOK {
		t.Fatalf("first stream: %d %s", status, msg)
	}
	status, retry, msg := putStream(t, b, "second", bytes.NewReader(data))
	if status != http.StatusInsufficientStorage || retry != "1" || !strings.Contains(msg, "--storage-budget") {
		t.Fatalf("new stream over the budget: %d, Retry-After %q, %q; want 507 naming the limit, Retry-After 1", status, retry, msg)
	}
	// "first" ended: its messages expire and the stream is removed after
	// its retention (1 s); then there is room again.
	deadline := time.Now().Add(testDeadline)
	for contains(streamNames(t, b.Conn()), "MEDIA_first") {
		if time.Now().After(deadline) {
			t.Fatal("the ended stream was not removed after its retention")
		}
		time.Sleep(50 * time.Millisecond) // polling JetStream
	}
	if _, body := get(t, "http://"+b.IngestAddr().String()+"/metrics"); strings.Contains(body, `stream="first"`) {
		t.Fatal("metrics series of the removed stream are still served")
	}
	if status, _, msg := putStream(t, b, "second", bytes.NewReader(data)); status != http.StatusOK {
		t.Fatalf("new stream after the ended one was reclaimed: %d %s", status, msg)
	}
}

// A restart with a smaller storage budget (or on less free disk) keeps the
// existing streams ingesting; only new streams are refused.
func TestRestartWithSmallerBudgetKeepsExistingStreams(t *testing.T) {
	dir := t.TempDir()
	data := readFixture(t, "av.ts")
	cfg := testConfig(t, "--storage", "file", "--data-dir", dir, "--max-age", "1m")
	b, err := Start(t.Context(), cfg, testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cam1", "cam2"} {
		if status, _, msg := putStream(t, b, name, bytes.NewReader(data)); status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, status, msg)
		}
	}
	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	b = startBroker(t, testConfig(t, "--storage", "file", "--data-dir", dir, "--max-age", "1m", "--storage-budget", "64KiB"), Options{})
	for _, name := range []string{"cam1", "cam2", "cam1"} {
		if status, _, msg := putStream(t, b, name, bytes.NewReader(data)); status != http.StatusOK {
			t.Fatalf("existing stream %s after a restart with a smaller budget: %d %s", name, status, msg)
		}
	}
	if status, _, msg := putStream(t, b, "cam3", bytes.NewReader(data)); status != http.StatusInsufficientStorage {
		t.Fatalf("new stream after the restart: %d %s, want 507", status, msg)
	}
}
