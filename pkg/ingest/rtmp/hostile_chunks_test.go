package rtmp

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
)

// rawHandshake does a client's plain RTMP handshake on conn: C0 and C1,
// then S0, S1 and S2 read, then C2.
func rawHandshake(t *testing.T, conn net.Conn) {
	t.Helper()
	c01 := make([]byte, 1+1536)
	c01[0] = 3
	if _, err := conn.Write(c01); err != nil {
		t.Fatal(err)
	}
	s012 := make([]byte, 1+2*1536)
	if _, err := io.ReadFull(conn, s012); err != nil {
		t.Fatalf("reading S0, S1, S2: %v", err)
	}
	if _, err := conn.Write(s012[1 : 1+1536]); err != nil { // C2 echoes S1
		t.Fatal(err)
	}
}

// amfBomb is an AMF0 command of size bytes of nested strict arrays: decoded
// recursively, it overflows the stack.
func amfBomb(size int) *rawmessage.Message {
	body := make([]byte, 0, size)
	for len(body)+5 <= size {
		body = append(body, 0x0a, 0, 0, 0, 1)
	}
	return &rawmessage.Message{ChunkStreamID: 3, Type: 20, Body: body}
}

// TestHostileChunkStreamsAreCut: after a valid handshake, a chunk size of 0
// or 2^31, an AMF command bomb (10 MiB of nested arrays: decoded, it would
// end the process), an AMF data message over the limit and a message of a
// type RTMP does not define each get their connection closed at once,
// counted as refused; a live publisher goes on undisturbed throughout.
func TestHostileChunkStreamsAreCut(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{HandshakeTimeout: testDeadline}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	p, err := dial(t, l, "live/cam1", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer p.c.Close()
	third := len(ref.Frames) / 3
	p.send(t, ref.Frames[:third])
	pub := rec.Opened(t, testDeadline)

	for _, c := range []struct {
		name string
		msgs []*rawmessage.Message
	}{
		{"chunk size 0", []*rawmessage.Message{setChunkSize(0), message(3, 20, 0, 100)}},
		{"chunk size 2^31", []*rawmessage.Message{setChunkSize(1 << 31), message(3, 20, 0, 100)}},
		{"AMF bomb", []*rawmessage.Message{setChunkSize(1 << 16), amfBomb(10 << 20)}},
		{"AMF data over the limit", []*rawmessage.Message{message(5, 18, 0, MaxAMFMessage+1)}},
		{"unknown message type", []*rawmessage.Message{message(7, 0x7f, 0, 10)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := l.Refused()
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(testDeadline))
			rawHandshake(t, conn)
			// The server may close before all is written: write errors are
			// expected.
			go func() { _, _ = conn.Write(chunked(t, c.msgs)[handshakeBytes:]) }()
			if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server did not close the connection")
			}
			if got := l.Refused(); got != before+1 {
				t.Fatalf("refused %d, want %d", got, before+1)
			}
		})
	}
	p.send(t, ref.Frames[third:])
	p.c.Close()
	pub.WaitEnded(t, testDeadline)
	if got := len(pub.Frames()); got != len(ref.Frames) {
		t.Errorf("the live publisher published %d frames, want %d", got, len(ref.Frames))
	}
}
