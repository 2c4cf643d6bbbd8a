package natstest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/goleak"
)

func leakCheck(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func startCluster(t *testing.T, ctx context.Context, cfg Config) *Cluster {
	t.Helper()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary, cfg.Dir = bin, t.TempDir()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// createStream creates a stream, each attempt bounded (a JetStream API
// request can be lost while the cluster settles), until ctx ends.
func createStream(t *testing.T, ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := js.CreateStream(actx, cfg)
		cancel()
		if err == nil {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("create stream %s: %v", cfg.Name, err)
		}
		t.Logf("create stream %s: %v; retrying", cfg.Name, err)
	}
}

func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestKillAndRestart crashes the leader of an R3 stream: a new leader takes
// over with every acknowledged message, and the restarted server catches
// up.
func TestKillAndRestart(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	c := startCluster(t, ctx, Config{})
	if c.Len() != 3 || len(strings.Split(c.URL(), ",")) != 3 {
		t.Fatalf("%d servers, URL %q", c.Len(), c.URL())
	}
	nc := connect(t, c.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := createStream(t, ctx, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	sent := 0
	// publish stores n more messages, each retried until acknowledged (a
	// message ID makes the retries idempotent).
	publish := func(n int) {
		t.Helper()
		for range n {
			sent++
			for {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := js.Publish(pctx, "t.x", []byte("m"), jetstream.WithMsgID(strconv.Itoa(sent)))
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("message %d: %v", sent, err)
				}
			}
		}
	}
	publish(10)
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := c.Index(info.Cluster.Leader)
	if old < 0 || info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info: %+v", info.Cluster)
	}
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	if c.Running(old) {
		t.Fatal("killed server still running")
	}
	if err := c.Kill(old); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Kill = %v", err)
	}
	publish(10) // retried until a new leader is elected
	info, err = st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == c.Name(old) || info.State.Msgs != 20 {
		t.Fatalf("after the kill: leader %s, %d messages", info.Cluster.Leader, info.State.Msgs)
	}
	if err := c.Restart(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, old); !errors.Is(err, ErrRunning) {
		t.Fatalf("Restart of a running server = %v", err)
	}
	// The restarted server catches up: every replica current again.
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for current := false; !current; {
		info, err = st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		current = len(info.Cluster.Replicas) == 2
		for _, r := range info.Cluster.Replicas {
			current = current && r.Current && !r.Offline
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replicas not current after the restart: %+v", info.Cluster)
		case <-tick.C:
		}
	}
	if err := c.Stop(1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("ready with one server stopped: %v", err)
	}
	if !strings.Contains(c.LogTail(old, 1000), "Server is ready") {
		t.Fatalf("log of %s:\n%s", c.Name(old), c.LogTail(old, 20))
	}
}

// TestAuthAndTLS requires user/password or an NKey, over TLS with client
// certificates.
func TestAuthAndTLS(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	files, err := NewTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, ctx, Config{Servers: 1, Auth: Auth{User: "u", Password: "p", NKeys: []string{pub}}, TLS: files.Server(true)})
	tlsOpts := []nats.Option{nats.RootCAs(files.CA), nats.ClientCert(files.ClientCert, files.ClientKey)}

	nc := connect(t, c.URL(), append(tlsOpts, nats.UserInfo("u", "p"))...)
	if !nc.TLSRequired() {
		t.Fatal("connection is not TLS")
	}
	nkOpt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c.URL(), append(tlsOpts, nkOpt)...)

	for name, opts := range map[string][]nats.Option{
		"wrong password": append(tlsOpts, nats.UserInfo("u", "x")),
		"no certificate": {nats.RootCAs(files.CA), nats.UserInfo("u", "p")},
		"unknown CA":     {nats.UserInfo("u", "p")},
	} {
		if nc, err := nats.Connect(c.URL(), opts...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		}
	}
}

func TestStartErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, cfg := range []Config{{}, {Binary: "x"}, {Dir: t.TempDir()}, {Binary: "x", Dir: t.TempDir(), Servers: -1},
		{Binary: "x", Dir: t.TempDir(), Auth: Auth{Token: "t", User: "u"}}} {
		if _, err := Start(ctx, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Start(%+v) = %v", cfg, err)
		}
	}
	if _, err := Start(ctx, Config{Binary: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir()}); err == nil {
		t.Error("started a missing binary")
	}
}

// TestSystemAccount: clients without credentials use JetStream in the
// application account; the system user reaches the servers' monitoring
// subjects.
func TestSystemAccount(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := startCluster(t, ctx, Config{Servers: 1, System: Auth{User: "sys", Password: "pw"}})
	js, err := jetstream.New(connect(t, c.URL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("JetStream in the application account: %v", err)
	}
	sys := connect(t, c.URL(), nats.UserInfo("sys", "pw"))
	resp, err := sys.RequestWithContext(ctx, "$SYS.REQ.SERVER.PING.JSZ", nil)
	if err != nil {
		t.Fatalf("system request: %v", err)
	}
	if !strings.Contains(string(resp.Data), `"name":"n0"`) {
		t.Fatalf("JSZ: %s", resp.Data)
	}
	if _, err := Start(ctx, Config{Binary: "x", Dir: t.TempDir(), Auth: Auth{Token: "t"}, System: Auth{User: "s"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("token with a system account: %v", err)
	}
}

// TestInProcess: the same cluster with the servers in this process: an R3
// stream survives the shutdown of its leader, the server restarts on its
// store, and nothing is left running after Close.
func TestInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{InProcess: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, c.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := createStream(t, ctx, js, jetstream.StreamConfig{Name: "IP", Subjects: []string{"ip.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	for i := range 5 {
		if _, err := js.Publish(ctx, "ip.x", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Index(info.Cluster.Leader)
	if leader < 0 || !c.Running(leader) {
		t.Fatalf("leader %q not a running server", info.Cluster.Leader)
	}
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	if c.Running(leader) {
		t.Fatal("killed server still running")
	}
	// Another server leads with every message.
	pollInfo := func(what string, ok func(*jetstream.StreamInfo) bool) *jetstream.StreamInfo {
		t.Helper()
		var last *jetstream.StreamInfo
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := st.Info(rctx)
			cancel()
			if err == nil && ok(info) {
				return info
			}
			if err == nil {
				last = info
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v (last info: %+v)", what, ctx.Err(), last)
			case <-tick.C:
			}
		}
	}
	after := pollInfo("a new leader", func(i *jetstream.StreamInfo) bool {
		return i.Cluster != nil && i.Cluster.Leader != "" && i.Cluster.Leader != info.Cluster.Leader
	})
	if after.State.Msgs != 5 {
		t.Fatalf("new leader %s has %d messages, want 5", after.Cluster.Leader, after.State.Msgs)
	}
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	pollInfo("two current replicas", func(i *jetstream.StreamInfo) bool {
		if i.Cluster == nil || len(i.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range i.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range c.Len() {
		if c.Running(i) {
			t.Errorf("server %d running after Close", i)
		}
	}
	if !strings.Contains(c.LogTail(0, 200), "Server is ready") {
		t.Errorf("server log lacks the start:\n%s", c.LogTail(0, 20))
	}
}
