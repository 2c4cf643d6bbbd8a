// Package srt receives MPEG-TS over SRT (listener mode) and publishes it
// through ingest.Publications, as the HTTP and UDP ingests do: same demuxer,
// name validation, takeover and idle timeout, with "srt" as the source kind.
//
// A caller chooses its stream with its streamid (publish:{stream}, or
// #!::r={stream},m=publish). A malformed or non-publishing streamid, a
// missing or wrong ingest token, a wrong or missing passphrase, or an
// invalid stream name is refused in the handshake; other connections are
// not affected.
package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/whepcast/whepcast/pkg/bearer"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
)

// Defaults of Config.
const (
	DefaultLatency = 120 * time.Millisecond
	DefaultIdle    = ingest.DefaultIdleTimeout
)

// Config configures a Listener.
type Config struct {
	// Addr is the UDP address to listen on (":8890").
	Addr string
	// Passphrase, when set, is required of every caller (SRT encryption);
	// SRT wants 10 to 79 characters. When empty, encrypted callers are
	// refused.
	Passphrase string
	// Latency is the receiver latency (SRT's TSBPD delay; default 120 ms).
	// A caller asking for more gets its own.
	Latency time.Duration
	// Tokens, when not empty, are the accepted ingest tokens: the streamid
	// must carry "?token=T" with T one of them.
	Tokens []string
	// Idle ends a publication that sends no data for that long (default 30 s).
	Idle time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Listener accepts SRT callers on one address and runs one publication per
// connection.
type Listener struct {
	cfg    Config
	ln     gosrt.Listener
	log    *slog.Logger
	tokens bearer.Set

	closeOnce sync.Once
	refused   atomic.Uint64
}

// Listen binds cfg.Addr. Serve accepts callers.
func Listen(cfg Config) (*Listener, error) {
	if cfg.Latency <= 0 {
		cfg.Latency = DefaultLatency
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if n := len(cfg.Passphrase); n != 0 && (n < 10 || n > 79) {
		return nil, fmt.Errorf("srt: the passphrase has %d characters, SRT wants 10 to 79", n)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := gosrt.DefaultConfig()
	c.Latency = cfg.Latency
	ln, err := gosrt.Listen("srt", cfg.Addr, c)
	if err != nil {
		return nil, fmt.Errorf("srt: listening on %s: %w", cfg.Addr, err)
	}
	return &Listener{cfg: cfg, ln: ln, tokens: bearer.NewSet(cfg.Tokens...), log: log}, nil
}

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Refused returns how many connection requests were refused so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Close stops Serve, closes every connection and releases the address. It is
// safe to call more than once and concurrently with Serve.
func (l *Listener) Close() error {
	l.closeOnce.Do(l.ln.Close)
	return nil
}

// Serve accepts callers and runs their publications in pubs until ctx is
// done or Close is called; then it closes the connections and returns nil
// once their publications have ended.
func (l *Listener) Serve(ctx context.Context, pubs *ingest.Publications) error {
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	var running sync.WaitGroup
	defer running.Wait()
	for {
		req, err := l.ln.Accept2()
		if err != nil {
			_ = l.Close() // the connections end with the listener
			if errors.Is(err, gosrt.ErrListenerClosed) {
				return nil
			}
			return fmt.Errorf("srt: accepting on %s: %w", l.cfg.Addr, err)
		}
		stream, err := l.admit(req)
		if err != nil {
			l.refused.Add(1)
			continue
		}
		conn, err := req.Accept()
		if err != nil {
			l.refused.Add(1)
			l.log.Info("srt connection failed", "stream", stream, "remote", req.RemoteAddr().String(), "err", err)
			continue
		}
		running.Add(1)
		go func() {
			defer running.Done()
			l.publish(ctx, pubs, stream, conn)
		}()
	}
}

// admit checks a connection request: its streamid, token, stream name and
// passphrase. A refusal is answered in the handshake with the SRT rejection
// reason for it, and logged.
func (l *Listener) admit(req gosrt.ConnRequest) (string, error) {
	remote := req.RemoteAddr().String()
	refuse := func(reason gosrt.RejectionReason, err error) (string, error) {
		req.Reject(reason)
		l.log.Info("srt connection refused", "remote", remote, "streamid", req.StreamId(), "reason", uint32(reason), "err", err)
		return "", err
	}
	if req.Version() < 5 {
		return refuse(gosrt.REJ_VERSION, errors.New("SRT handshake version 4 carries no streamid"))
	}
	r, err := parseStreamID(req.StreamId())
	switch {
	case errors.Is(err, errMode):
		return refuse(gosrt.REJX_BAD_MODE, err)
	case err != nil:
		return refuse(gosrt.REJX_BAD_REQUEST, err)
	}
	if !l.tokens.Accepts(r.token) {
		return refuse(gosrt.REJX_UNAUTHORIZED, ingest.ErrUnauthorized)
	}
	if err := bus.ValidateName(r.stream); err != nil {
		return refuse(gosrt.REJX_BAD_REQUEST, err)
	}
	switch {
	case l.cfg.Passphrase == "" && req.IsEncrypted():
		return refuse(gosrt.REJ_UNSECURE, errors.New("encrypted, but no passphrase is configured"))
	case l.cfg.Passphrase != "" && !req.IsEncrypted():
		return refuse(gosrt.REJ_UNSECURE, errors.New("not encrypted, but a passphrase is required"))
	case l.cfg.Passphrase != "":
		if err := req.SetPassphrase(l.cfg.Passphrase); err != nil {
			return refuse(gosrt.REJ_BADSECRET, fmt.Errorf("wrong passphrase: %w", err))
		}
	}
	return r.stream, nil
}

// publish runs the publication of one connection until it ends, and closes
// the connection.
func (l *Listener) publish(ctx context.Context, pubs *ingest.Publications, stream string, conn gosrt.Conn) {
	body := newConnBody(conn, l.cfg.Idle)
	defer body.close()
	src := ingest.Source{Kind: "srt", Remote: conn.RemoteAddr().String(), Body: body, Interrupt: body.interrupt}
	sum, err := pubs.Ingest(ctx, stream, src)
	l.log.Debug("srt publication ended", "stream", stream, "remote", src.Remote, "summary", sum.String(), "err", err)
}

// connBody is the Body of an SRT publication. gosrt's deadlines do nothing,
// so the idle timeout and Interrupt close the connection; a Read then ends
// with errIdle or with io.EOF (interrupted, which the publication knows).
type connBody struct {
	conn  gosrt.Conn
	idle  time.Duration
	timer *time.Timer
	idled atomic.Bool
	once  sync.Once
}

func newConnBody(conn gosrt.Conn, idle time.Duration) *connBody {
	b := &connBody{conn: conn, idle: idle}
	b.timer = time.AfterFunc(idle, func() {
		b.idled.Store(true)
		b.close()
	})
	return b
}

func (b *connBody) Read(p []byte) (int, error) {
	n, err := b.conn.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err == io.EOF && b.idled.Load() {
		return n, fmt.Errorf("%w for %s", errIdle, b.idle)
	}
	return n, err
}

func (b *connBody) interrupt() { b.close() }

func (b *connBody) close() {
	b.once.Do(func() {
		b.timer.Stop()
		_ = b.conn.Close()
	})
}
