package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/relay"
)

// problems collects validation failures, each "key: message".
type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(p, "; "))
}

// Validate checks the broker configuration and returns one error wrapping
// ErrInvalid that lists every problem, or nil.
func (b *Broker) Validate() error {
	var p problems
	p.addr("ingest-addr", b.IngestAddr, true)
	streams, addrs := map[string]bool{}, map[string]bool{}
	for _, u := range b.UDPIngest {
		if err := bus.ValidateName(u.Stream); err != nil {
			p.add("udp-ingest", "%q: %v", u.Stream+"="+u.Addr, err)
		} else if streams[u.Stream] {
			p.add("udp-ingest", "stream %q listed twice", u.Stream)
		}
		streams[u.Stream] = true
		if err := checkAddr(u.Addr); err != nil {
			p.add("udp-ingest", "%q: %v", u.Stream+"="+u.Addr, err)
		} else if addrs[u.Addr] {
			p.add("udp-ingest", "address %q listed twice", u.Addr)
		}
		addrs[u.Addr] = true
	}
	if b.UDPIdle <= 0 {
		p.add("udp-idle", "must be > 0, got %v", b.UDPIdle)
	}
	p.tokens("ingest-token", b.IngestTokens)
	if b.IngestIdle <= 0 {
		p.add("ingest-idle", "must be > 0, got %v", b.IngestIdle)
	}
	if _, err := ingest.ParseTakeoverPolicy(b.Takeover); err != nil {
		p.add("takeover", "%q: want allow or deny", b.Takeover)
	}
	p.addr("srt-addr", b.SRTAddr, false)
	if n := len(b.SRTPassphrase); n != 0 && (n < 10 || n > 79) {
		p.add("srt-passphrase", "has %d characters, SRT wants 10 to 79", n)
	}
	if b.SRTLatency < 0 {
		p.add("srt-latency", "must not be negative, got %v", b.SRTLatency)
	}
	p.addr("rtmp-addr", b.RTMPAddr, false)
	p.addr("whip-udp-addr", b.WHIPUDPAddr, false)
	if (b.RTMPCert == "") != (b.RTMPKey == "") {
		p.add("rtmp-cert", "--rtmp-cert and --rtmp-key go together")
	}
	embedded := b.NATS.URL == ""
	if embedded {
		for key, val := range map[string]string{
			"nats.user": b.NATS.User, "nats.password": b.NATS.Password, "nats.token": b.NATS.Token,
			"nats.nkey-file": b.NATS.NKeyFile, "nats.creds-file": b.NATS.CredsFile,
			"nats.tls-ca": b.NATS.TLSCA, "nats.tls-cert": b.NATS.TLSCert, "nats.tls-key": b.NATS.TLSKey,
		} {
			if val != "" {
				p.add(key, "needs nats.url (--nats-url); the embedded server takes no client options")
			}
		}
		p.addr("nats-listen", b.NATSListen, false)
		p.addr("nats-monitor-addr", b.NATSMonitorAddr, false)
		if b.Storage == "file" && b.DataDir == "" {
			p.add("data-dir", "must be set for file storage")
		}
	} else {
		b.NATS.validate(&p)
		if b.NATSMonitorAddr != "" {
			p.add("nats-monitor-addr", "needs the embedded server (no --nats-url); an external server has its own monitoring (nats-server -m)")
		}
	}
	if b.Replicas < 1 || b.Replicas > bus.MaxReplicas {
		p.add("replicas", "must be 1 to %d, got %d", bus.MaxReplicas, b.Replicas)
	} else if b.Replicas > 1 && embedded {
		p.add("replicas", "%d needs a NATS cluster (--nats-url); the embedded server is a single node", b.Replicas)
	}
	if b.Storage != "file" && b.Storage != "memory" {
		p.add("storage", "must be file or memory, got %q", b.Storage)
	}
	if b.MaxAge < bus.MinMaxAge {
		p.add("max-age", "must be at least %v, got %v", bus.MinMaxAge, b.MaxAge)
	}
	if b.MaxBytes != 0 && b.MaxBytes < bus.MinMaxBytes { // 0: bus.DefaultMaxBytes
		p.add("max-bytes", "must be at least %d (64KiB), got %d", bus.MinMaxBytes, b.MaxBytes)
	}
	if b.MaxStreams < 0 {
		p.add("max-streams", "must be 0 (no limit) or more, got %d", b.MaxStreams)
	}
	if b.StorageBudget < 0 {
		p.add("storage-budget", "must be 0 (no budget) or more, got %d", b.StorageBudget)
	}
	if err := b.TranscodeConfig().Validate(); err != nil {
		p.add("transcode", "%v", err)
	}
	if b.MaxTranscodes < 1 {
		p.add("max-transcodes", "must be at least 1, got %d", b.MaxTranscodes)
	}
	p.addr("whep-addr", b.WHEPAddr, false)
	b.WHEP.validate(&p)
	b.Log.validate(&p)
	return p.err()
}

// Validate checks the whep-node configuration like Broker.Validate.
func (n *Node) Validate() error {
	var p problems
	p.addr("http-addr", n.HTTPAddr, true)
	if n.NATS.URL == "" {
		p.add("nats.url", "must be set")
	}
	n.NATS.validate(&p)
	n.WHEP.validate(&p)
	n.Log.validate(&p)
	return p.err()
}

func (w *WHEP) validate(p *problems) {
	if w.MaxExports < 0 {
		p.add("whep.max-exports", "must be >= 0 (0: the default), got %d", w.MaxExports)
	}
	p.addr("whep.ice-udp-addr", w.ICEUDPAddr, true)
	p.addr("whep.ice-tcp-addr", w.ICETCPAddr, false)
	for _, ip := range w.PublicIPs {
		if net.ParseIP(ip) == nil {
			p.add("whep.public-ip", "%q is not an IP address", ip)
		}
	}
	for _, s := range w.ICEServers {
		scheme, rest, _ := strings.Cut(s, ":")
		switch scheme {
		case "stun", "stuns", "turn", "turns":
			if strings.TrimLeft(rest, "/") != "" {
				continue
			}
		}
		p.add("whep.ice-server", "%q is not a stun:, stuns:, turn: or turns: URL", s)
	}
	p.tokens("whep.token", w.Tokens)
	p.tokens("whep.admin-token", w.AdminTokens)
	if w.WaitTimeout <= 0 {
		p.add("whep.wait-timeout", "must be > 0, got %v", w.WaitTimeout)
	}
	if w.MaxWaiting < 0 {
		p.add("whep.max-waiting", "must be >= 0, got %d", w.MaxWaiting)
	}
	if w.MaxSessions < 0 {
		p.add("whep.max-sessions", "must be >= 0 (0 = unlimited), got %d", w.MaxSessions)
	}
	if w.MaxSessionsPerStream < 0 {
		p.add("whep.max-sessions-per-stream", "must be >= 0 (0 = unlimited), got %d", w.MaxSessionsPerStream)
	}
	if _, err := relay.ParseStartMode(w.Start); err != nil {
		p.add("whep.start", "must be gop or live, got %q", w.Start)
	}
	if !(w.ReplayRate > 1 && w.ReplayRate <= relay.MaxReplayRate) { // NaN too
		p.add("whep.replay-rate", "must be more than 1, at most %d, got %g", relay.MaxReplayRate, w.ReplayRate)
	}
	if w.ICEDisconnectedTimeout < 0 {
		p.add("whep.ice-disconnected-timeout", "must be >= 0 (0: the default), got %v", w.ICEDisconnectedTimeout)
	}
	if w.ICEFailedTimeout < 0 {
		p.add("whep.ice-failed-timeout", "must be >= 0 (0: the default), got %v", w.ICEFailedTimeout)
	}
	if w.DrainTimeout < 0 {
		p.add("whep.drain-timeout", "must be >= 0 (0 = close sessions at once), got %v", w.DrainTimeout)
	}
}

func (c *NATSClient) validate(p *problems) {
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		pu, err := url.Parse(u)
		switch {
		case err != nil:
			p.add("nats.url", "%v", err)
		case pu.Scheme != "nats" && pu.Scheme != "tls" && pu.Scheme != "ws" && pu.Scheme != "wss":
			p.add("nats.url", "%q: scheme must be nats, tls, ws or wss", u)
		case pu.Host == "":
			p.add("nats.url", "%q has no host", u)
		}
	}
	if c.Password != "" && c.User == "" {
		p.add("nats.password", "needs nats.user")
	}
	methods := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.NKeyFile != "", c.CredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		p.add("nats", "set only one of user/password, token, nkey-file and creds-file")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p.add("nats.tls-cert", "nats.tls-cert and nats.tls-key go together")
	}
}

func (l *Log) validate(p *problems) {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "must be debug, info, warn or error, got %q", l.Level)
	}
	switch strings.ToLower(l.Format) {
	case "text", "json":
	default:
		p.add("log.format", "must be text or json, got %q", l.Format)
	}
}

// addr checks a host:port listen address; empty is allowed unless required.
func (p *problems) addr(key, addr string, required bool) {
	if addr == "" {
		if required {
			p.add(key, "must be set (host:port)")
		}
		return
	}
	if err := checkAddr(addr); err != nil {
		p.add(key, "%v", err)
	}
}

func (p *problems) tokens(key string, tokens []string) {
	for _, t := range tokens {
		if strings.TrimSpace(t) == "" {
			p.add(key, "must not be empty")
			return
		}
	}
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}
