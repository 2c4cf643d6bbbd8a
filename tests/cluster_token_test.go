package tests

import (
	"context"
	"testing"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/natsconn"
)

// TestClusterToken connects a broker and a node to a server that requires
// a token; a wrong one is refused.
func TestClusterToken(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	cluster := startNATSCluster(t, ctx, natstest.Config{InProcess: true, Servers: 1, Auth: natstest.Auth{Token: "t0ken"}})
	b := startBroker(t, ctx, broker.Options{}, "--nats-url", cluster.URL(), "--nats-token", "t0ken")
	brokerHealthy(t, ctx, b)
	whepNode(t, nodeConn(t, "--nats-url", cluster.URL(), "--nats-token", "t0ken"), nil)
	cfg, err := config.LoadNode([]string{"--nats-url", cluster.URL(), "--nats-token", "wrong"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := natsconn.Connect(t.Context(), cfg.NATS.Config("whepcast-whep-node"), whepLogger()); err == nil {
		nc.Close()
		t.Fatal("a node connected with a wrong token")
	}
}
