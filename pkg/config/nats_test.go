package config

import (
	"testing"

	"github.com/whepcast/whepcast/pkg/natsconn"
)

func TestNATSClientConfig(t *testing.T) {
	c := NATSClient{URL: "nats://a:4222,nats://b:4222", User: "u", Password: "p", Token: "t", NKeyFile: "n", CredsFile: "c",
		TLSCA: "ca", TLSCert: "cert", TLSKey: "key"}
	want := natsconn.Config{URL: c.URL, Name: "node", User: "u", Password: "p", Token: "t", NKeyFile: "n", CredsFile: "c",
		TLSCA: "ca", TLSCert: "cert", TLSKey: "key"}
	if got := c.Config("node"); got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
