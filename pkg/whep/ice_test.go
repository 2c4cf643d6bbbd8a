package whep

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestICEServers(t *testing.T) {
	servers, links, err := iceServers([]string{
		"stun:stun.example.net",
		"stun:stun.example.net:3478",
		`turn:turn.example.net:3478?transport=tcp&username=al"ice&credential=p\w`,
		"turns:turn.example.net:5349?username=u&credential=p",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLinks := []string{
		`<stun:stun.example.net>; rel="ice-server"`,
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=tcp>; rel="ice-server"; username="al\"ice"; credential="p\\w"; credential-type="password"`,
		`<turns:turn.example.net:5349>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`,
	}
	if len(links) != len(wantLinks) {
		t.Fatalf("links = %q", links)
	}
	for i := range links {
		if links[i] != wantLinks[i] {
			t.Errorf("link %d = %s, want %s", i, links[i], wantLinks[i])
		}
	}
	s := servers[2]
	if s.URLs[0] != "turn:turn.example.net:3478?transport=tcp" || s.Username != `al"ice` || s.Credential != `p\w` ||
		s.CredentialType != webrtc.ICECredentialTypePassword {
		t.Fatalf("turn server %+v", s)
	}
	if servers[0].Username != "" || servers[0].Credential != nil {
		t.Fatalf("stun server %+v", servers[0])
	}
	for _, bad := range []string{"http://x", "stun:", "turn:turn.example.net", "stun:[::1", "turn:h?username=u"} {
		if _, _, err := iceServers([]string{bad}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("iceServers(%q) = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	deps := Deps{Catalog: newFakeCatalog(), Media: &fakeMedia{}}
	base := func() Config { c := Config{}; c.ICEUDPAddr = "127.0.0.1:0"; return c }
	cases := map[string]func(*Config){
		"node id":    func(c *Config) { c.NodeID = "a.b" },
		"start":      func(c *Config) { c.Start = "never" },
		"negative":   func(c *Config) { c.MaxSessions = -1 },
		"udp addr":   func(c *Config) { c.ICEUDPAddr = "nonsense" },
		"udp port":   func(c *Config) { c.ICEUDPAddr = "127.0.0.1:x" },
		"token file": func(c *Config) { c.TokenFile = t.TempDir() + "/missing" },
		"ice server": func(c *Config) { c.ICEServers = []string{"ftp://x"} },
		"timeout":    func(c *Config) { c.WaitTimeout = -1 },
		"public ip":  func(c *Config) { c.PublicIPs = []string{"not-an-ip"} },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			c := base()
			mod(&c)
			s, err := New(c, deps)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(base(), Deps{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New without deps = %v", err)
	}
}

// TestICEAddresses checks the candidates of the shared port: loopback host
// candidates on the one UDP port, ICE-TCP passive candidates, and public IPs
// replacing host addresses.
func TestICEAddresses(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.ICETCPAddr = "127.0.0.1:0" })
	ts.catalog.set(liveEntry("cam", trackH264))
	port := ts.srv.ICEUDPAddrs()[0].String()
	for range 2 {
		resp, body := ts.post(t, ctx, "cam", fixedOffer("video"), nil)
		if resp.StatusCode != 201 {
			t.Fatalf("POST = %d", resp.StatusCode)
		}
		if !strings.Contains(body, " udp ") || !strings.Contains(body, "typ host") || !strings.Contains(body, "tcptype passive") {
			t.Fatalf("answer lacks udp/tcp host candidates:\n%s", body)
		}
		if !strings.Contains(body, " "+hostPort(port)+" typ host") {
			t.Fatalf("answer does not use the shared port %s:\n%s", port, body)
		}
	}

	pub := newTestServer(t, func(c *Config) { c.PublicIPs = []string{"203.0.113.9"}; c.NodeID = "pub" })
	pub.catalog.set(liveEntry("cam", trackH264))
	resp, body := pub.post(t, ctx, "cam", fixedOffer("video"), nil)
	if resp.StatusCode != 201 || !strings.Contains(body, "203.0.113.9") || strings.Contains(body, "127.0.0.1 ") {
		t.Fatalf("public IP answer = %d\n%s", resp.StatusCode, body)
	}
}

// hostPort turns "127.0.0.1:8189" into "127.0.0.1 8189" as in a candidate.
func hostPort(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i] + " " + addr[i+1:]
}

func TestPionRoutineWarningsAtDebug(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := pionLoggerFactory{logger: logger}.NewLogger("ice")
	l.Warn("Failed to ping without candidate pairs. Connection is not possible yet.")
	l.Warnf("Failed to accept RTP %v", "stream is already closed")
	l.Warnf("Failed to read from candidate udp4 host 192.0.2.2:8189: %v", "io: read/write on closed pipe")
	l.Errorf("Failed to handle %s", "a real problem")
	l.Info("chatter")
	got := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="Failed to ping without candidate pairs. Connection is not possible yet." pion=ice`,
		`level=DEBUG msg="Failed to accept RTP stream is already closed" pion=ice`,
		`level=DEBUG msg="Failed to read from candidate udp4 host 192.0.2.2:8189: io: read/write on closed pipe" pion=ice`,
		`level=WARN msg="Failed to handle a real problem" pion=ice`,
		`level=DEBUG msg=chatter pion=ice`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}
