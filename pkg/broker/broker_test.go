package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestMain checks that no goroutine is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDeadline = 30 * time.Second

// fixture, readFixture and demux: the shared test inputs (internal/tstest).
func fixture(t testing.TB, name string) string { return tstest.Path(t, name) }

func readFixture(t testing.TB, name string) []byte { return tstest.Read(t, name) }

func demux(t testing.TB, data []byte) *tstest.Demuxed { return tstest.Demux(t, data) }

// testConfig is a broker on loopback ports chosen by the kernel, with an
// embedded in-process-only NATS server storing in a temporary directory.
func testConfig(t testing.TB, args ...string) *config.Broker {
	t.Helper()
	base := []string{"--ingest-addr", "127.0.0.1:0", "--rtmp-addr", "", "--nats-listen", "", "--data-dir", t.TempDir(), "--log-level", "debug"}
	cfg, err := config.LoadBroker(append(base, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startBroker starts a broker that the test stops at cleanup (checking that
// it stops cleanly).
func startBroker(t testing.TB, cfg *config.Broker, opts Options) *Broker {
	t.Helper()
	b, err := Start(context.Background(), cfg, testLogger(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- b.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker stop: %v", err)
			}
		case <-time.After(testDeadline):
			t.Error("broker did not stop")
		}
	})
	return b
}

// subscribe delivers every message of stream name from its first one, until
// enough(msgs) is true, and returns them.
func subscribe(t *testing.T, nc *nats.Conn, name string, enough func([]bus.Message) bool) []bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	var (
		mu   sync.Mutex
		msgs []bus.Message
		done = make(chan struct{})
		once sync.Once
	)
	sub, err := bus.Subscribe(ctx, nc, name, bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, m)
		if enough(msgs) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("stream %s: got %d messages before the deadline", name, len(msgs))
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]bus.Message(nil), msgs...)
}

func framesOf(msgs []bus.Message, epoch uint64) []tsframes.Frame {
	var out []tsframes.Frame
	for _, m := range msgs {
		if m.IsFrame() && (epoch == 0 || m.Epoch == epoch) {
			out = append(out, m.Frame)
		}
	}
	return out
}

func countFrames(epoch *uint64, n int) func([]bus.Message) bool {
	return func(msgs []bus.Message) bool {
		if len(msgs) == 0 {
			return false
		}
		e := msgs[len(msgs)-1].Epoch
		if epoch != nil {
			e = *epoch
		}
		return len(framesOf(msgs, e)) >= n
	}
}

// sameFrames compares what the bus delivered with what tsframes demuxed:
// each track (PID) in the same order, same bytes, same timing. The tracks
// are compared apart: the ingest publishes an MPEG-TS source's video after
// the audio of its PTS, not in the file's order.
func sameFrames(t *testing.T, got, want []tsframes.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	sameFramesPrefix(t, got, want)
}

// sameFramesPrefix is sameFrames for got a prefix of each track of want
// (the input has not all come through yet).
func sameFramesPrefix(t *testing.T, got, want []tsframes.Frame) {
	t.Helper()
	gt, wt := tstest.ByPID(got), tstest.ByPID(want)
	for pid, gf := range gt {
		wf := wt[pid]
		if len(gf) > len(wf) {
			t.Fatalf("PID %d: got %d frames, want at most %d", pid, len(gf), len(wf))
		}
		for i, g := range gf {
			w := wf[i]
			if g.Kind != w.Kind || g.Codec != w.Codec || g.PTS != w.PTS || g.Key != w.Key || !bytes.Equal(g.Data, w.Data) {
				t.Fatalf("PID %d frame %d: got %s pts %d key %v %d bytes; want %s pts %d key %v %d bytes",
					pid, i, g.Codec, g.PTS, g.Key, len(g.Data), w.Codec, w.PTS, w.Key, len(w.Data))
			}
			if w.Kind == tsframes.KindVideo && g.DTS != w.DTS {
				t.Fatalf("PID %d frame %d: dts %d, want %d", pid, i, g.DTS, w.DTS)
			}
			if w.Kind == tsframes.KindAudio && g.Duration != w.Duration {
				t.Fatalf("PID %d frame %d: duration %d, want %d", pid, i, g.Duration, w.Duration)
			}
		}
	}
}

// checkAnnouncement checks that msgs hold the announcement of epoch with the
// tracks tsframes announced last.
func checkAnnouncement(t *testing.T, msgs []bus.Message, name string, epoch uint64, want tsframes.Announcement) {
	t.Helper()
	exp := bus.NewAnnouncement(name, epoch, want)
	for _, m := range msgs {
		if m.Tracks != nil && m.Epoch == epoch {
			if fmt.Sprint(*m.Tracks) != fmt.Sprint(exp) {
				t.Fatalf("announcement %+v, want %+v", *m.Tracks, exp)
			}
			return
		}
	}
	t.Fatalf("no announcement of epoch %d", epoch)
}

func put(t *testing.T, url string, body io.Reader, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ingestURL(b *Broker, stream string) string {
	return "http://" + b.IngestAddr().String() + "/ingest/" + stream
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func streamNames(t *testing.T, nc *nats.Conn) []string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l := js.StreamNames(t.Context())
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestHTTPIngestRoundTrip(t *testing.T) {
	data := readFixture(t, "av.ts")
	want := demux(t, data)
	b := startBroker(t, testConfig(t, "--storage", "file"), Options{})

	// Chunked upload (unknown length).
	status, body := put(t, ingestURL(b, "cam1"), io.MultiReader(bytes.NewReader(data)))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if !strings.Contains(body, fmt.Sprintf("bytes=%d frames=%d", len(data), len(want.Frames))) {
		t.Fatalf("summary %q", body)
	}

	msgs := subscribe(t, b.Conn(), "cam1", countFrames(nil, len(want.Frames)))
	epoch := msgs[len(msgs)-1].Epoch
	if epoch == 0 {
		t.Fatal("epoch 0")
	}
	for _, m := range msgs {
		if m.Epoch != epoch {
			t.Fatalf("message %d of epoch %d, want only %d", m.Seq, m.Epoch, epoch)
		}
	}
	sameFrames(t, framesOf(msgs, epoch), want.Frames)
	checkAnnouncement(t, msgs, "cam1", epoch, want.Announcements[len(want.Announcements)-1])

	// The catalog says the publication ended, with its statistics.
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := bus.OpenCatalog(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cat.Get(t.Context(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	var keys uint64
	for _, f := range want.Frames {
		if f.Key {
			keys++
		}
	}
	if e.State != bus.StateEnded || e.Epoch != epoch || e.Stats.Bytes != uint64(len(data)) || e.Stats.Frames != uint64(len(want.Frames)) || e.Stats.Keyframes != keys {
		t.Fatalf("catalog entry %+v", e)
	}

	// Metrics and health.
	status, metrics := get(t, "http://"+b.IngestAddr().String()+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	for _, line := range []string{
		fmt.Sprintf(`whepcast_ingest_bytes_total{stream="cam1"} %d`, len(data)),
		fmt.Sprintf(`whepcast_ingest_frames_total{stream="cam1"} %d`, len(want.Frames)),
		fmt.Sprintf(`whepcast_ingest_keyframes_total{stream="cam1"} %d`, keys),
		`whepcast_ingest_decode_errors_total{stream="cam1"} 0`,
		`whepcast_publish_errors_total{stream="cam1"} 0`,
		`whepcast_ingest_publications{stream="cam1"} 0`,
		`whepcast_ingest_takeovers_total 0`,
		`whepcast_publish_latency_seconds_count{stream="cam1"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if status, body := get(t, "http://"+b.IngestAddr().String()+"/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, body)
	}
}

func TestTakeoverBumpsEpoch(t *testing.T) {
	data := readFixture(t, "av.ts")
	want := demux(t, data)
	b := startBroker(t, testConfig(t, "--storage", "memory"), Options{})
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()

	// The first publisher sends half the file and keeps its body open.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(data[:len(data)/2]) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, ingestURL(b, "cam1"), pr)
	if err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		firstDone <- err
	}()
	// Wait until the first publication has published frames.
	first := subscribe(t, b.Conn(), "cam1", func(m []bus.Message) bool { return len(framesOf(m, 0)) >= 10 })
	epoch1 := first[0].Epoch

	status, body := put(t, ingestURL(b, "cam1"), bytes.NewReader(data))
	if status != http.StatusOK {
		t.Fatalf("second publisher: %d %s", status, body)
	}
	select {
	case err := <-firstDone:
		// 409, or the connection closed under the client's body write.
		if err != nil && !strings.Contains(err.Error(), "connection") && !strings.Contains(err.Error(), "broken pipe") && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") {
			t.Fatalf("first publisher: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("first connection did not end")
	}

	var epoch2 uint64
	msgs := subscribe(t, b.Conn(), "cam1", func(m []bus.Message) bool {
		e := m[len(m)-1].Epoch
		return e != epoch1 && len(framesOf(m, e)) >= len(want.Frames)
	})
	epoch2 = msgs[len(msgs)-1].Epoch
	if epoch2 <= epoch1 {
		t.Fatalf("epoch %d after %d: want greater", epoch2, epoch1)
	}
	// Epoch 1's messages all come before epoch 2's.
	seen2 := false
	for _, m := range msgs {
		switch m.Epoch {
		case epoch2:
			seen2 = true
		case epoch1:
			if seen2 {
				t.Fatalf("message %d of epoch 1 after epoch 2 started", m.Seq)
			}
		default:
			t.Fatalf("message %d of unknown epoch %d", m.Seq, m.Epoch)
		}
	}
	sameFrames(t, framesOf(msgs, epoch2), want.Frames)
	checkAnnouncement(t, msgs, "cam1", epoch2, want.Announcements[len(want.Announcements)-1])
	if n := len(framesOf(msgs, epoch1)); n < 10 || n >= len(want.Frames) {
		t.Fatalf("epoch 1 published %d frames", n)
	}
	_, metrics := get(t, "http://"+b.IngestAddr().String()+"/metrics")
	if !strings.Contains(metrics, "whepcast_ingest_takeovers_total 1") {
		t.Fatal("takeovers_total is not 1")
	}
}

func TestRejectedIngestCreatesNothing(t *testing.T) {
	b := startBroker(t, testConfig(t, "--storage", "memory", "--ingest-token", "s3cret"), Options{})
	data := readFixture(t, "av.ts")
	for _, c := range []struct {
		stream string
		header []string
		status int
	}{
		{"bad.name", []string{"Authorization", "Bearer s3cret"}, http.StatusBadRequest},
		{"cam%2F1", []string{"Authorization", "Bearer s3cret"}, http.StatusBadRequest},
		{"cam1", nil, http.StatusUnauthorized},
		{"cam1", []string{"Authorization", "Bearer wrong"}, http.StatusUnauthorized},
	} {
		if status, body := put(t, ingestURL(b, c.stream), bytes.NewReader(data), c.header...); status != c.status {
			t.Fatalf("%s %v: status %d, want %d (%s)", c.stream, c.header, status, c.status, body)
		}
	}
	if names := streamNames(t, b.Conn()); len(names) != 0 {
		t.Fatalf("streams created by rejected requests: %v", names)
	}
	if status, body := put(t, ingestURL(b, "cam1"), bytes.NewReader(data), "Authorization", "Bearer s3cret"); status != http.StatusOK {
		t.Fatalf("with token: %d %s", status, body)
	}
	if names := streamNames(t, b.Conn()); !contains(names, "MEDIA_cam1") {
		t.Fatalf("streams %v: want MEDIA_cam1", names)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sendDatagrams sends data to the broker's first UDP ingest in 1316-byte
// datagrams (7 TS packets), with at most 32 datagrams in flight: it waits
// for the listener to have read them, so that a busy machine does not
// overflow the loopback socket buffer.
func sendDatagrams(t *testing.T, b *Broker, data []byte) {
	t.Helper()
	l := b.udp[0]
	tstest.SendDatagrams(t, l.Addr().String(), l.Datagrams, data, testDeadline)
}

// waitEnded waits until the catalog shows a publication of stream newer than
// after as ended, and returns its epoch.
func waitEnded(t *testing.T, b *Broker, stream string, after uint64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := bus.OpenCatalog(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := cat.Get(ctx, stream)
		if err == nil && e.Epoch > after && e.State == bus.StateEnded {
			return e.Epoch
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no ended publication of %s after epoch %d (last: %+v, %v)", stream, after, e, err)
		case <-time.After(20 * time.Millisecond): // polling the catalog
		}
	}
}

func TestUDPIngest(t *testing.T) {
	data := readFixture(t, "av.ts")
	want := demux(t, data)
	b := startBroker(t, testConfig(t, "--storage", "memory", "--udp-ingest", "udpcam=127.0.0.1:0", "--udp-idle", "1s"), Options{})

	sendDatagrams(t, b, data)
	// The idle gap ends the publication.
	epoch1 := waitEnded(t, b, "udpcam", 0)
	msgs := subscribe(t, b.Conn(), "udpcam", countFrames(&epoch1, len(want.Frames)))
	sameFrames(t, framesOf(msgs, epoch1), want.Frames)
	checkAnnouncement(t, msgs, "udpcam", epoch1, want.Announcements[len(want.Announcements)-1])

	// After the idle gap, datagrams start a new publication.
	sendDatagrams(t, b, data)
	epoch2 := waitEnded(t, b, "udpcam", epoch1)
	msgs = subscribe(t, b.Conn(), "udpcam", countFrames(&epoch2, len(want.Frames)))
	sameFrames(t, framesOf(msgs, epoch2), want.Frames)
	checkAnnouncement(t, msgs, "udpcam", epoch2, want.Announcements[len(want.Announcements)-1])
}

func TestShutdownEndsEverything(t *testing.T) {
	data := readFixture(t, "av.ts")
	cfg := testConfig(t, "--storage", "file", "--nats-listen", "127.0.0.1:0", "--udp-ingest", "udpcam=127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := Start(ctx, cfg, testLogger(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.NATSURL(), "nats://127.0.0.1:") {
		t.Fatalf("NATS URL %q", b.NATSURL())
	}
	// A TCP client of the embedded server.
	nc, err := nats.Connect(b.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// An HTTP ingest in progress, and a UDP one.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(data[:len(data)/2]) }()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, ingestURL(b, "cam1"), pr)
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	sendDatagrams(t, b, data[:len(data)/2])
	subscribe(t, nc, "cam1", func(m []bus.Message) bool { return len(framesOf(m, 0)) >= 10 })
	subscribe(t, nc, "udpcam", func(m []bus.Message) bool { return len(framesOf(m, 0)) >= 10 })

	cancel() // like SIGTERM
	select {
	case <-b.Done():
	case <-time.After(testDeadline):
		t.Fatal("broker did not stop")
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	select {
	case <-httpDone:
	case <-time.After(testDeadline):
		t.Fatal("ingest connection not ended")
	}
	// Everything is released: the addresses can be bound again.
	for _, a := range []string{b.IngestAddr().String(), strings.TrimPrefix(b.NATSURL(), "nats://")} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s still bound: %v", a, err)
		}
		ln.Close()
	}
	pc, err := net.ListenPacket("udp", b.UDPAddrs()[0].String())
	if err != nil {
		t.Fatalf("udp still bound: %v", err)
	}
	pc.Close()
	nc.Close()
	// goleak (TestMain) checks that no goroutine is left.
}

func TestStartFailsFast(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"ingest addr in use", []string{"--ingest-addr", busy.Addr().String()}, "ingest listener"},
		{"udp addr in use", []string{"--udp-ingest", "cam=" + busyUDP.LocalAddr().String()}, "udp cam="},
		{"nats addr in use", []string{"--nats-listen", busy.Addr().String()}, "embedded nats"},
		{"whep without server", []string{"--whep-addr", "127.0.0.1:0"}, "no in-process WHEP server"},
		{"rtmp addr in use", []string{"--rtmp-addr", busy.Addr().String()}, `rtmp-addr ` + busy.Addr().String() + ` (another address, or --rtmp-addr "" to turn RTMP off)`},
		{"whip udp addr in use", []string{"--whip-udp-addr", busyUDP.LocalAddr().String()}, "whip-udp-addr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, c.args...)
			if c.name == "ingest addr in use" {
				cfg.IngestAddr = busy.Addr().String()
			}
			b, err := Start(t.Context(), cfg, testLogger(t), Options{ShutdownTimeout: 5 * time.Second})
			if err == nil {
				b.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestWHEPHook(t *testing.T) {
	type call struct {
		addr net.Addr
		nc   *nats.Conn
		cfg  config.WHEP
	}
	calls := make(chan call, 1)
	returned := make(chan struct{})
	serve := func(ctx context.Context, ln net.Listener, nc *nats.Conn, cfg config.WHEP, _ *slog.Logger) error {
		calls <- call{ln.Addr(), nc, cfg}
		<-ctx.Done()
		ln.Close()
		close(returned)
		return nil
	}
	cfg := testConfig(t, "--whep-addr", "127.0.0.1:0", "--start", "live")
	b := startBroker(t, cfg, Options{WHEP: serve})
	select {
	case c := <-calls:
		if c.addr.String() != b.WHEPAddr().String() || c.nc != b.Conn() || c.cfg.Start != "live" {
			t.Fatalf("WHEP called with %v %p %+v", c.addr, c.nc, c.cfg)
		}
	case <-time.After(testDeadline):
		t.Fatal("WHEP not started")
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	default:
		t.Fatal("Stop returned before the WHEP server")
	}
}

func TestPlayerURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"[::]:8889", "http://127.0.0.1:8889/"},
		{"0.0.0.0:8889", "http://127.0.0.1:8889/"},
		{"127.0.0.2:9000", "http://127.0.0.2:9000/"},
		{"[::1]:8889", "http://[::1]:8889/"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := playerURL(a); got != tc.want {
			t.Errorf("playerURL(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
