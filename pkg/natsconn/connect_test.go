package natsconn

import (
	"errors"
	"path/filepath"
	"testing"

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
