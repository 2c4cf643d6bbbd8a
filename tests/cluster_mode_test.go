//go:build external

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/natsconn"
)

// TestClusterReplicas runs a broker (--replicas 3) and a whep-node against
// an external 3-node JetStream cluster. The node starts first, so it is the
// one that creates the catalog bucket (with one replica): the broker's
// publisher must raise it to 3, like the media stream.
func TestClusterReplicas(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	cluster := startNATSCluster(t, ctx, natstest.Config{InProcess: true, System: natstest.Auth{User: "sys", Password: "sys"}})
	url := whepNode(t, nodeConn(t, "--nats-url", cluster.URL()), nil)
	js := testJS(t, cluster.URL())
	if info := streamInfo(t, ctx, js, catalogStream); info.Config.Replicas != 1 {
		t.Fatalf("the node created the catalog with %d replicas, want 1", info.Config.Replicas)
	}

	b := startBroker(t, ctx, broker.Options{}, "--nats-url", cluster.URL(), "--replicas", "3")
	brokerHealthy(t, ctx, b)
	liveIngest(t, b, "cam")
	v := playStream(t, ctx, url, "cam")

	checkReplicated(t, ctx, js, "MEDIA_cam", 3)
	checkReplicated(t, ctx, js, catalogStream, 3)
	if info := streamInfo(t, ctx, js, "MEDIA_cam"); info.Config.Storage.String() != "File" || info.State.Msgs == 0 {
		t.Fatalf("MEDIA_cam: storage %v, %d messages", info.Config.Storage, info.State.Msgs)
	}
	v.waitPackets(t, ctx, mimeH264, v.count(mimeH264)+30)

	// The operator's recipes of docs/operations.md.
	cli := natsCLI(t)
	sys := func(args ...string) []string { return append([]string{"--user", "sys", "--password", "sys"}, args...) }
	for _, r := range []struct {
		args []string
		want []string
	}{
		{[]string{"stream", "info", "MEDIA_cam"}, []string{"Replicas: 3", "Cluster Information:", "Leader: n", "current, seen", "Storage: File"}},
		{[]string{"kv", "info", "whepcast_catalog"}, []string{"Cluster Information:", "Leader: n", "current, seen"}},
		{[]string{"stream", "report"}, []string{"MEDIA_cam", "KV_whepcast_catalog"}},
		{[]string{"server", "check", "stream", "--stream", "MEDIA_cam", "--peer-expect", "3"}, []string{"OK MEDIA_cam OK:3 peers"}},
		{[]string{"server", "check", "stream", "--stream", "KV_whepcast_catalog", "--peer-expect", "3"}, []string{"OK KV_whepcast_catalog OK:3 peers"}},
		{[]string{"server", "check", "jetstream"}, []string{"OK JetStream", "replicas_no_leader=0"}},
		{sys("server", "report", "jetstream"), []string{"JetStream Summary", "RAFT Meta Group Information", "n0", "n1", "n2"}},
		{sys("server", "check", "meta", "--expect", "3", "--lag-critical", "100", "--seen-critical", "5s"), []string{"OK JetStream Meta Cluster OK:3 peers"}},
		{[]string{"stream", "cluster", "step-down", "MEDIA_cam", "--force"}, []string{"New leader elected"}},
	} {
		out, err := exec.CommandContext(ctx, cli, append([]string{"--server", cluster.URL(), "--no-context"}, r.args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(r.args, " "), err, out)
		}
		for _, w := range r.want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("nats %s lacks %q:\n%s", strings.Join(r.args, " "), w, out)
			}
		}
		if r.args[1] == "info" {
			if n := strings.Count(string(out), "current, seen"); n != 2 {
				t.Fatalf("nats %s: %d current replicas, want 2:\n%s", strings.Join(r.args, " "), n, out)
			}
		}
	}
	// A stream leader stepping down (maintenance) does not stop playback.
	v.waitPackets(t, ctx, mimeH264, v.count(mimeH264)+60)
}

// TestClusterAuth runs a broker with a user and password and a node with an
// NKey against a cluster that requires them; wrong credentials are refused
// at start.
func TestClusterAuth(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "node.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	// The accounts of docs/operations.md: whepcast's users in APP, an
	// administrator in SYS.
	cluster := startNATSCluster(t, ctx, natstest.Config{
		InProcess: true,
		Auth:      natstest.Auth{User: "whepcast", Password: "s3cret", NKeys: []string{pub}},
		System:    natstest.Auth{User: "admin", Password: "adm1n"},
	})

	b := startBroker(t, ctx, broker.Options{}, "--nats-url", cluster.URL(), "--replicas", "3",
		"--nats-user", "whepcast", "--nats-password", "s3cret")
	url := whepNode(t, nodeConn(t, "--nats-url", cluster.URL(), "--nats-nkey", seedFile), nil)
	liveIngest(t, b, "cam")
	playStream(t, ctx, url, "cam")

	for _, args := range [][]string{
		{"--nats-user", "whepcast", "--nats-password", "wrong"},
		{"--nats-token", "s3cret"},
		{},
	} {
		cfg, err := config.LoadBroker(append([]string{"--ingest-addr", "127.0.0.1:0", "--rtmp-addr", "", "--nats-url", cluster.URL()}, args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := broker.Start(ctx, cfg, whepLogger(), broker.Options{}); err == nil {
			_ = b.Shutdown(context.Background())
			t.Fatalf("broker %v started", args)
		} else if !strings.Contains(err.Error(), "uthorization") {
			t.Fatalf("broker %v: %v, want an authorization error", args, err)
		}
	}
}

// TestClusterTLS runs a broker and a node against a cluster that requires
// TLS with client certificates, from a CA made for the test.
func TestClusterTLS(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	files, err := natstest.NewTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cluster := startNATSCluster(t, ctx, natstest.Config{InProcess: true, TLS: files.Server(true)})
	tlsArgs := []string{"--nats-url", cluster.URL(), "--nats-tls-ca", files.CA, "--nats-tls-cert", files.ClientCert, "--nats-tls-key", files.ClientKey}

	b := startBroker(t, ctx, broker.Options{}, append(tlsArgs, "--replicas", "3")...)
	if !b.Conn().TLSRequired() {
		t.Fatal("the broker's NATS connection is not TLS")
	}
	nc := nodeConn(t, tlsArgs...)
	if !nc.TLSRequired() {
		t.Fatal("the node's NATS connection is not TLS")
	}
	url := whepNode(t, nc, nil)
	liveIngest(t, b, "cam")
	playStream(t, ctx, url, "cam")
	checkReplicated(t, ctx, testJS(t, cluster.URL(), nats.RootCAs(files.CA), nats.ClientCert(files.ClientCert, files.ClientKey)), "MEDIA_cam", 3)

	// Without the CA, or without a client certificate, no connection.
	for _, args := range [][]string{{"--nats-url", cluster.URL()}, {"--nats-url", cluster.URL(), "--nats-tls-ca", files.CA}} {
		cfg, err := config.LoadNode(args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := natsconn.Connect(t.Context(), cfg.NATS.Config("whepcast-whep-node"), whepLogger()); err == nil {
			nc.Close()
			t.Fatalf("node %v connected", args)
		}
	}
}

// TestClusterCreds runs a broker (--replicas 3) and a whep-node, each with
// a credentials file of its own (user JWT and NKey seed, --nats-creds),
// against a 3-server cluster in operator (decentralized JWT) mode. Clients
// without credentials, or with a user of an account the servers do not
// know, are refused with an authorization error; a missing or malformed
// credentials file fails the broker's start with an error naming the file.
func TestClusterCreds(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	cluster := startNATSCluster(t, ctx, natstest.Config{InProcess: true, JWT: true})
	creds := func(account, name string) string {
		t.Helper()
		path, err := cluster.Creds(account, name)
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	brokerCreds, nodeCreds := creds(natstest.AppAccount, "broker"), creds(natstest.AppAccount, "node")

	b := startBroker(t, ctx, broker.Options{}, "--nats-url", cluster.URL(), "--replicas", "3", "--nats-creds", brokerCreds)
	brokerHealthy(t, ctx, b)
	nc := nodeConn(t, "--nats-url", cluster.URL(), "--nats-creds", nodeCreds)
	url := whepNode(t, nc, nil)
	liveIngest(t, b, "cam")
	v := playStream(t, ctx, url, "cam")
	v.waitKeyframe(t, ctx, time.Time{})
	checkReplicated(t, ctx, testJS(t, cluster.URL(), nats.UserCredentials(creds(natstest.AppAccount, "admin"))), "MEDIA_cam", 3)
	// Each connection is the user of its file, in the application account.
	for name, c := range map[string]*nats.Conn{"broker": b.Conn(), "node": nc} {
		if acc, user := natsUser(t, ctx, c); acc != cluster.AccountKey(natstest.AppAccount) || user != name {
			t.Fatalf("the %s connected as %q in account %s, want %q in %s (APP)", name, user, acc, name, cluster.AccountKey(natstest.AppAccount))
		}
	}

	brokerErr := func(args ...string) error {
		t.Helper()
		cfg, err := config.LoadBroker(append([]string{"--ingest-addr", "127.0.0.1:0", "--rtmp-addr", "", "--nats-url", cluster.URL()}, args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := broker.Start(ctx, cfg, whepLogger(), broker.Options{})
		if err == nil {
			_ = b.Shutdown(context.Background())
			t.Fatalf("broker %v started", args)
		}
		return err
	}
	unknown := creds(natstest.UnknownAccount, "stranger")
	for _, args := range [][]string{{}, {"--nats-creds", unknown}} {
		if err := brokerErr(args...); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("broker %v: %v, want %v", args, err, nats.ErrAuthorization)
		}
		cfg, err := config.LoadNode(append([]string{"--nats-url", cluster.URL()}, args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := natsconn.Connect(t.Context(), cfg.NATS.Config("whepcast-whep-node"), whepLogger()); !errors.Is(err, nats.ErrAuthorization) {
			if err == nil {
				nc.Close()
			}
			t.Fatalf("node %v: %v, want %v", args, err, nats.ErrAuthorization)
		}
	}

	dir := t.TempDir()
	full, err := os.ReadFile(brokerCreds)
	if err != nil {
		t.Fatal(err)
	}
	jwtOnly, _, ok := strings.Cut(string(full), "\n************************* IMPORTANT")
	seedAt := strings.Index(string(full), "-----BEGIN USER NKEY SEED-----")
	if !ok || seedAt < 0 {
		t.Fatalf("creds file layout:\n%s", full)
	}
	seedOnly := string(full[seedAt:])
	// pkg/config checks the file before connecting: every bad file is
	// reported at start, naming it (nats.go alone would send an empty or
	// garbage JWT, refused as an authorization violation that does not).
	for _, f := range []struct {
		name, content string
		write         bool
	}{
		{name: "missing.creds"},
		{name: "garbage.creds", content: "not a credentials file\n", write: true},
		{name: "no-seed.creds", content: jwtOnly + "\n", write: true},
		{name: "empty.creds", write: true},
		{name: "seed-only.creds", content: seedOnly, write: true},
	} {
		path := filepath.Join(dir, f.name)
		if f.write {
			if err := os.WriteFile(path, []byte(f.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := brokerErr("--nats-creds", path)
		if !strings.Contains(err.Error(), path) {
			t.Errorf("broker with %s: %v, want an error naming %s", f.name, err, path)
		}
	}
}

// natsUser asks the server nc is connected to which account and user nc
// is ($SYS.REQ.USER.INFO, open to every user).
func natsUser(t *testing.T, ctx context.Context, nc *nats.Conn) (account, user string) {
	t.Helper()
	resp, err := nc.RequestWithContext(ctx, "$SYS.REQ.USER.INFO", nil)
	if err != nil {
		t.Fatalf("user info: %v", err)
	}
	var r struct {
		Data struct {
			Account  string `json:"account"`
			UserName string `json:"user_name"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		t.Fatalf("user info %s: %v", resp.Data, err)
	}
	return r.Data.Account, r.Data.UserName
}
