package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// userInfo asks the server nc is connected to who nc is
// ($SYS.REQ.USER.INFO, open to every user).
func userInfo(t *testing.T, nc *nats.Conn) (account, accountName, user string) {
	t.Helper()
	resp, err := nc.Request("$SYS.REQ.USER.INFO", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("user info: %v", err)
	}
	var r struct {
		Data struct {
			Account     string `json:"account"`
			AccountName string `json:"account_name"`
			UserName    string `json:"user_name"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		t.Fatalf("user info %s: %v", resp.Data, err)
	}
	return r.Data.Account, r.Data.AccountName, r.Data.UserName
}

// TestJWT runs 3 servers in operator mode: a user of APP uses clustered
// JetStream (an R3 stream), a user of SYS reaches every server's
// monitoring subjects, and clients without credentials or with a user of
// the unknown account are refused.
func TestJWT(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	c := startCluster(t, ctx, Config{JWT: true})

	app, err := c.UserCreds("whepcast")
	if err != nil {
		t.Fatal(err)
	}
	// The creds file: the decorated user JWT, issued by APP, and its seed.
	b, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(app); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("creds file mode: %v %v", fi.Mode(), err)
	}
	if !strings.HasPrefix(string(b), "-----BEGIN NATS USER JWT-----\n") || !strings.Contains(string(b), "-----BEGIN USER NKEY SEED-----\nSU") {
		t.Fatalf("creds file:\n%s", b)
	}
	token, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		t.Fatal(err)
	}
	appKey := c.AccountKey(AppAccount)
	if uc.Issuer != appKey || uc.Name != "whepcast" || !strings.HasPrefix(appKey, "A") {
		t.Fatalf("user JWT issuer %s name %q, APP is %s", uc.Issuer, uc.Name, appKey)
	}

	nc := connect(t, c.URL(), nats.UserCredentials(app))
	if acc, name, user := userInfo(t, nc); acc != appKey || name != AppAccount || user != "whepcast" {
		t.Fatalf("connected as %s (%s) in %s (%s), want whepcast in %s (%s)", user, uc.Subject, acc, name, appKey, AppAccount)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := createStream(t, ctx, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	for range 5 {
		if _, err := js.Publish(ctx, "t.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 || info.Cluster == nil || c.Index(info.Cluster.Leader) < 0 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream: %d messages, cluster %+v", info.State.Msgs, info.Cluster)
	}

	// SYS: every server answers a JetStream ping.
	sysCreds, err := c.Creds(SystemAccount, "admin")
	if err != nil {
		t.Fatal(err)
	}
	sys := connect(t, c.URL(), nats.UserCredentials(sysCreds))
	if acc, name, _ := userInfo(t, sys); acc != c.AccountKey(SystemAccount) || name != SystemAccount {
		t.Fatalf("system user in %s (%s)", acc, name)
	}
	inbox := nats.NewInbox()
	replies, err := sys.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.PublishRequest("$SYS.REQ.SERVER.PING.JSZ", inbox, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for range c.Len() {
		m, err := replies.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatalf("JSZ replies %v: %v", names, err)
		}
		var r struct {
			Server struct {
				Name string `json:"name"`
			} `json:"server"`
		}
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("JSZ %s: %v", m.Data, err)
		}
		names = append(names, r.Server.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "n0,n1,n2" {
		t.Fatalf("JSZ from %v", names)
	}

	unknown, err := c.Creds(UnknownAccount, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]nats.Option{
		"no credentials":    nil,
		"unknown account":   {nats.UserCredentials(unknown)},
		"user and password": {nats.UserInfo("whepcast", "whepcast")},
	} {
		nc, err := nats.Connect(c.URL(), opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want %v", name, err, nats.ErrAuthorization)
		}
	}

	// A server restarted in operator mode rejoins with its accounts.
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	nc0 := connect(t, c.ClientURL(0), nats.UserCredentials(app))
	js0, err := jetstream.New(nc0)
	if err != nil {
		t.Fatal(err)
	}
	st0, err := js0.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st0.Info(ctx); err != nil || info.State.Msgs != 5 {
		t.Fatalf("stream through the restarted server: %v %v", info, err)
	}
}

func TestCredsErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, cfg := range []Config{
		{Binary: "x", Dir: t.TempDir(), JWT: true, Auth: Auth{User: "u"}},
		{Binary: "x", Dir: t.TempDir(), JWT: true, Auth: Auth{Token: "t"}},
		{Binary: "x", Dir: t.TempDir(), JWT: true, Auth: Auth{NKeys: []string{"U"}}},
		{Binary: "x", Dir: t.TempDir(), JWT: true, System: Auth{User: "s"}},
	} {
		if _, err := Start(ctx, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Start(%+v) = %v", cfg, err)
		}
	}
	if _, err := (&Cluster{}).UserCreds("u"); !errors.Is(err, ErrNoJWT) {
		t.Errorf("UserCreds without JWT mode = %v", err)
	}
	if k := (&Cluster{}).AccountKey(AppAccount); k != "" {
		t.Errorf("AccountKey without JWT mode = %q", k)
	}

	tr, err := newTrust(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{trust: tr}
	if _, err := c.Creds("OTHER", "u"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("Creds of an unknown account name = %v", err)
	}
	if k := c.AccountKey("OTHER"); k != "" {
		t.Errorf("AccountKey(OTHER) = %q", k)
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x", "a b", "é", strings.Repeat("x", 65)} {
		if _, err := c.UserCreds(name); !errors.Is(err, ErrUserName) {
			t.Errorf("UserCreds(%q) = %v", name, err)
		}
	}
	// A second user of the same name replaces the file with a new key.
	p1, err := c.UserCreds("u-1_A")
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	p2, err := c.UserCreds("u-1_A")
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(p2)
	if p1 != p2 || string(b1) == string(b2) {
		t.Errorf("second creds %s (was %s), same contents %v", p2, p1, string(b1) == string(b2))
	}
	// The servers preload SYS and APP, not UNKNOWN.
	var b strings.Builder
	tr.serverConf(&b)
	conf := b.String()
	for _, a := range []string{SystemAccount, AppAccount} {
		if !strings.Contains(conf, "  "+c.AccountKey(a)+": \"") {
			t.Errorf("%s not preloaded:\n%s", a, conf)
		}
	}
	if strings.Contains(conf, c.AccountKey(UnknownAccount)) {
		t.Errorf("UNKNOWN preloaded:\n%s", conf)
	}
}
