// Package rtmp receives RTMP publishers (OBS, ffmpeg, hardware encoders)
// and publishes their H.264 and Opus through ingest.Publications, as the
// MPEG-TS ingests do: same name validation, takeover, tokens and idle
// timeout, with "rtmp" as the source kind. AAC (as ADTS frames), MPEG
// audio and AC-3 reach the publication as an MPEG-TS source's do, for the
// transcoding stage; other codecs (H.265, AV1, VP9 of Enhanced RTMP) are
// announced, not published.
//
// rtmp://HOST/APP/{stream} publishes {stream}, the last path element; with
// ingest tokens, the stream key carries "?token=T". A player, a missing or
// wrong token, or an invalid stream name is refused at the publish command.
package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/whepcast/whepcast/pkg/bearer"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Defaults of Config.
const (
	// DefaultAddr is RTMP's registered port, on every interface: what
	// publishers use when their URL names no port.
	DefaultAddr = ":1935"
	DefaultIdle = ingest.DefaultIdleTimeout
	// MaxAnalysisBytes bounds what a publisher may send before its tracks
	// are known: gortmplib reads (and keeps) 2 s of media to find them.
	MaxAnalysisBytes = 32 << 20
	// DefaultHandshakeTimeout bounds the RTMP handshake and the commands up
	// to publish.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Config configures a Listener.
type Config struct {
	// Addr is the TCP address to listen on (":1935").
	Addr string
	// TLS, when set, makes the listener RTMPS.
	TLS *tls.Config
	// Tokens, when not empty, are the accepted ingest tokens: the stream key
	// must carry "?token=T" with T one of them.
	Tokens []string
	// Idle ends a publication that sends nothing for that long (default 30 s).
	Idle time.Duration
	// HandshakeTimeout bounds the time from the connection to the publish
	// command (default 10 s).
	HandshakeTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Listener accepts RTMP connections on one address and runs one publication
// per publishing connection.
type Listener struct {
	cfg    Config
	ln     net.Listener
	log    *slog.Logger
	tokens bearer.Set

	closeOnce sync.Once
	refused   atomic.Uint64
}

// Listen binds cfg.Addr. Serve accepts connections.
func Listen(cfg Config) (*Listener, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("rtmp: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	return &Listener{cfg: cfg, ln: ln, tokens: bearer.NewSet(cfg.Tokens...), log: log}, nil
}

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Refused returns how many connections were refused so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Close stops Serve and releases the address; Serve then ends the
// connections. It is safe to call more than once and concurrently with
// Serve.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.ln.Close() })
	return err
}

// Serve accepts connections and runs their publications in pubs until ctx
// is done or Close is called; then it ends the connections and returns nil
// once their publications have ended. A failing Accept is retried.
func (l *Listener) Serve(ctx context.Context, pubs *ingest.Publications) error {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	var running sync.WaitGroup
	defer running.Wait()
	defer cancel() // before Wait: ends the connections still in their handshake
	var pause time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, say: wait and accept again, as
			// net/http does, rather than end the listener.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.log.Warn("rtmp accept failed, retrying", "err", err, "retry_in", pause)
			select {
			case <-time.After(pause):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		pause = 0
		running.Add(1)
		go func() {
			defer running.Done()
			l.serveConn(ctx, pubs, conn)
		}()
	}
}

// serveConn runs one connection: the handshake up to the publish command,
// then the publication.
func (l *Listener) serveConn(ctx context.Context, pubs *ingest.Publications, conn net.Conn) {
	defer conn.Close()
	remote := conn.RemoteAddr().String()
	stopHandshake := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	_ = conn.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	rw := &connReader{Conn: conn, guard: newChunkGuard()}
	sc := &gortmplib.ServerConn{RW: rw}
	stream, err := l.accept(sc)
	stopped := !stopHandshake()
	if err != nil || stopped {
		l.refused.Add(1)
		l.log.Info("rtmp connection refused", "remote", remote, "err", err)
		return
	}
	_ = conn.SetDeadline(time.Time{})

	body := &deadlineBody{conn: conn, idle: l.cfg.Idle}
	src := ingest.Source{
		Kind: "rtmp", Remote: remote, Body: body, Interrupt: body.interrupt,
		Frames: func(ctx context.Context, counted io.Reader, h tsframes.Sink) error {
			rw.setReader(&boundedReader{r: counted, left: MaxAnalysisBytes})
			return frames(ctx, sc, h, func() { rw.setReader(counted) })
		},
	}
	sum, err := pubs.Ingest(ctx, stream, src)
	l.log.Debug("rtmp publication ended", "stream", stream, "remote", remote, "summary", sum.String(), "err", err)
}

// accept runs the handshake up to the publish command and accepts it, or
// refuses it (a player, a bad token or stream name): it returns the stream.
func (l *Listener) accept(sc *gortmplib.ServerConn) (string, error) {
	if err := sc.Initialize(); err != nil {
		return "", fmt.Errorf("rtmp handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		return "", fmt.Errorf("rtmp connect: %w", err)
	}
	refuse := func(err error) (string, error) {
		_ = sc.RejectAction()
		return "", err
	}
	if !sc.Publish {
		return refuse(fmt.Errorf("rtmp: %w", errPlay))
	}
	stream := path.Base(sc.URL.Path)
	if !l.tokens.Accepts(sc.URL.Query().Get("token")) {
		return refuse(fmt.Errorf("rtmp %s: %w", stream, ingest.ErrUnauthorized))
	}
	if err := bus.ValidateName(stream); err != nil {
		return refuse(fmt.Errorf("rtmp: %w", err))
	}
	if err := sc.AcceptAction(); err != nil {
		return "", fmt.Errorf("rtmp publish: %w", err)
	}
	return stream, nil
}

// connReader is the connection as gortmplib reads and writes it: reads come
// from the connection until the publication starts, then through the
// publication's counted Body; the chunk guard sees every byte first.
type connReader struct {
	net.Conn
	mu sync.Mutex
	r  io.Reader

	guard  *chunkGuard // owned by the reading goroutine
	broken error       // the guard's error: every later read fails with it
}

func (c *connReader) setReader(r io.Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.r = r
}

func (c *connReader) Read(p []byte) (int, error) {
	if c.broken != nil {
		return 0, c.broken
	}
	c.mu.Lock()
	r := c.r
	c.mu.Unlock()
	if r == nil {
		r = c.Conn
	}
	n, err := r.Read(p)
	if n > 0 && c.guard != nil {
		if gerr := c.guard.check(p[:n]); gerr != nil {
			c.broken = gerr
			return 0, gerr
		}
	}
	return n, err
}

// boundedReader reads at most left bytes from r, then fails with
// errAnalysisBound.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errAnalysisBound
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// deadlineBody is the Body of an RTMP publication: the connection, read
// with an idle timeout and interrupted, both through its read deadline.
type deadlineBody struct {
	conn net.Conn
	idle time.Duration

	mu          sync.Mutex
	interrupted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.interrupted {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.idle))
	}
	b.mu.Unlock()
	return b.conn.Read(p)
}

func (b *deadlineBody) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interrupted = true
	_ = b.conn.SetReadDeadline(time.Unix(1, 0))
}
