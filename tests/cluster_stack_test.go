package tests

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/natsconn"
)

// clusterTestTimeout bounds every cluster and fault test.
const clusterTestTimeout = 90 * time.Second

// startNATSCluster starts a cluster of nats-server on loopback (3 servers
// unless cfg says otherwise), ready with a JetStream meta leader: in this
// process with cfg.InProcess, else as child processes of a binary it builds
// (the fault tests, whose servers are killed for real). The cleanup stops every server; when the test failed, it
// logs the end of each server's log.
func startNATSCluster(t *testing.T, ctx context.Context, cfg natstest.Config) *natstest.Cluster {
	t.Helper()
	if !cfg.InProcess {
		bin, err := natstest.Build(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Binary = bin
	}
	cfg.Dir = t.TempDir()
	c, err := natstest.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.Len() {
				t.Logf("%s log (tail):\n%s", c.Name(i), c.LogTail(i, 30))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("stopping the NATS cluster: %v", err)
		}
	})
	return c
}

// startBroker starts an in-process broker (ingest on 127.0.0.1:0) with the
// command-line flags args. The cleanup stops it and checks the stop was
// clean; stopping it earlier in the test is allowed.
func startBroker(t *testing.T, ctx context.Context, opts broker.Options, args ...string) *broker.Broker {
	t.Helper()
	cfg, err := config.LoadBroker(append([]string{"--ingest-addr", "127.0.0.1:0", "--rtmp-addr", ""}, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	// The broker runs until the cleanup's Shutdown, past the end of the
	// test's body, which cancels ctx.
	b, err := broker.Start(context.WithoutCancel(ctx), cfg, whepLogger(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("broker stop: %v", err)
		}
	})
	return b
}

// nodeConn connects to NATS the way cmd/whep-node does, from whep-node
// flags (--nats-url, --nats-user, ...). The cleanup closes the connection
// (after the node's cleanup, when registered before whepNode).
func nodeConn(t *testing.T, args ...string) *nats.Conn {
	t.Helper()
	cfg, err := config.LoadNode(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsconn.Connect(t.Context(), cfg.NATS.Config("whepcast-whep-node"), whepLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testJS returns a JetStream context on a new connection to url.
func testJS(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamInfo returns the info of the JetStream stream name.
func streamInfo(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info
}

// checkReplicated checks that the JetStream stream name has n replicas, a
// leader, and n-1 current followers.
func checkReplicated(t *testing.T, ctx context.Context, js jetstream.JetStream, name string, n int) {
	t.Helper()
	var info *jetstream.StreamInfo
	whepWait(t, ctx, fmt.Sprintf("%s with %d current replicas", name, n), func() bool {
		info = streamInfo(t, ctx, js, name)
		if info.Config.Replicas != n || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != n-1 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
}

// playStream starts an rtpViewer of stream on the WHEP server at url and
// waits until it received video and audio.
func playStream(t *testing.T, ctx context.Context, url, stream string) *rtpViewer {
	t.Helper()
	v := newRTPViewer(t)
	whepPlay(t, ctx, url, stream, v.whepClient)
	v.waitPackets(t, ctx, mimeH264, 30)
	v.waitPackets(t, ctx, mimeOpus, 10)
	return v
}

// brokerHealthy checks the broker's /healthz.
func brokerHealthy(t *testing.T, ctx context.Context, b *broker.Broker) {
	t.Helper()
	if resp, body := whepDo(t, ctx, http.MethodGet, "http://"+b.IngestAddr().String()+"/healthz", nil, ""); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("broker /healthz = %d %q", resp.StatusCode, body)
	}
}

// catalogStream is the JetStream stream of the catalog bucket.
const catalogStream = "KV_" + bus.CatalogBucket
