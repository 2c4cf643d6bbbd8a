package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/node"
	"github.com/whepcast/whepcast/pkg/whep"
)

// hostileAnswerBudget bounds how long a refusal of bad input may take.
const hostileAnswerBudget = 2 * time.Second

// TestFaultHostileInput sends a broker (ingest and in-process WHEP) what an
// attacker would: stream names that carry NATS subject tokens or encoded
// dots (400 at once, and no JetStream stream or consumer created), huge
// headers (431), and request bodies that stall or trickle (4xx within the
// server's body timeout).
func TestFaultHostileInput(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	b := startBroker(t, ctx, broker.Options{WHEP: node.Serve}, "--nats-listen", "", "--data-dir", t.TempDir(),
		"--whep-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0")
	ingestAddr, whepAddr := b.IngestAddr().String(), b.WHEPAddr().String()
	// Ready: the WHEP server has opened (created) the catalog.
	if resp, body := whepDo(t, ctx, http.MethodGet, "http://"+whepAddr+"/readyz", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d %q", resp.StatusCode, body)
	}
	offer := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio).offer(t)
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	state := jetStreamState(t, ctx, js)
	tsPacket := "\x47" + strings.Repeat("\xff", 187)

	t.Run("attacks", func(t *testing.T) {
		t.Run("stream names", func(t *testing.T) {
			t.Parallel()
			names := []string{"a.b", "a%2Eb", "a%2eb", "a.%3E", "*", "%2A", ">", "%3E", "a%20b", "a%09b", "%00",
				"%C3%A9t%C3%A9", strings.Repeat("a", 65)}
			for _, name := range names {
				for _, r := range []struct{ addr, head, body string }{
					{ingestAddr, "PUT /ingest/" + name + " HTTP/1.1\r\nHost: x\r\nContent-Length: 188\r\n\r\n", tsPacket},
					{whepAddr, "POST /whep/" + name + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: " +
						fmt.Sprint(len(offer)) + "\r\n\r\n", offer},
				} {
					c := dialRaw(t, ctx, r.addr)
					c.write(t, r.head+r.body)
					code, took := c.response(t, ctx)
					if code != http.StatusBadRequest || took > hostileAnswerBudget {
						t.Errorf("%q: %d after %v, want 400 within %v", strings.Fields(r.head)[0]+" "+strings.Fields(r.head)[1], code, took, hostileAnswerBudget)
					}
				}
			}
		})
		t.Run("session ids", func(t *testing.T) {
			t.Parallel()
			// A session id names the node whose NATS subject serves it:
			// one that is not NODE.RANDOM is not found, nothing is sent.
			for _, id := range []string{"*", "%3E", "*.x", "%3E.x", "a%2Eb.c", "n1.%2A", "n1.a.b", "..", strings.Repeat("n", 65) + ".x"} {
				for _, method := range []string{http.MethodDelete, http.MethodPatch} {
					c := dialRaw(t, ctx, whepAddr)
					c.write(t, method+" /whep/cam/"+id+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/trickle-ice-sdpfrag\r\nContent-Length: 0\r\n\r\n")
					if code, took := c.response(t, ctx); code != http.StatusNotFound || took > hostileAnswerBudget {
						t.Errorf("%s /whep/cam/%s: %d after %v, want 404", method, id, code, took)
					}
				}
			}
		})
		t.Run("huge headers", func(t *testing.T) {
			t.Parallel()
			big := "X-Big: " + strings.Repeat("a", 2<<20) + "\r\n"
			for _, r := range []struct{ addr, line string }{
				{ingestAddr, "PUT /ingest/cam HTTP/1.1"},
				{ingestAddr, "GET /metrics HTTP/1.1"},
				{whepAddr, "POST /whep/cam HTTP/1.1"},
				{whepAddr, "GET /readyz HTTP/1.1"},
			} {
				c := dialRaw(t, ctx, r.addr)
				go c.writeQuietly(r.line + "\r\nHost: x\r\n" + big + "\r\n")
				if code, took := c.response(t, ctx); code != http.StatusRequestHeaderFieldsTooLarge || took > hostileAnswerBudget {
					t.Errorf("%s with 2 MiB of headers: %d after %v, want 431", r.line, code, took)
				}
			}
		})
		t.Run("WHEP body stalls", func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, ctx, whepAddr)
			c.write(t, fmt.Sprintf("POST /whep/cam HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
				len(offer), offer[:len(offer)/2]))
			checkBodyTimeout(t, ctx, c, whep.DefaultBodyTimeout)
		})
		t.Run("WHEP body trickles", func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, ctx, whepAddr)
			c.write(t, fmt.Sprintf("POST /whep/cam HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n",
				len(offer)))
			// One byte every 500 ms: the deadline is for the whole body.
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(500 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < len(offer); i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if !c.writeQuietly(offer[i : i+1]) {
						return
					}
				}
			}()
			checkBodyTimeout(t, ctx, c, whep.DefaultBodyTimeout)
			close(stop)
			<-done
		})
		t.Run("ingest body stalls", func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, ctx, ingestAddr)
			c.write(t, "PUT /ingest/slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
				fmt.Sprintf("%x\r\n%s\r\n", 2*len(tsPacket), tsPacket+tsPacket))
			checkBodyTimeout(t, ctx, c, ingest.DefaultIdleTimeout)
		})
	})
	// No stream was created: the valid name "slow" sent no access unit
	// before its body stalled, so its publication never went live.
	if got, want := jetStreamState(t, ctx, js), state; got != want {
		t.Fatalf("JetStream after the hostile requests: %q, want %q", got, want)
	}
}

// checkBodyTimeout waits for the answer to a request whose body stalls: a
// 4xx that comes when the server's body timeout expires.
func checkBodyTimeout(t *testing.T, ctx context.Context, c *rawConn, timeout time.Duration) {
	t.Helper()
	code, took := c.response(t, ctx)
	t.Logf("answered %d after %v (body timeout %v)", code, took.Round(time.Millisecond), timeout)
	if code < 400 || code > 499 || took < timeout-time.Second || took > timeout+hostileAnswerBudget {
		t.Fatalf("stalled body: %d after %v, want a 4xx after the %v body timeout", code, took, timeout)
	}
}

// rawConn is a TCP connection to an HTTP server on which a test writes
// raw bytes, and whose first response is read in the background.
type rawConn struct {
	conn  net.Conn
	start time.Time
	resp  chan rawResponse
}

type rawResponse struct {
	code int
	at   time.Time
	err  error
}

func dialRaw(t *testing.T, ctx context.Context, addr string) *rawConn {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawConn{conn: conn, start: time.Now(), resp: make(chan rawResponse, 1)}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			c.resp <- rawResponse{err: err, at: time.Now()}
			return
		}
		resp.Body.Close()
		c.resp <- rawResponse{code: resp.StatusCode, at: time.Now()}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-c.resp
	})
	return c
}

func (c *rawConn) write(t *testing.T, s string) {
	t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	c.start = time.Now()
}

// writeQuietly writes s and reports whether it could (the server may close
// the connection first).
func (c *rawConn) writeQuietly(s string) bool {
	_, err := c.conn.Write([]byte(s))
	return err == nil
}

// response waits for the response and returns its status and how long it
// took since the last write of the request's head.
func (c *rawConn) response(t *testing.T, ctx context.Context) (int, time.Duration) {
	t.Helper()
	select {
	case r := <-c.resp:
		c.resp <- r // for the cleanup
		if r.err != nil {
			t.Fatalf("no response: %v", r.err)
		}
		return r.code, r.at.Sub(c.start)
	case <-ctx.Done():
		t.Fatal("no response in time")
		return 0, 0
	}
}
