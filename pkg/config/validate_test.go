package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBrokerValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Broker)
		want   string
	}{
		{"storage", func(b *Broker) { b.Storage = "disk" }, `storage: must be file or memory, got "disk"`},
		{"replicas zero", func(b *Broker) { b.Replicas = 0 }, `replicas: must be 1 to 5, got 0`},
		{"replicas embedded", func(b *Broker) { b.Replicas = 3 }, `replicas: 3 needs a NATS cluster (--nats-url)`},
		{"ingest addr", func(b *Broker) { b.IngestAddr = "8080" }, `ingest-addr: "8080" is not host:port`},
		{"ingest addr empty", func(b *Broker) { b.IngestAddr = "" }, `ingest-addr: must be set (host:port)`},
		{"ingest addr port", func(b *Broker) { b.IngestAddr = ":http" }, `ingest-addr: ":http": port must be a number from 0 to 65535`},
		{"ingest addr port range", func(b *Broker) { b.IngestAddr = ":70000" }, `port must be a number from 0 to 65535`},
		{"nats listen", func(b *Broker) { b.NATSListen = "localhost" }, `nats-listen: "localhost" is not host:port`},
		{"whep addr", func(b *Broker) { b.WHEPAddr = "x:y" }, `whep-addr: "x:y": port must be`},
		{"nats monitor addr", func(b *Broker) { b.NATSMonitorAddr = "8222" }, `nats-monitor-addr: "8222" is not host:port`},
		{"nats monitor external", func(b *Broker) { b.NATSMonitorAddr = ":8222"; b.NATS.URL = "nats://x:4222" }, `nats-monitor-addr: needs the embedded server`},
		{"udp stream name", func(b *Broker) { b.UDPIngest = []UDPIngest{{Stream: "cam.1", Addr: ":5000"}} }, `udp-ingest: "cam.1=:5000": invalid stream name`},
		{"udp addr", func(b *Broker) { b.UDPIngest = []UDPIngest{{Stream: "cam1", Addr: "5000"}} }, `udp-ingest: "cam1=5000": "5000" is not host:port`},
		{"udp duplicate stream", func(b *Broker) {
			b.UDPIngest = []UDPIngest{{Stream: "cam1", Addr: ":5000"}, {Stream: "cam1", Addr: ":5001"}}
		}, `udp-ingest: stream "cam1" listed twice`},
		{"udp duplicate addr", func(b *Broker) {
			b.UDPIngest = []UDPIngest{{Stream: "cam1", Addr: ":5000"}, {Stream: "cam2", Addr: ":5000"}}
		}, `udp-ingest: address ":5000" listed twice`},
		{"udp idle", func(b *Broker) { b.UDPIdle = 0 }, `udp-idle: must be > 0, got 0s`},
		{"empty ingest token", func(b *Broker) { b.IngestTokens = []string{"a", ""} }, `ingest-token: must not be empty`},
		{"max age", func(b *Broker) { b.MaxAge = -time.Second }, `max-age: must be at least 1s, got -1s`},
		{"max bytes", func(b *Broker) { b.MaxBytes = 1000 }, `max-bytes: must be at least 65536 (64KiB), got 1000`},
		{"replicas too many", func(b *Broker) { b.Replicas = 6; b.NATS.URL = "nats://x" }, `replicas: must be 1 to 5, got 6`},
		{"max age sub-second", func(b *Broker) { b.MaxAge = 500 * time.Millisecond }, `max-age: must be at least 1s, got 500ms`},
		{"data dir", func(b *Broker) { b.DataDir = "" }, `data-dir: must be set for file storage`},
		{"auth without url", func(b *Broker) { b.NATS.Token = "t" }, `nats.token: needs nats.url (--nats-url)`},
		{"nats url scheme", func(b *Broker) { b.NATS.URL = "http://x:4222" }, `nats.url: "http://x:4222": scheme must be nats, tls, ws or wss`},
		{"nats password alone", func(b *Broker) { b.NATS = NATSClient{URL: "nats://x", Password: "p"} }, `nats.password: needs nats.user`},
		{"nats two methods", func(b *Broker) { b.NATS = NATSClient{URL: "nats://x", Token: "t", CredsFile: "c"} }, `nats: set only one of user/password, token, nkey-file and creds-file`},
		{"nats tls key alone", func(b *Broker) { b.NATS = NATSClient{URL: "nats://x", TLSKey: "k"} }, `nats.tls-cert: nats.tls-cert and nats.tls-key go together`},
		{"start", func(b *Broker) { b.WHEP.Start = "now" }, `whep.start: must be gop or live, got "now"`},
		{"ice udp addr", func(b *Broker) { b.WHEP.ICEUDPAddr = "" }, `whep.ice-udp-addr: must be set (host:port)`},
		{"ice tcp addr", func(b *Broker) { b.WHEP.ICETCPAddr = "tcp" }, `whep.ice-tcp-addr: "tcp" is not host:port`},
		{"public ip", func(b *Broker) { b.WHEP.PublicIPs = []string{"example.org"} }, `whep.public-ip: "example.org" is not an IP address`},
		{"ice server", func(b *Broker) { b.WHEP.ICEServers = []string{"http://x"} }, `whep.ice-server: "http://x" is not a stun:, stuns:, turn: or turns: URL`},
		{"wait timeout", func(b *Broker) { b.WHEP.WaitTimeout = 0 }, `whep.wait-timeout: must be > 0, got 0s`},
		{"max waiting", func(b *Broker) { b.WHEP.MaxWaiting = -1 }, `whep.max-waiting: must be >= 0, got -1`},
		{"max sessions", func(b *Broker) { b.WHEP.MaxSessions = -1 }, `whep.max-sessions: must be >= 0 (0 = unlimited), got -1`},
		{"max sessions per stream", func(b *Broker) { b.WHEP.MaxSessionsPerStream = -2 }, `whep.max-sessions-per-stream: must be >= 0 (0 = unlimited), got -2`},
		{"whep token", func(b *Broker) { b.WHEP.Tokens = []string{" "} }, `whep.token: must not be empty`},
		{"drain timeout", func(b *Broker) { b.WHEP.DrainTimeout = -time.Second }, `whep.drain-timeout: must be >= 0 (0 = close sessions at once), got -1s`},
		{"ice failed timeout", func(b *Broker) { b.WHEP.ICEFailedTimeout = -time.Second }, `whep.ice-failed-timeout: must be >= 0 (0: the default), got -1s`},
		{"log level", func(b *Broker) { b.Log.Level = "loud" }, `log.level: must be debug, info, warn or error, got "loud"`},
		{"log format", func(b *Broker) { b.Log.Format = "xml" }, `log.format: must be text or json, got "xml"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := defaultBroker()
			c.modify(&b)
			err := b.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err does not wrap ErrInvalid")
			}
		})
	}

	ok := defaultBroker()
	ok.NATSListen = "" // in-process only
	ok.UDPIngest = []UDPIngest{{Stream: "cam_1-A", Addr: "127.0.0.1:0"}}
	ok.WHEPAddr = "127.0.0.1:0"
	ok.NATSMonitorAddr = "127.0.0.1:8222"
	ok.WHEP.ICEServers = []string{"stun:stun.example.org:3478", "turn:turn.example.org:3478?username=u&credential=p"}
	ok.WHEP.PublicIPs = []string{"203.0.113.1", "2001:db8::1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}

	// Every problem is reported at once.
	b := defaultBroker()
	b.Storage, b.Replicas = "disk", 0
	err := b.Validate()
	if err == nil || !strings.Contains(err.Error(), "storage:") || !strings.Contains(err.Error(), "replicas:") {
		t.Fatalf("err = %v, want both problems", err)
	}
}

func TestNodeValidate(t *testing.T) {
	n := Node{HTTPAddr: ":8889", NATS: NATSClient{URL: "nats://127.0.0.1:4222"}, WHEP: defaultWHEP(), Log: Log{Level: "info", Format: "text"}}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	n.NATS.URL = ""
	n.HTTPAddr = "8889"
	err := n.Validate()
	for _, want := range []string{`nats.url: must be set`, `http-addr: "8889" is not host:port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}
