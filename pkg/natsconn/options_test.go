package natsconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func apply(t *testing.T, c Config) nats.Options {
	t.Helper()
	opts, err := c.authOptions()
	if err != nil {
		t.Fatal(err)
	}
	o := nats.GetDefaultOptions()
	for _, f := range opts {
		if err := f(&o); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func TestNATSOptions(t *testing.T) {
	if o := apply(t, Config{URL: "nats://x"}); o.User != "" || o.Token != "" || o.Nkey != "" || o.UserJWT != nil || o.Secure {
		t.Fatalf("no auth configured but options set: %+v", o)
	}
	if o := apply(t, Config{User: "u", Password: "p"}); o.User != "u" || o.Password != "p" {
		t.Fatalf("user/password: %q %q", o.User, o.Password)
	}
	if o := apply(t, Config{Token: "tok"}); o.Token != "tok" {
		t.Fatalf("token: %q", o.Token)
	}
	// The credentials file is checked when the options are built.
	if _, err := (Config{CredsFile: "/nonexistent/x.creds"}).authOptions(); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.creds") {
		t.Fatalf("creds: %v, want the missing file reported", err)
	}

	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if o := apply(t, Config{NKeyFile: seedFile}); o.Nkey != pub || o.SignatureCB == nil {
		t.Fatalf("nkey: %q, want %q", o.Nkey, pub)
	}
	if _, err := (Config{NKeyFile: filepath.Join(t.TempDir(), "missing.nk")}).authOptions(); err == nil {
		t.Fatal("missing nkey file: want error")
	}

	// TLS options only record the files; the CA file must exist when applied.
	opts, err := Config{TLSCA: "/nonexistent/ca.pem"}.authOptions()
	if err != nil || len(opts) != 1 {
		t.Fatalf("tls-ca: %d options, %v", len(opts), err)
	}
	o := nats.GetDefaultOptions()
	if err := opts[0](&o); err == nil {
		t.Fatal("missing CA file: want error when applied")
	}
}
