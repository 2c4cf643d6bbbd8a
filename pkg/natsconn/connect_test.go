package natsconn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConnectConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for name, c := range map[string]Config{
		"no url":       {},
		"scheme":       {URL: "http://127.0.0.1:4222"},
		"no host":      {URL: "nats://"},
		"creds file":   {URL: "nats://127.0.0.1:1", CredsFile: missing},
		"nkey file":    {URL: "nats://127.0.0.1:1", NKeyFile: missing},
		"tls ca file":  {URL: "nats://127.0.0.1:1", TLSCA: missing},
		"tls key pair": {URL: "nats://127.0.0.1:1", TLSCert: missing, TLSKey: missing},
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := Connect(t.Context(), c, nil)
			if !errors.Is(err, ErrInvalidConfig) {
				if nc != nil {
					nc.Close()
				}
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestConnectPolicy connects to a server and checks the connection's name
// and reconnect policy, then shuts it down.
func TestConnectPolicy(t *testing.T) {
	srv := natstest.Embedded(t, embedded.Config{Port: 0})
	nc, err := Connect(t.Context(), Config{URL: srv.ClientURL(), Name: "test-conn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nc.Opts.Name != "test-conn" || nc.Opts.MaxReconnect != -1 || nc.Opts.ReconnectWait != DefaultReconnectWait ||
		nc.Opts.Timeout != DefaultConnectTimeout {
		t.Fatalf("options: name %q, max reconnects %d, reconnect wait %v, timeout %v",
			nc.Opts.Name, nc.Opts.MaxReconnect, nc.Opts.ReconnectWait, nc.Opts.Timeout)
	}
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := Shutdown(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() || sub.IsValid() {
		t.Fatal("connection not closed or subscription still valid after Shutdown")
	}
	if err := Shutdown(t.Context(), nc); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                 "nats://127.0.0.1:4222",
		"nats://u:secret@a:4222, tls://tok@b:1": "nats://redacted@a:4222,tls://redacted@b:1",
		"tok@host:4222":                         "redacted@host:4222",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// retryLog records the pauses of the retry log lines.
type retryLog struct {
	waits chan time.Duration
	urls  chan string
}

func (l retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (l retryLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l retryLog) WithGroup(string) slog.Handler            { return l }
func (l retryLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "NATS not reachable; retrying" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "retry_in":
			l.waits <- a.Value.Duration()
		case "url":
			l.urls <- a.Value.String()
		}
		return true
	})
	return nil
}

// TestConnectWaitsForServer connects before the server is up: each failed
// attempt is logged once with the URL (without its credentials) and a pause
// that doubles up to MaxRetryWait; Connect returns once the server is up.
func TestConnectWaitsForServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logs := retryLog{waits: make(chan time.Duration, 100), urls: make(chan string, 100)}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := Connect(ctx, Config{URL: "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			RetryWait: 10 * time.Millisecond, MaxRetryWait: 40 * time.Millisecond}, slog.New(logs))
		done <- result{nc, err}
	}()
	for i, want := range []time.Duration{10, 20, 40, 40} {
		select {
		case got := <-logs.waits:
			if got != want*time.Millisecond {
				t.Fatalf("pause %d = %v, want %v", i, got, want*time.Millisecond)
			}
			if url := <-logs.urls; url != "nats://127.0.0.1:"+strconv.Itoa(port) {
				t.Fatalf("logged url %q", url)
			}
		case <-ctx.Done():
			t.Fatal("no retry logged")
		}
	}
	natstest.Embedded(t, embedded.Config{Port: port})
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.nc.Close()
	case <-ctx.Done():
		t.Fatal("Connect did not return once the server was up")
	}
}

// TestConnectEndsWithContext: a Connect waiting for a server returns ctx's
// error when ctx ends.
func TestConnectEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	logs := retryLog{waits: make(chan time.Duration, 100), urls: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		_, err := Connect(ctx, Config{URL: "nats://127.0.0.1:1", RetryWait: time.Hour}, slog.New(logs))
		done <- err
	}()
	<-logs.waits
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect = %v, want context.Canceled", err)
	}
}
