package natstest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/whepcast/whepcast/embedded"
)

// pollInterval is how often readiness is polled (through the servers'
// monitoring endpoints, in process or not).
const pollInterval = 50 * time.Millisecond

// clusterSeq numbers the clusters of this process (default names).
var clusterSeq atomic.Int64

// Cluster is a running test cluster. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg     Config
	ports   []ports
	servers []*server
	http    *http.Client
	trust   *trust // JWT mode
}

// server is one nats-server of the cluster.
type server struct {
	i        int
	conf     string // configuration file
	logPath  string
	mu       sync.Mutex
	cmd      *exec.Cmd
	ns       *natsserver.Server     // in-process, instead of cmd
	logger   *embedded.ServerLogger // ns's
	exited   chan struct{}          // closed when cmd (ns) has exited
	exitErr  error
	stopping bool
}

// Start writes the configurations, starts every server and waits until the
// cluster is ready (see WaitReady: every server's /healthz reports
// JetStream enabled and current with a meta leader, and all agree on that
// leader), bounded by ctx. Only loopback addresses are used: client, route
// and monitoring ports are picked free on 127.0.0.1 and kept across
// restarts. Child processes get a parent-death signal on Linux, so they die
// with the test process. On error every server that was started is killed.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, cfg)
		if err == nil || attempt == startAttempts || !portTaken(err) || ctx.Err() != nil {
			return c, err
		}
		// A port picked free was taken before a server listened on it:
		// again, from clean directories, with other ports.
		for i := range cmp.Or(cfg.Servers, DefaultServers) {
			if rerr := os.RemoveAll(filepath.Join(cfg.Dir, serverName(i))); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
	}
}

// startAttempts bounds Start's attempts when a port it picked is taken.
const startAttempts = 3

func start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Binary == "" && !cfg.InProcess || cfg.Dir == "" {
		return nil, fmt.Errorf("%w: Dir, and Binary unless InProcess, are required", ErrInvalidConfig)
	}
	if cfg.Servers == 0 {
		cfg.Servers = DefaultServers
	}
	if cfg.Servers < 1 {
		return nil, fmt.Errorf("%w: %d servers", ErrInvalidConfig, cfg.Servers)
	}
	if cfg.ClusterName == "" {
		// Unique per cluster: should two test processes ever pick the
		// same free port, their servers refuse each other's routes
		// instead of forming one cluster.
		cfg.ClusterName = fmt.Sprintf("%s-%d-%d", DefaultClusterName, os.Getpid(), clusterSeq.Add(1))
	}
	if cfg.Auth.Token != "" && (cfg.Auth.User != "" || len(cfg.Auth.NKeys) > 0 || cfg.System.User != "") {
		return nil, fmt.Errorf("%w: a token excludes users, NKeys and a system account", ErrInvalidConfig)
	}
	if cfg.JWT && (cfg.Auth.enabled() || cfg.System.User != "") {
		return nil, fmt.Errorf("%w: JWT mode excludes Auth and System", ErrInvalidConfig)
	}
	pick := cfg.pickPort
	if pick == nil {
		pick = freePort
	}
	c := &Cluster{cfg: cfg, http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	for range cfg.Servers {
		var p ports
		var err error
		for _, dst := range []*int{&p.client, &p.cluster, &p.monitor} {
			if *dst, err = pick(); err != nil {
				return nil, err
			}
		}
		c.ports = append(c.ports, p)
	}
	if cfg.JWT {
		var err error
		if c.trust, err = newTrust(cfg.Dir); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Servers {
		dir := filepath.Join(cfg.Dir, serverName(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("natstest: %w", err)
		}
		s := &server{i: i, conf: filepath.Join(dir, "nats-server.conf"), logPath: filepath.Join(dir, "nats-server.log")}
		if err := os.WriteFile(s.conf, []byte(serverConf(cfg, c.trust, i, c.ports, filepath.Join(dir, "store"))), 0o600); err != nil {
			return nil, fmt.Errorf("natstest: %w", err)
		}
		c.servers = append(c.servers, s)
	}
	for _, s := range c.servers {
		if err := c.startServer(s); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startServer starts s as configured: a process, or in this process.
func (c *Cluster) startServer(s *server) error {
	if c.cfg.InProcess {
		return s.startInProcess()
	}
	return s.start(c.cfg.Binary)
}

// startInProcess runs s as a library server, logging to its log file.
func (s *server) startInProcess() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil || s.ns != nil {
		return fmt.Errorf("%w: %s", ErrRunning, serverName(s.i))
	}
	opts, err := natsserver.ProcessConfigFile(s.conf)
	if err != nil {
		return fmt.Errorf("natstest: %s configuration: %w", serverName(s.i), err)
	}
	opts.NoSigs = true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natstest: starting %s: %w", serverName(s.i), err)
	}
	// Not nats-server's own file logger (ConfigureLogger): its Fatalf
	// calls os.Exit(1), which ended the whole test binary without a word
	// on its output (a listen port taken between freePort and the
	// server's start did that). A fatal error shuts this server down, and
	// readiness reports it with the log's tail.
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		ns.Shutdown()
		return fmt.Errorf("natstest: %w", err)
	}
	logger := embedded.NewServerLogger(slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})), ns.Shutdown)
	ns.SetLoggerV2(logger, opts.Debug, opts.Trace, false)
	go ns.Start()
	exited := make(chan struct{})
	s.ns, s.logger, s.exited, s.stopping = ns, logger, exited, false
	go func() {
		ns.WaitForShutdown()
		logf.Close()
		close(exited)
	}()
	return nil
}

// portTaken reports whether err is a server's failure to listen on a port
// another process took.
func portTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

func (s *server) start(binary string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil || s.ns != nil {
		return fmt.Errorf("%w: %s", ErrRunning, serverName(s.i))
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("natstest: %w", err)
	}
	cmd := exec.Command(binary, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("natstest: starting %s: %w", serverName(s.i), err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.stopping = cmd, exited, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running returns the server's process and its exit channel, nil when it
// is not running.
func (s *server) running() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil && s.ns == nil {
		return nil, nil
	}
	select {
	case <-s.exited:
		return nil, nil
	default:
	}
	return s.cmd, s.exited
}

// isRunning reports whether the server runs (as a process or in process).
func (s *server) isRunning() bool {
	_, exited := s.running()
	return exited != nil
}

// signal sends sig and waits for the process to exit, killing it after
// timeout; the server is then marked stopped.
func (s *server) signal(sig os.Signal, timeout time.Duration) error {
	cmd, exited := s.running()
	if exited == nil {
		return fmt.Errorf("%w: %s", ErrNotRunning, serverName(s.i))
	}
	s.mu.Lock()
	s.stopping = true
	ns := s.ns
	s.mu.Unlock()
	if ns != nil {
		// In process there is no crash: any signal is a shutdown.
		ns.Shutdown()
		<-exited
		s.mu.Lock()
		s.ns = nil
		s.mu.Unlock()
		return nil
	}
	_ = cmd.Process.Signal(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-exited:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-exited
		err = fmt.Errorf("natstest: %s did not stop within %v after %v: killed", serverName(s.i), timeout, sig)
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return err
}

func (c *Cluster) server(i int) (*server, error) {
	if i < 0 || i >= len(c.servers) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoServer, i, len(c.servers))
	}
	return c.servers[i], nil
}

// Kill crashes server i: SIGKILL, and waits until the process is gone.
func (c *Cluster) Kill(i int) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	return s.signal(syscall.SIGKILL, StopTimeout)
}

// Stop shuts server i down gracefully (SIGINT: Raft leaders step down, the
// store is flushed), killing it after StopTimeout.
func (c *Cluster) Stop(i int) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	return s.signal(os.Interrupt, StopTimeout)
}

// Restart starts server i again, with its configuration, ports and store,
// and waits until the cluster is ready with it (see WaitReady).
func (c *Cluster) Restart(ctx context.Context, i int) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	if s.isRunning() {
		return fmt.Errorf("%w: %s", ErrRunning, serverName(i))
	}
	s.mu.Lock()
	s.cmd, s.ns = nil, nil
	s.mu.Unlock()
	if err := c.startServer(s); err != nil {
		return err
	}
	return c.WaitReady(ctx)
}

// Close stops every running server (gracefully, killing those that do
// not stop within StopTimeout) and returns the first error.
func (c *Cluster) Close() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.servers))
	for i, s := range c.servers {
		if !s.isRunning() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.signal(os.Interrupt, StopTimeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitReady waits until every running server is healthy (JetStream
// enabled, current with the meta leader, its streams and consumers
// current) and they all name the same meta leader; it returns ctx's error
// (with the last problem seen) when ctx ends first, or ErrNotRunning when
// a server that was not stopped on purpose exits.
func (c *Cluster) WaitReady(ctx context.Context) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		problem := c.readiness(ctx)
		if problem == nil {
			return nil
		}
		if errors.Is(problem, ErrNotRunning) {
			return problem
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natstest: cluster not ready: %w (%v)", ctx.Err(), problem)
		case <-t.C:
		}
	}
}

// readiness returns nil when the cluster is ready, else what is missing.
func (c *Cluster) readiness(ctx context.Context) error {
	leader := ""
	up := 0
	for _, s := range c.servers {
		s.mu.Lock()
		started, exited, stopping := s.cmd != nil || s.ns != nil, s.exited, s.stopping
		s.mu.Unlock()
		if !started {
			continue
		}
		select {
		case <-exited:
			if !stopping {
				return fmt.Errorf("%w: %s exited (%v); log:\n%s", ErrNotRunning, serverName(s.i), s.exitError(), c.LogTail(s.i, 40))
			}
			continue
		default:
		}
		up++
		var h struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := c.getJSON(ctx, s.i, "/healthz", &h); err != nil {
			return err
		}
		if h.Status != "ok" {
			return fmt.Errorf("%s not healthy: %s %s", serverName(s.i), h.Status, h.Error)
		}
		if len(c.servers) == 1 {
			continue
		}
		l, err := c.metaLeader(ctx, s.i)
		if err != nil {
			return err
		}
		switch {
		case l == "":
			return fmt.Errorf("%s knows no meta leader", serverName(s.i))
		case leader == "":
			leader = l
		case l != leader:
			return fmt.Errorf("servers disagree on the meta leader: %s and %s", leader, l)
		}
	}
	if up == 0 {
		return errors.New("no server is running")
	}
	return nil
}

func (s *server) exitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitErr == nil && s.logger != nil {
		return s.logger.Fatal() // in process: what stopped it
	}
	return s.exitErr
}

// MetaLeader returns the name of the JetStream meta leader as server i
// sees it ("" when it knows none).
func (c *Cluster) MetaLeader(ctx context.Context, i int) (string, error) {
	if _, err := c.server(i); err != nil {
		return "", err
	}
	return c.metaLeader(ctx, i)
}

func (c *Cluster) metaLeader(ctx context.Context, i int) (string, error) {
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := c.getJSON(ctx, i, "/jsz", &jsz); err != nil {
		return "", err
	}
	if jsz.Meta == nil {
		return "", nil
	}
	return jsz.Meta.Leader, nil
}

// getJSON GETs path from server i's monitoring port into v. A 503 body
// (healthz) is decoded too.
func (c *Cluster) getJSON(ctx context.Context, i int, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort(c.ports[i].monitor)+path, nil)
	if err != nil {
		return fmt.Errorf("natstest: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s monitoring %s: %w", serverName(i), path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s monitoring %s: %w", serverName(i), path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s monitoring %s: %d %q: %w", serverName(i), path, resp.StatusCode, b, err)
	}
	return nil
}

// Len is the number of servers.
func (c *Cluster) Len() int { return len(c.servers) }

// URL is the comma-separated client URLs of all servers, the form
// --nats-url takes.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// URLs are the client URLs of the servers, by index.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.ports))
	for i := range c.ports {
		out[i] = c.ClientURL(i)
	}
	return out
}

// ClientURL is the client URL of server i (nats://127.0.0.1:PORT; with TLS
// the client upgrades, as the server requires it).
func (c *Cluster) ClientURL(i int) string { return "nats://" + hostPort(c.ports[i].client) }

// MonitorURL is the base URL of server i's monitoring endpoint.
func (c *Cluster) MonitorURL(i int) string { return "http://" + hostPort(c.ports[i].monitor) }

// Name is the server_name of server i (n0, n1, ...), as JetStream reports
// it in stream and meta leader information.
func (c *Cluster) Name(i int) string { return serverName(i) }

// Index returns the index of the server named name, -1 when none.
func (c *Cluster) Index(name string) int {
	n, ok := strings.CutPrefix(name, "n")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || i >= len(c.servers) || serverName(i) != name {
		return -1
	}
	return i
}

// Running reports whether server i runs.
func (c *Cluster) Running(i int) bool {
	s, err := c.server(i)
	if err != nil {
		return false
	}
	return s.isRunning()
}

// LogTail returns the last n lines of server i's log (all its runs).
func (c *Cluster) LogTail(i, n int) string {
	s, err := c.server(i)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
