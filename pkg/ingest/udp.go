package ingest

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
)

// UDPConfig configures a UDPListener.
type UDPConfig struct {
	// Stream is the stream the datagrams are published as.
	Stream string
	// Addr is the UDP address to listen on.
	Addr string
	// Idle is the silence that ends a publication (default 5 s).
	Idle time.Duration
	// Queue is how many datagrams may wait for the demuxer before new ones
	// are dropped (default 4096, about 5 MB of 1316-byte datagrams).
	Queue int
	// Logger; nil discards.
	Logger *slog.Logger
}

// retryAfterError is how long datagrams are dropped after a publication
// failed (publisher unavailable, ...), before the next one starts a new
// publication.
const retryAfterError = time.Second

// UDPListener receives MPEG-TS datagrams on one address for one stream,
// each a burst of 188-byte TS packets (typically 7: 1316 bytes).
//
// The first datagram starts a publication; a silence of UDPConfig.Idle ends
// it as if a body had ended, and the next datagram starts a new publication
// with a new epoch. A publication that is taken over (by an HTTP publisher
// of the same stream, say) leaves the listener muted: datagrams are dropped
// until the sender has been silent for Idle, so that two sources do not
// take the stream from each other back and forth. Datagrams arriving faster
// than the demuxer consumes them are dropped once UDPConfig.Queue are
// waiting.
type UDPListener struct {
	cfg  UDPConfig
	conn net.PacketConn
	log  *slog.Logger

	closeOnce sync.Once
	closed    chan struct{}

	received atomic.Uint64
}

// Datagrams returns the number of datagrams read so far (including those
// dropped afterwards).
func (l *UDPListener) Datagrams() uint64 { return l.received.Load() }

// ListenUDP binds cfg.Addr. Serve starts receiving.
func ListenUDP(cfg UDPConfig) (*UDPListener, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ingest: udp %s=%s: %w", cfg.Stream, cfg.Addr, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20) // best effort: the kernel may cap it
	}
	return &UDPListener{cfg: cfg, conn: conn, log: log.With("stream", cfg.Stream), closed: make(chan struct{})}, nil
}

// Addr returns the bound address.
func (l *UDPListener) Addr() net.Addr { return l.conn.LocalAddr() }

// Close stops Serve and releases the address. It is safe to call more than
// once and concurrently with Serve.
func (l *UDPListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.conn.Close()
	})
	return err
}

// Serve receives datagrams and runs publications in pubs until ctx is done
// or Close is called (then it returns nil, after its last publication has
// ended), or the socket fails.
func (l *UDPListener) Serve(ctx context.Context, pubs *Publications) error {
	var running sync.WaitGroup
	serveDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = l.Close()
		case <-l.closed:
		case <-serveDone:
		}
	}()

	var (
		cur        *udpBody
		muted      bool      // taken over: drop until the sender is idle
		retryAt    time.Time // failed: drop until then
		buf        = make([]byte, 64<<10)
		serveError error
	)
	for {
		_ = l.conn.SetReadDeadline(time.Now().Add(l.cfg.Idle))
		n, peer, err := l.conn.ReadFrom(buf)
		if err == nil {
			l.received.Add(1)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if cur != nil {
					cur.end() // the body ends: the publication finishes normally
					cur = nil
				}
				muted = false
				continue
			}
			select {
			case <-l.closed:
			default:
				serveError = fmt.Errorf("ingest: udp %s: %w", l.cfg.Addr, err)
			}
			break
		}
		if cur != nil {
			select {
			case <-cur.done:
				if errors.Is(cur.err, ErrTakenOver) {
					muted = true
					l.log.Info("udp ingest taken over: dropping datagrams until the sender is idle", "epoch", cur.sum.Epoch, "idle", l.cfg.Idle)
				} else if cur.err != nil {
					retryAt = time.Now().Add(retryAfterError)
				}
				cur = nil
			default:
			}
		}
		if muted || time.Now().Before(retryAt) {
			continue
		}
		if cur == nil {
			cur = newUDPBody(l.cfg.Queue)
			running.Add(1)
			go func(s *udpBody, remote string) {
				defer running.Done()
				defer close(s.done)
				s.sum, s.err = pubs.Ingest(ctx, l.cfg.Stream, Source{Kind: "udp", Remote: remote, Body: s, Interrupt: s.interrupt})
				if d := s.dropped.Load(); d > 0 {
					l.log.Warn("udp datagrams dropped: the demuxer fell behind", "epoch", s.sum.Epoch, "dropped", d)
				}
			}(cur, peer.String())
		}
		d := make([]byte, n)
		copy(d, buf[:n])
		select {
		case cur.q <- d:
		default:
			cur.dropped.Add(1)
			pubs.metrics.stream(l.cfg.Stream).udpDropped.Inc()
		}
	}
	close(serveDone)
	if cur != nil {
		cur.end()
	}
	running.Wait()
	return serveError
}

// udpBody is the Body of one UDP publication: the queued datagrams.
type udpBody struct {
	q        chan []byte
	endOnce  sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when Ingest returned (then sum, err are set)
	sum      Summary
	err      error
	dropped  atomic.Uint64
	cur      []byte // owned by the reading goroutine
}

func newUDPBody(queue int) *udpBody {
	return &udpBody{q: make(chan []byte, queue), stop: make(chan struct{}), done: make(chan struct{})}
}

// end makes Read return io.EOF once the queued datagrams are read. Only the
// Serve goroutine calls it (it is the only sender on q).
func (s *udpBody) end() { s.endOnce.Do(func() { close(s.q) }) }

func (s *udpBody) interrupt() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *udpBody) Read(p []byte) (int, error) {
	if len(s.cur) == 0 {
		select {
		case <-s.stop:
			return 0, errInterrupted
		default:
		}
		select {
		case d, ok := <-s.q:
			if !ok {
				return 0, io.EOF
			}
			s.cur = d
		case <-s.stop:
			return 0, errInterrupted
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}
