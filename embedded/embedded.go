// Package embedded runs a NATS server with JetStream inside the calling
// process, so that a single broker binary needs no external NATS deployment.
//
// Start returns once the server accepts connections and JetStream is enabled;
// Shutdown stops it and waits until it has released its listener, its store
// and its goroutines. The server never installs signal handlers and never
// exits the process: its fatal errors are returned by Start (or logged after
// start-up), and all its log lines go to the *slog.Logger of Config.
//
// Clients in the same process should use Connect, which makes an in-process
// connection (no TCP, no port); other processes connect to ClientURL. With
// Config.MonitorAddr set, the server also serves nats-server's HTTP
// monitoring endpoints (/varz, /jsz, /connz, ...) at MonitorURL, so that
// the usual NATS tools and exporters work as with any nats-server.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults applied by Start to a zero Config field.
const (
	DefaultHost       = "127.0.0.1"
	DefaultDataDir    = "./data"
	DefaultMaxPayload = 8 << 20 // 8 MiB
	// DefaultPort is the conventional NATS port. Start does not apply it
	// (Port 0 means a random free port); configuration layers use it as
	// their default.
	DefaultPort = 4222
	// NoListener as Port starts the server without any TCP listener: only
	// in-process connections (Connect) reach it.
	NoListener = -1
)

// maxPayloadLimit is the largest max_payload nats-server accepts.
const maxPayloadLimit = 64 << 20

// Config configures an embedded server.
type Config struct {
	// Host is the listen address of the client port (default 127.0.0.1).
	Host string
	// Port is the client TCP port: 0 picks a free port, NoListener (-1)
	// disables TCP. Callers that want the conventional port pass
	// DefaultPort explicitly.
	Port int
	// DataDir is the JetStream store directory (default ./data). The
	// server keeps its files in DataDir/jetstream.
	DataDir string
	// MaxPayload is the largest message (headers plus payload) the server
	// accepts (default 8 MiB, at most 64 MiB).
	MaxPayload int32
	// ServerName names the server in logs and in JetStream metadata
	// (optional; nats-server picks its ID otherwise).
	ServerName string
	// MonitorAddr is the host:port of nats-server's HTTP monitoring
	// endpoints (/varz, /jsz, ...); off when empty. Port 0 picks a free
	// port (see MonitorURL). The endpoints have no authentication: keep
	// the address private.
	MonitorAddr string
	// Logger receives the server's log lines (default: discarded).
	Logger *slog.Logger
}

// Server is a running embedded nats-server.
type Server struct {
	srv        *server.Server
	url        string
	monitorURL string
	logger     *slog.Logger
}

// Start starts a nats-server with JetStream enabled and returns once it is
// ready for connections. ctx bounds the start-up only: when it ends first,
// the half-started server is shut down and ctx's error is returned. An
// invalid Config, a port already in use or a store that cannot be opened
// return an error; nothing is left running in that case.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	opts, logger, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded nats: start: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: new server: %w", err)
	}
	sl := NewServerLogger(logger, nil)
	srv.SetLoggerV2(sl, logger.Enabled(context.Background(), slog.LevelDebug), false, false)

	// Start runs the start-up synchronously (JetStream included) and starts
	// the accept loop in the background; a failure is reported through
	// Fatalf, which our logger turns into an error.
	srv.Start()

	for {
		if err := sl.Fatal(); err != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats: start: %w", err)
		}
		if srv.ReadyForConnections(50*time.Millisecond) && srv.JetStreamEnabled() {
			break
		}
		if err := ctx.Err(); err != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats: not ready: %w", err)
		}
	}

	s := &Server{srv: srv, logger: logger}
	if !opts.DontListen {
		s.url = "nats://" + net.JoinHostPort(hostForURL(opts.Host), strconv.Itoa(listenPort(srv)))
	}
	if a := srv.MonitorAddr(); a != nil {
		s.monitorURL = "http://" + net.JoinHostPort(hostForURL(opts.HTTPHost), strconv.Itoa(a.Port))
	}
	logger.Info("embedded nats-server ready", "url", s.url, "store_dir", opts.StoreDir,
		"max_payload", opts.MaxPayload, "monitor_url", s.monitorURL)
	return s, nil
}

func serverOptions(cfg Config) (*server.Options, *slog.Logger, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	switch {
	case cfg.Port < NoListener || cfg.Port > 65535:
		return nil, nil, fmt.Errorf("embedded nats: port %d out of range (0 = random, -1 = no listener, 1-65535)", cfg.Port)
	case cfg.MaxPayload < 0 || cfg.MaxPayload > maxPayloadLimit:
		return nil, nil, fmt.Errorf("embedded nats: max payload %d out of range (1 to %d bytes)", cfg.MaxPayload, maxPayloadLimit)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded nats: data dir %q: %w", cfg.DataDir, err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		JetStream:  true,
		StoreDir:   dir,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
	}
	switch cfg.Port {
	case NoListener:
		opts.DontListen = true
	case 0:
		opts.Port = server.RANDOM_PORT
	default:
		opts.Port = cfg.Port
	}
	if cfg.MonitorAddr != "" {
		host, port, err := splitMonitorAddr(cfg.MonitorAddr)
		if err != nil {
			return nil, nil, err
		}
		opts.HTTPHost = host
		opts.HTTPPort = port
	}
	// A client connection must be able to buffer at least one message.
	if opts.MaxPending < int64(cfg.MaxPayload) {
		opts.MaxPending = max(int64(cfg.MaxPayload)*2, server.MAX_PENDING_SIZE)
	}
	return opts, logger.With("component", "nats-server"), nil
}

// splitMonitorAddr parses MonitorAddr into nats-server's HTTPHost and
// HTTPPort (server.RANDOM_PORT for port 0; an empty host listens on all
// interfaces, as net.Listen does).
func splitMonitorAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("embedded nats: monitor address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("embedded nats: monitor address %q: port out of range (0 = random, 1-65535)", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// listenPort is the bound client port (resolved when Port was 0).
func listenPort(srv *server.Server) int {
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// hostForURL maps wildcard listen addresses to loopback so that the URL can
// be dialled.
func hostForURL(h string) string {
	switch h {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::":
		return "::1"
	}
	return h
}

// ClientURL is the nats:// URL of the TCP listener, "" when the server was
// started with Port NoListener.
func (s *Server) ClientURL() string { return s.url }

// MonitorURL is the http:// URL of the monitoring endpoints (append /varz,
// /jsz, ...), "" when Config.MonitorAddr was empty.
func (s *Server) MonitorURL() string { return s.monitorURL }

// NATS returns the underlying nats-server, for monitoring or advanced use.
func (s *Server) NATS() *server.Server { return s.srv }

// Connect makes an in-process client connection (no TCP). The options are
// applied after the in-process dialer, so callers may set names, handlers
// and reconnect behaviour.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := make([]nats.Option, 0, len(opts)+1)
	all = append(all, nats.InProcessServer(s.srv))
	all = append(all, opts...)
	nc, err := nats.Connect(nats.DefaultURL, all...)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: in-process connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server: it closes the listener and every client
// connection, flushes and closes the JetStream store, and waits until the
// server has fully stopped or ctx ends (then ctx's error is returned and the
// shutdown continues in the background). It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		s.logger.Info("embedded nats-server stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded nats: shutdown: %w", errors.Join(ctx.Err(), errShutdownPending))
	}
}
