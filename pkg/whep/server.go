package whep

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is a WHEP server: create it with New, serve Handler, stop it with
// Shutdown (graceful) and Close.
type Server struct {
	cfg        Config
	logger     *slog.Logger
	conn       *nats.Conn
	catalog    Catalog
	media      Media
	tokens     tokens
	ice        *iceNet
	iceServers []webrtc.ICEServer
	links      []string
	sessions   *sessionTable
	metrics    *metrics
	registerer prometheus.Registerer
	fwd        *forwarder
	events     *eventNotifier
	drain      drainState

	// wg counts the goroutines the server started (session run loops,
	// forwarded requests).
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New checks cfg, binds the ICE listeners (ICEUDPAddr, ICETCPAddr), reads
// the token file, registers the metrics and, with deps.Conn, subscribes to
// this node's forwarding subject. Errors wrap ErrInvalidConfig for a bad
// Config or Deps; a listener that cannot be bound or a failed subscription
// is returned as is. Nothing is left running on error.
func New(cfg Config, deps Deps) (_ *Server, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: drain timeout must be >= 0", ErrInvalidConfig)
	}
	if deps.Catalog == nil || deps.Media == nil {
		return nil, fmt.Errorf("%w: Deps.Catalog and Deps.Media are required", ErrInvalidConfig)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	s := &Server{
		cfg:        cfg,
		logger:     logger,
		conn:       deps.Conn,
		catalog:    deps.Catalog,
		media:      deps.Media,
		registerer: deps.Registerer,
		sessions:   newSessionTable(cfg),
	}
	s.drain.init()
	if s.tokens, err = loadTokens(cfg.Tokens, cfg.TokenFile); err != nil {
		return nil, err
	}
	s.events = newEventNotifier(eventNotifierConfig{
		sessions:       s.sessions,
		catalog:        s.catalog,
		conn:           s.conn,
		tokens:         s.tokens,
		nodeID:         cfg.NodeID,
		forwardTimeout: cfg.ForwardTimeout,
		logger:         logger,
	})
	if s.iceServers, s.links, err = iceServers(cfg.ICEServers); err != nil {
		return nil, err
	}
	if s.ice, err = newICENet(cfg, logger); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.ice.close()
		}
	}()
	s.metrics = newMetrics(s.sessions)
	if s.registerer != nil {
		if err = s.metrics.register(s.registerer); err != nil {
			return nil, fmt.Errorf("whep: metrics: %w", err)
		}
		defer func() {
			if err != nil {
				s.metrics.unregister(s.registerer)
			}
		}()
	}
	if s.conn != nil {
		if s.fwd, err = newForwarder(s.conn, cfg.NodeID, cfg.ForwardTimeout, logger, s.sessionOp); err != nil {
			return nil, err
		}
		if err = s.events.subscribe(); err != nil {
			s.fwd.stop()
			return nil, err
		}
	}
	logger.Info("whep server ready", "ice_udp", addrStrings(s.ice.udpAddrs), "ice_tcp", s.ice.tcpAddr,
		"auth", !s.tokens.Open())
	return s, nil
}

// NodeID returns the node id of the server's sessions.
func (s *Server) NodeID() string { return s.cfg.NodeID }

// ICEUDPAddrs returns the addresses of the shared ICE UDP port.
func (s *Server) ICEUDPAddrs() []net.Addr { return append([]net.Addr(nil), s.ice.udpAddrs...) }

// Handler returns the WHEP handler. It serves paths under /whep/ only; mount
// it on "/whep/" of the node's mux.
func (s *Server) Handler() http.Handler {
	return s.cors(http.HandlerFunc(s.route))
}

// Shutdown stops the server gracefully: it stops taking sessions and waits
// until none is left or ctx ends. POSTs are answered 503 with Retry-After
// from the first call on, held POSTs are woken with that answer, and Ready
// fails. Existing sessions, PATCH, DELETE and their event streams go on;
// every event stream gets a reconnect event (and so does one opened later),
// which sends its player to another node. With Config.DrainTimeout, the
// sessions still open when it has passed are closed. Shutdown returns nil
// once no session is left, or ctx's error; the sessions left then stay
// open until Close. It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	select {
	case <-s.drain.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("whep: shutdown: %w", ctx.Err())
	}
}

// beginShutdown is Shutdown without the wait.
func (s *Server) beginShutdown() {
	s.sessions.drain(errDraining)
	s.startDrain()
}

// Ready returns nil while the server takes sessions: not draining, and the
// NATS connection (when there is one) is connected.
func (s *Server) Ready() error {
	if s.sessions.isDraining() {
		return errDraining
	}
	if s.conn != nil && !s.conn.IsConnected() {
		return fmt.Errorf("whep: NATS is %s", s.conn.Status())
	}
	return nil
}

// closeWait bounds how long Close waits for the server's goroutines.
const closeWait = 10 * time.Second

// Close stops the server now: it refuses every new request, stops
// answering forwarded requests, closes every session (ending its event
// streams), ends the event streams it relays for other nodes, closes the
// ICE listeners and unregisters the metrics. It waits for the server's
// goroutines, at most closeWait (10 s; an error then). A Shutdown in
// progress returns. The caller shuts its http.Server down too. Close is
// idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stopDrain()
		s.sessions.drain(ErrClosed)
		if s.fwd != nil {
			s.fwd.stop()
		}
		var wg sync.WaitGroup
		for _, ss := range s.sessions.list() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ss.close(reasonShutdown)
			}()
		}
		s.events.shutdown()
		done := make(chan struct{})
		go func() {
			wg.Wait()
			s.wg.Wait()
			close(done)
		}()
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			err = fmt.Errorf("whep: close: goroutines still running after %v", closeWait)
		}
		s.checkDrained()
		s.ice.close()
		if s.registerer != nil {
			s.metrics.unregister(s.registerer)
		}
		s.logger.Info("whep server closed")
	})
	return err
}

// The Server is its sessions' sessionOwner.

func (s *Server) leave(ss *session) { s.metrics.removeSession(s.sessions, ss) }

func (s *Server) closed(ss *session, reason string) {
	s.metrics.sessionClosed(reason, ss.started.Load())
	s.events.sessionClosed(ss, reason)
	s.checkDrained()
}

func (s *Server) firstPacket(ss *session) {
	s.metrics.firstFrame.WithLabelValues(ss.stream).Observe(time.Since(ss.created).Seconds())
}

func (s *Server) runDone() { s.wg.Done() }

func addrStrings(as []net.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
