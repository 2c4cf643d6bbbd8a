package srt

import (
	"context"
	"errors"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest"
)

func TestMain(m *testing.M) {
	// gosrt's Dial leaves its socket reader blocked on a channel nobody
	// reads when the server refuses the handshake: the test's client, not
	// the Listener.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/datarhei/gosrt.DialWithContext.func1"))
}

// testDeadline bounds every wait of a test.
const testDeadline = 20 * time.Second

// serve starts a Listener on a loopback port, serving pubs until the test
// ends.
func serve(t *testing.T, cfg Config, pubs *ingest.Publications) *Listener {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	l, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ingesttest.Serve(t, func(ctx context.Context) error { return l.Serve(ctx, pubs) })
	return l
}

func dial(l *Listener, streamID, passphrase string) (gosrt.Conn, error) {
	c := gosrt.DefaultConfig()
	c.StreamId = streamID
	c.Passphrase = passphrase
	c.ConnectionTimeout = 5 * time.Second
	return gosrt.Dial("srt", l.Addr().String(), c)
}

// send writes data in 1316-byte packets (7 TS packets, ffmpeg's pkt_size),
// one every 200 µs (53 Mb/s): a live SRT sender paces its packets, and one
// that does not overruns the sender's buffer.
func send(t *testing.T, conn gosrt.Conn, data []byte) {
	t.Helper()
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for len(data) > 0 {
		<-tick.C
		n := min(len(data), 1316)
		if _, err := conn.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// waitBytes waits until the live publication of stream has read n bytes.
func waitBytes(t *testing.T, pubs *ingest.Publications, stream string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		for _, p := range pubs.Live() {
			if p.Stream == stream && p.Bytes >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publication of %s did not read %d bytes: %+v", stream, n, pubs.Live())
		}
		time.Sleep(10 * time.Millisecond) // polling the publication's byte count
	}
}

func TestPublishesTheDemuxedFixture(t *testing.T) {
	for _, id := range []string{"publish:cam1", "#!::r=cam1,m=publish"} {
		t.Run(id, func(t *testing.T) {
			rec := ingesttest.NewRecorder()
			pubs := rec.Publications(t)
			l := serve(t, Config{}, pubs)
			data := tstest.Read(t, "av.ts")
			want := tstest.Demux(t, data)

			conn, err := dial(l, id, "")
			if err != nil {
				t.Fatal(err)
			}
			send(t, conn, data)
			waitBytes(t, pubs, "cam1", uint64(len(data)))
			_ = conn.Close()

			p := rec.Opened(t, testDeadline)
			p.WaitEnded(t, testDeadline)
			if p.Stream != "cam1" {
				t.Errorf("stream %q, want cam1", p.Stream)
			}
			if anns := p.Announcements(); len(anns) == 0 || len(anns[0].Tracks) != len(want.Announcements[0].Tracks) {
				t.Errorf("announcements %+v, want %+v", anns, want.Announcements)
			}
			tstest.SameFramesPerTrack(t, p.Frames(), want.Frames)
		})
	}
}

func TestRefusesInTheHandshake(t *testing.T) {
	const pass = "0123456789abc"
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Passphrase: pass, Tokens: []string{"s3cret"}}, pubs)

	cases := []struct{ name, id, pass string }{
		{"wrong passphrase", "publish:cam1?token=s3cret", "9876543210xyz"},
		{"no passphrase", "publish:cam1?token=s3cret", ""},
		{"unknown streamid", "cam1", pass},
		{"reading", "#!::r=cam1,m=request", pass},
		{"no token", "publish:cam1", pass},
		{"wrong token", "publish:cam1?token=nope", pass},
		{"invalid name", "publish:a.b?token=s3cret", pass},
	}
	for _, c := range cases {
		conn, err := dial(l, c.id, c.pass)
		if err == nil {
			conn.Close()
			t.Errorf("%s: connected", c.name)
		}
	}

	// A good caller is served all the same.
	conn, err := dial(l, "publish:cam1?token=s3cret", pass)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send(t, conn, tstest.Read(t, "av.ts"))
	p := rec.Opened(t, testDeadline)
	p.WaitFrames(t, 10, testDeadline)
	if rec.Count() != 1 {
		t.Errorf("%d publications, want 1", rec.Count())
	}
}

func TestIdleSenderEndsItsPublication(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Idle: 300 * time.Millisecond}, pubs)
	data := tstest.Read(t, "av.ts")

	conn, err := dial(l, "publish:cam1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send(t, conn, data[:len(data)/2]) // then nothing, the connection kept open
	p := rec.Opened(t, testDeadline)
	p.WaitEnded(t, testDeadline)
	// The publication leaves the live list as it ends: wait for that, bounded.
	deadline := time.Now().Add(testDeadline)
	for len(pubs.Live()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("live %v after the idle timeout: %+v", testDeadline, pubs.Live())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTakeoverBySecondCaller(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	data := tstest.Read(t, "av.ts")

	first, err := dial(l, "publish:cam1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	send(t, first, data[:len(data)/2])
	p1 := rec.Opened(t, testDeadline)
	p1.WaitFrames(t, 1, testDeadline)

	second, err := dial(l, "publish:cam1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	send(t, second, data)
	p2 := rec.Opened(t, testDeadline)
	p1.WaitEnded(t, testDeadline)
	p2.WaitFrames(t, 10, testDeadline)
	if p2.Epoch <= p1.Epoch {
		t.Errorf("epoch %d after %d", p2.Epoch, p1.Epoch)
	}
}

func TestListenRejectsAShortPassphrase(t *testing.T) {
	_, err := Listen(Config{Addr: "127.0.0.1:0", Passphrase: "short"})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
