package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/embedded"
)

// embeddedTimeout bounds the start and the shutdown of an embedded server.
const embeddedTimeout = 20 * time.Second

// Embedded starts one embedded nats-server (package embedded) for a test and
// shuts it down when the test ends. cfg is used as embedded.Start takes it
// (Port 0: a free port; embedded.NoListener: in-process connections only),
// with a temporary JetStream store when DataDir is empty. It is the
// single-server counterpart of Start's cluster.
func Embedded(t testing.TB, cfg embedded.Config) *embedded.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(t.Context(), embeddedTimeout)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("natstest: start embedded nats-server: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() has ended by now.
		ctx, cancel := context.WithTimeout(context.Background(), embeddedTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("natstest: shut down embedded nats-server: %v", err)
		}
	})
	return srv
}

// Connect connects to srv in process; the connection is closed when the
// test ends.
func Connect(t testing.TB, srv *embedded.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect(opts...)
	if err != nil {
		t.Fatalf("natstest: connect to embedded nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// EmbeddedConn starts an embedded server without a TCP listener and
// returns a connection to it; both end with the test.
func EmbeddedConn(t testing.TB) *nats.Conn {
	t.Helper()
	return Connect(t, Embedded(t, embedded.Config{Port: embedded.NoListener}))
}
