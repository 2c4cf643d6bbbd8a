package whep

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/udpbatch"
)

// iceNet is the ICE transport shared by all sessions of a Server: one UDP
// port, an optional ICE-TCP listener, and the SettingEngine using them.
type iceNet struct {
	udp      ice.UDPMux
	batches  *udpbatch.Group // nil when UDP GSO is off
	udpAddrs []net.Addr
	tcp      ice.TCPMux
	tcpAddr  net.Addr
	settings webrtc.SettingEngine
}

// newICENet binds the ICE listeners of cfg and builds the SettingEngine.
func newICENet(cfg Config, logger *slog.Logger) (*iceNet, error) {
	lf := pionLoggerFactory{logger: logger}
	n := &iceNet{}
	var muxNet []ice.UDPMuxFromPortOption
	if cfg.UDPGSO {
		n.batches = udpbatch.NewGroup(true, logger.With("component", "udpbatch"))
		tn, err := n.batches.Net()
		if err != nil {
			return nil, fmt.Errorf("whep: network: %w", err)
		}
		muxNet = append(muxNet, ice.UDPMuxFromPortWithNet(tn))
	}
	host, portStr, err := net.SplitHostPort(cfg.ICEUDPAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: ice-udp-addr %q: %w", ErrInvalidConfig, cfg.ICEUDPAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: ice-udp-addr %q: bad port", ErrInvalidConfig, cfg.ICEUDPAddr)
	}
	ip := net.ParseIP(host)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	loopback := false
	switch {
	case host == "" || ip != nil && ip.IsUnspecified():
		// Every interface: one socket per local address, all on port.
		iceNetworks := []ice.NetworkType{ice.NetworkTypeUDP4}
		if host == "" || ip.To4() == nil {
			iceNetworks = append(iceNetworks, ice.NetworkTypeUDP6)
			networks = append(networks, webrtc.NetworkTypeUDP6)
		}
		mux, err := ice.NewMultiUDPMuxFromPort(port, append(muxNet,
			ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux")),
			ice.UDPMuxFromPortWithNetworks(iceNetworks...))...)
		if err != nil {
			return nil, fmt.Errorf("whep: ICE UDP port %d: %w", port, err)
		}
		n.udp = mux
	default:
		if ip == nil {
			ips, err := net.DefaultResolver.LookupIP(context.Background(), "ip", host)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("%w: ice-udp-addr %q: cannot resolve %q", ErrInvalidConfig, cfg.ICEUDPAddr, host)
			}
			ip = ips[0]
		}
		network := "udp4"
		if ip.To4() == nil {
			network = "udp6"
			networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP6}
		}
		conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, fmt.Errorf("whep: ICE UDP %s: %w", cfg.ICEUDPAddr, err)
		}
		if n.batches != nil {
			n.udp = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), n.batches.Wrap(conn))
		} else {
			n.udp = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), conn)
		}
		loopback = ip.IsLoopback()
	}
	n.udpAddrs = n.udp.GetListenAddresses()

	if cfg.ICETCPAddr != "" {
		ln, err := net.Listen("tcp", cfg.ICETCPAddr)
		if err != nil {
			_ = n.udp.Close()
			return nil, fmt.Errorf("whep: ICE TCP %s: %w", cfg.ICETCPAddr, err)
		}
		n.tcpAddr = ln.Addr()
		n.tcp = webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), ln, 8)
		networks = append(networks, webrtc.NetworkTypeTCP4)
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.To4() == nil {
			networks = append(networks, webrtc.NetworkTypeTCP6)
		}
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			loopback = true
		}
	}

	s := webrtc.SettingEngine{LoggerFactory: lf}
	s.SetICEUDPMux(n.udp)
	if n.tcp != nil {
		s.SetICETCPMux(n.tcp)
	}
	s.SetNetworkTypes(networks)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetIncludeLoopbackCandidate(loopback)
	keepalive := min(iceKeepalive, cfg.ICEDisconnectedTimeout/2)
	s.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, keepalive)
	if len(cfg.PublicIPs) > 0 {
		for _, ip := range cfg.PublicIPs {
			if net.ParseIP(ip) == nil {
				n.close()
				return nil, fmt.Errorf("%w: public-ip %q is not an IP address", ErrInvalidConfig, ip)
			}
		}
		if err := s.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			n.close()
			return nil, fmt.Errorf("%w: public-ip: %w", ErrInvalidConfig, err)
		}
	}
	n.settings = s
	return n, nil
}

func (n *iceNet) close() {
	if n.tcp != nil {
		_ = n.tcp.Close()
	}
	if n.udp != nil {
		_ = n.udp.Close()
	}
}

// iceServers parses Config.ICEServers: STUN/TURN URLs whose username and
// credential query parameters become the ICEServer's credentials. It returns
// the servers for the PeerConnections and the Link header values of a 201.
func iceServers(urls []string) ([]webrtc.ICEServer, []string, error) {
	var servers []webrtc.ICEServer
	var links []string
	for _, raw := range urls {
		scheme, rest, ok := strings.Cut(raw, ":")
		switch scheme {
		case "stun", "stuns", "turn", "turns":
		default:
			ok = false
		}
		if !ok || rest == "" {
			return nil, nil, fmt.Errorf("%w: ice-server %q is not a stun:, stuns:, turn: or turns: URL", ErrInvalidConfig, raw)
		}
		hostPort, query, _ := strings.Cut(rest, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: ice-server %q: %w", ErrInvalidConfig, raw, err)
		}
		user, cred := q.Get("username"), q.Get("credential")
		q.Del("username")
		q.Del("credential")
		u := scheme + ":" + hostPort
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		// Let pion's parser check the URL now rather than at the first POST.
		if _, err := stun.ParseURI(u); err != nil {
			return nil, nil, fmt.Errorf("%w: ice-server %q: %w", ErrInvalidConfig, raw, err)
		}
		srv := webrtc.ICEServer{URLs: []string{u}}
		link := "<" + u + `>; rel="ice-server"`
		if user != "" || cred != "" {
			srv.Username, srv.Credential, srv.CredentialType = user, cred, webrtc.ICECredentialTypePassword
			link += "; username=" + quote(user) + "; credential=" + quote(cred) + `; credential-type="password"`
		}
		if (scheme == "turn" || scheme == "turns") && (user == "" || cred == "") {
			return nil, nil, fmt.Errorf("%w: ice-server %q: TURN needs username and credential", ErrInvalidConfig, raw)
		}
		servers = append(servers, srv)
		links = append(links, link)
	}
	return servers, links, nil
}

// quote returns s as an HTTP quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// pionLoggerFactory sends pion's logs to slog: trace is dropped, debug and
// info go to debug (pion's info is per-connection chatter), warn and error to
// warn (they mostly report what remote peers send), except the routine ones
// of every session's life (pionRoutine), at debug.
type pionLoggerFactory struct{ logger *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{logger: f.logger.With("pion", scope)}
}

type pionLogger struct{ logger *slog.Logger }

func (l pionLogger) log(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	l.logger.Log(ctx, level, fmt.Sprintf(format, args...))
}

func (pionLogger) Trace(string)                        {}
func (pionLogger) Tracef(string, ...any)               {}
func (l pionLogger) Debug(msg string)                  { l.log(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.log(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.log(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.log(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.warn("%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.warn(format, args...) }
func (l pionLogger) Error(msg string)                  { l.warn("%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.warn(format, args...) }

// pionRoutine are pion warnings that every session produces in its normal
// life (an ICE check before the remote candidates are known; reads that end
// because the session closed): logged at debug, not at warn, so that a
// node's warnings mean something. A warning containing one of them is
// routine.
var pionRoutine = []string{
	"Failed to ping without candidate pairs",
	"stream is already closed",
	"read/write on closed pipe",
}

func (l pionLogger) warn(format string, args ...any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, slog.LevelWarn) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	level := slog.LevelWarn
	for _, r := range pionRoutine {
		if strings.Contains(msg, r) {
			level = slog.LevelDebug
			break
		}
	}
	l.logger.Log(ctx, level, msg)
}
