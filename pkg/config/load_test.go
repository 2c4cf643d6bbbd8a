package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/export"
	"github.com/whepcast/whepcast/pkg/transcode"
)

func defaultBroker() Broker {
	return Broker{
		IngestAddr:    ":8080",
		UDPIdle:       5 * time.Second,
		IngestIdle:    30 * time.Second,
		Takeover:      "allow",
		SRTLatency:    120 * time.Millisecond,
		RTMPAddr:      ":1935",
		NATS:          NATSClient{},
		Replicas:      1,
		NATSListen:    "127.0.0.1:4222",
		DataDir:       "./data",
		Storage:       "file",
		MaxAge:        30 * time.Second,
		MaxBytes:      bus.DefaultMaxBytes,
		Transcode:     string(transcode.DefaultMode),
		MaxTranscodes: transcode.DefaultMaxTranscodes,
		FFmpeg:        transcode.DefaultFFmpeg,
		WHEP:          defaultWHEP(),
		Log:           Log{Level: "info", Format: "text"},
	}
}

func defaultWHEP() WHEP {
	return WHEP{
		ICEUDPAddr:             ":8189",
		UDPGSO:                 true,
		DirectSRTP:             true,
		WaitTimeout:            30 * time.Second,
		ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout:       25 * time.Second,
		MaxWaiting:             1000,
		Start:                  "gop",
		ReplayRate:             4,
		AllowOrigin:            "*",
		DrainTimeout:           30 * time.Second,
		MaxExports:             export.DefaultMaxExports,
	}
}

// normalize turns empty slices into nil so that expectations can omit them.
func normalize(b *Broker) {
	for _, s := range []*[]string{&b.IngestTokens, &b.WHEP.PublicIPs, &b.WHEP.ICEServers, &b.WHEP.Tokens, &b.WHEP.AdminTokens} {
		if len(*s) == 0 {
			*s = nil
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "whepcast.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const brokerYAML = `
ingest-addr: "127.0.0.1:9000"
udp-ingest: ["cam1=127.0.0.1:5000", "cam2=127.0.0.1:5002"]
ingest-token: [a, b]
storage: memory
max-age: 1m
max-bytes: 64MiB
replicas: 1
whep:
  ice-udp-addr: ":9189"
  public-ip: [203.0.113.7]
  start: live
log:
  level: debug
  format: json
`

func TestLoadBroker(t *testing.T) {
	file := writeFile(t, brokerYAML)
	fromFile := func() Broker {
		b := defaultBroker()
		b.IngestAddr = "127.0.0.1:9000"
		b.UDPIngest = []UDPIngest{{Stream: "cam1", Addr: "127.0.0.1:5000"}, {Stream: "cam2", Addr: "127.0.0.1:5002"}}
		b.IngestTokens = []string{"a", "b"}
		b.Storage = "memory"
		b.MaxAge = time.Minute
		b.MaxBytes = 64 << 20
		b.WHEP.ICEUDPAddr = ":9189"
		b.WHEP.PublicIPs = []string{"203.0.113.7"}
		b.WHEP.Start = "live"
		b.Log = Log{Level: "debug", Format: "json"}
		return b
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want func() Broker
	}{
		{name: "defaults", want: defaultBroker},
		{name: "rtmp off", args: []string{"--rtmp-addr", ""}, want: func() Broker { b := defaultBroker(); b.RTMPAddr = ""; return b }},
		{name: "rtmp off from env", env: []string{"WHEPCAST_RTMP_ADDR="}, want: func() Broker { b := defaultBroker(); b.RTMPAddr = ""; return b }},
		{
			name: "demo keeps an explicit whep-addr",
			args: []string{"--demo", "--whep-addr", "127.0.0.1:9889"},
			want: func() Broker { b := defaultBroker(); b.Demo = true; b.WHEPAddr = "127.0.0.1:9889"; return b },
		},
		{name: "file", args: []string{"--config", file}, want: fromFile},
		{name: "file from env", env: []string{"WHEPCAST_CONFIG=" + file}, want: fromFile},
		{
			name: "env overrides file",
			args: []string{"--config", file},
			env: []string{
				"WHEPCAST_INGEST_ADDR=:7000", "WHEPCAST_INGEST_TOKEN=x,y,z", "WHEPCAST_MAX_AGE=10s",
				"WHEPCAST_MAX_BYTES=100000", "WHEPCAST_WHEP_ICE_UDP_ADDR=:7189", "WHEPCAST_LOG_LEVEL=warn",
				"WHEPCAST_UDP_INGEST=c=127.0.0.1:6000", "WHEPCAST_DEMO=true", "WHEPCAST_WHEP_MAX_WAITING=5",
				"OTHER_INGEST_ADDR=:1", "WHEPCAST_UNKNOWN=ignored",
			},
			want: func() Broker {
				b := fromFile()
				b.IngestAddr = ":7000"
				b.IngestTokens = []string{"x", "y", "z"}
				b.MaxAge = 10 * time.Second
				b.MaxBytes = 100000
				b.WHEP.ICEUDPAddr = ":7189"
				b.Log.Level = "warn"
				b.UDPIngest = []UDPIngest{{Stream: "c", Addr: "127.0.0.1:6000"}}
				b.Demo = true
				b.WHEPAddr = DemoWHEPAddr // the demo serves WHEP
				b.WHEP.MaxWaiting = 5
				return b
			},
		},
		{
			name: "flag overrides env",
			args: []string{
				"--config", file, "--ingest-addr", ":6000", "--ingest-token", "f1", "--ingest-token", "f,2",
				"--max-bytes", "2GiB", "--ice-udp-addr", ":6189", "--log-level=error", "--udp-ingest", "d=:6001",
				"--demo=false", "--max-waiting", "7", "--max-age", "45s",
			},
			env: []string{
				"WHEPCAST_INGEST_ADDR=:7000", "WHEPCAST_INGEST_TOKEN=x,y", "WHEPCAST_MAX_BYTES=1000",
				"WHEPCAST_WHEP_ICE_UDP_ADDR=:7189", "WHEPCAST_LOG_LEVEL=warn", "WHEPCAST_DEMO=true",
				"WHEPCAST_WHEP_MAX_WAITING=5", "WHEPCAST_MAX_AGE=10s", "WHEPCAST_STORAGE=file",
			},
			want: func() Broker {
				b := fromFile()
				b.IngestAddr = ":6000"
				b.IngestTokens = []string{"f1", "f,2"}
				b.MaxBytes = 2 << 30
				b.WHEP.ICEUDPAddr = ":6189"
				b.Log.Level = "error"
				b.UDPIngest = []UDPIngest{{Stream: "d", Addr: ":6001"}}
				b.WHEP.MaxWaiting = 7
				b.MaxAge = 45 * time.Second
				b.Storage = "file" // env over file, no flag
				return b
			},
		},
		{
			name: "nats client",
			args: []string{"--nats-url", "nats://a:4222,nats://b:4222", "--nats-user", "u", "--nats-password", "p", "--replicas", "3"},
			env:  []string{"WHEPCAST_NATS_TLS_CA=/ca.pem"},
			want: func() Broker {
				b := defaultBroker()
				b.NATS = NATSClient{URL: "nats://a:4222,nats://b:4222", User: "u", Password: "p", TLSCA: "/ca.pem"}
				b.Replicas = 3
				return b
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadBroker(c.args, c.env)
			if err != nil {
				t.Fatal(err)
			}
			normalize(got)
			want := c.want()
			normalize(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestLoadNode(t *testing.T) {
	got, err := LoadNode(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Node{HTTPAddr: ":8889", NATS: NATSClient{URL: "nats://127.0.0.1:4222"}, WHEP: defaultWHEP(), Log: Log{Level: "info", Format: "text"}}
	got.WHEP.PublicIPs, got.WHEP.ICEServers, got.WHEP.Tokens, got.WHEP.AdminTokens = nil, nil, nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("defaults:\ngot  %+v\nwant %+v", *got, want)
	}

	file := writeFile(t, "http-addr: \":1\"\nnats: {url: \"nats://file:4222\", token: tok}\nwhep: {token: [t1], ice-server: [\"stun:stun.example.org:3478\"]}\n")
	got, err = LoadNode(
		[]string{"--config", file, "--token", "t3", "--start", "live", "--max-sessions", "10", "--wait-timeout", "2s", "--drain-timeout", "0s"},
		[]string{"WHEPCAST_HTTP_ADDR=:2", "WHEPCAST_WHEP_TOKEN=t2", "WHEPCAST_NATS_URL=nats://env:4222", "WHEPCAST_WHEP_MAX_SESSIONS_PER_STREAM=3"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want.HTTPAddr = ":2"
	want.NATS = NATSClient{URL: "nats://env:4222", Token: "tok"}
	want.WHEP.Tokens = []string{"t3"}
	want.WHEP.ICEServers = []string{"stun:stun.example.org:3478"}
	want.WHEP.Start = "live"
	want.WHEP.MaxSessions = 10
	want.WHEP.MaxSessionsPerStream = 3
	want.WHEP.WaitTimeout = 2 * time.Second
	want.WHEP.DrainTimeout = 0 // 0 is valid: close at once
	got.WHEP.PublicIPs, got.WHEP.AdminTokens = nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("overrides:\ngot  %+v\nwant %+v", *got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		node bool
		file string
		args []string
		env  []string
		want string
	}{
		{name: "unknown top-level key", file: "ingest-adr: \":1\"\n", want: `unknown keys: ingest-adr`},
		{name: "unknown nested key", file: "nats:\n  urll: x\n", want: `'nats' has invalid keys: urll`},
		{name: "unknown whep key in node", node: true, file: "whep:\n  sessions: 3\n", want: `'whep' has invalid keys: sessions`},
		{name: "broker key in node file", node: true, file: "ingest-addr: \":1\"\n", want: `unknown keys: ingest-addr`},
		{name: "bad yaml", file: "ingest-addr: [\n", want: `config file`},
		{name: "missing file", args: []string{"--config", "/nonexistent/whepcast.yaml"}, want: `config file: open /nonexistent/whepcast.yaml`},
		{name: "unknown flag", args: []string{"--ingest-adr", ":1"}, want: `unknown flag: --ingest-adr`},
		{name: "node has no broker flag", node: true, args: []string{"--ingest-addr", ":1"}, want: `unknown flag: --ingest-addr`},
		{name: "positional argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "bad duration flag", args: []string{"--max-age", "soon"}, want: `invalid argument "soon" for "--max-age"`},
		{name: "bad duration env", env: []string{"WHEPCAST_MAX_AGE=soon"}, want: `max-age' invalid duration "soon"`},
		{name: "bad duration file", file: "whep: {wait-timeout: forever}\n", want: `whep.wait-timeout' invalid duration "forever"`},
		{name: "bad drain timeout env", node: true, env: []string{"WHEPCAST_WHEP_DRAIN_TIMEOUT=later"}, want: `whep.drain-timeout' invalid duration "later"`},
		{name: "negative drain timeout", node: true, args: []string{"--drain-timeout", "-1s"}, want: `whep.drain-timeout: must be >= 0 (0 = close sessions at once), got -1s`},
		{name: "bad size", args: []string{"--max-bytes", "lots"}, want: `invalid size "lots"`},
		{name: "bad int env", env: []string{"WHEPCAST_REPLICAS=three"}, want: `replicas`},
		{name: "udp-ingest not STREAM=ADDR", args: []string{"--udp-ingest", "cam1:5000"}, want: `udp-ingest: "cam1:5000" is not STREAM=ADDR`},
		{name: "udp-ingest empty stream", args: []string{"--udp-ingest", "=:5000"}, want: `udp-ingest: "=:5000" is not STREAM=ADDR`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, c.file)}, args...)
			}
			var err error
			if c.node {
				_, err = LoadNode(args, c.env)
			} else {
				_, err = LoadBroker(args, c.env)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, c := range []struct {
		load func([]string, []string) error
		want []string
	}{
		{
			load: func(a, e []string) error { _, err := LoadBroker(a, e); return err },
			want: []string{"Usage: broker", "--ingest-addr string", "[WHEPCAST_INGEST_ADDR]", `(default ":8080")`, "--max-bytes", `(default "` + formatSize(bus.DefaultMaxBytes) + `")`, "[WHEPCAST_WHEP_ICE_UDP_ADDR]", "--nats-creds"},
		},
		{
			load: func(a, e []string) error { _, err := LoadNode(a, e); return err },
			want: []string{"Usage: whep-node", "--http-addr", `(default "nats://127.0.0.1:4222")`, "--token-file", "[WHEPCAST_LOG_FORMAT]"},
		},
	} {
		for _, arg := range []string{"--help", "-h"} {
			err := c.load([]string{arg}, nil)
			var he *HelpError
			if !errors.As(err, &he) || !errors.Is(err, ErrHelp) {
				t.Fatalf("%s: err = %v, want *HelpError", arg, err)
			}
			for _, w := range c.want {
				if !strings.Contains(he.Usage, w) {
					t.Errorf("usage lacks %q:\n%s", w, he.Usage)
				}
			}
		}
	}
}

func TestEnvNamesUnique(t *testing.T) {
	for name, opts := range map[string][]option{"broker": brokerOptions(), "node": nodeOptions()} {
		seen := map[string]string{envConfig: "config"}
		flags := map[string]bool{"config": true}
		for _, o := range opts {
			if prev, ok := seen[o.envName()]; ok {
				t.Errorf("%s: %s and %s share %s", name, prev, o.key, o.envName())
			}
			seen[o.envName()] = o.key
			if flags[o.flag] {
				t.Errorf("%s: flag --%s defined twice", name, o.flag)
			}
			flags[o.flag] = true
		}
	}
}

func TestUDPGSOCanBeTurnedOff(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      bool
	}{
		{nil, nil, true},
		{[]string{"--udp-gso=false"}, nil, false},
		{nil, []string{"WHEPCAST_WHEP_UDP_GSO=false"}, false},
		{[]string{"--udp-gso=true"}, []string{"WHEPCAST_WHEP_UDP_GSO=false"}, true},
	} {
		n, err := LoadNode(tc.args, tc.env)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if n.WHEP.UDPGSO != tc.want || n.WHEP.Relay().AudioGroupPadding != tc.want {
			t.Errorf("%v %v: UDPGSO = %v, relay's AudioGroupPadding %v, want %v", tc.args, tc.env, n.WHEP.UDPGSO, n.WHEP.Relay().AudioGroupPadding, tc.want)
		}
	}
}
