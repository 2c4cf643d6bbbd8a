package config

import (
	"time"

	"github.com/whepcast/whepcast/pkg/transcode"
)

// Log configures log/slog output.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error (default info)
	Format string `mapstructure:"format"` // text or json (default text)
}

// Debug configures the diagnostics listener.
type Debug struct {
	// Addr serves Go's runtime profiles (net/http/pprof: /debug/pprof/) on
	// this HTTP address; off when empty (the default). Never expose it
	// publicly: bind it to loopback or a private network.
	Addr string `mapstructure:"addr"`
}

// NATSClient configures a connection to an existing NATS deployment.
type NATSClient struct {
	URL       string `mapstructure:"url"` // comma-separated server URLs
	User      string `mapstructure:"user"`
	Password  string `mapstructure:"password"`
	Token     string `mapstructure:"token"`
	NKeyFile  string `mapstructure:"nkey-file"`
	CredsFile string `mapstructure:"creds-file"`
	TLSCA     string `mapstructure:"tls-ca"`
	TLSCert   string `mapstructure:"tls-cert"`
	TLSKey    string `mapstructure:"tls-key"`
}

// WHEP configures a WHEP playback server (whep-node, or the broker's
// in-process one).
type WHEP struct {
	// ICEUDPAddr is the single UDP address all sessions share (default ":8189").
	ICEUDPAddr string `mapstructure:"ice-udp-addr"`
	// ICETCPAddr enables ICE-TCP on this address when set.
	ICETCPAddr string `mapstructure:"ice-tcp-addr"`
	// UDPGSO sends the packets of a video frame, and the audio packets
	// that arrive together (padded to one size), to a viewer with one
	// system call (Linux UDP segmentation offload; default true).
	UDPGSO bool `mapstructure:"udp-gso"`
	// DirectSRTP encrypts media with SRTP in whepcast and writes it
	// straight to the UDP batch, past pion's per-packet path (default
	// true).
	DirectSRTP bool `mapstructure:"direct-srtp"`
	// ICEDisconnectedTimeout and ICEFailedTimeout are how long a session
	// hears nothing from its client before ICE is disconnected, and then
	// failed, which closes the session (defaults 5s and 25s; 0 in a
	// whep.Config takes those).
	ICEDisconnectedTimeout time.Duration `mapstructure:"ice-disconnected-timeout"`
	ICEFailedTimeout       time.Duration `mapstructure:"ice-failed-timeout"`
	// PublicIPs are announced as host candidates (NAT 1:1).
	PublicIPs []string `mapstructure:"public-ip"`
	// ICEServers are STUN/TURN URLs, also sent as Link rel="ice-server".
	// Credentials: turn:host:3478?username=u&credential=p
	ICEServers []string `mapstructure:"ice-server"`
	// Tokens accepted as Bearer on POST/PATCH/DELETE; empty = open.
	Tokens    []string `mapstructure:"token"`
	TokenFile string   `mapstructure:"token-file"`
	// AdminTokens accepted as Bearer by GET /sessions; empty = loopback
	// clients only.
	AdminTokens []string `mapstructure:"admin-token"`
	// WaitTimeout bounds how long a POST is held for a stream that is not live.
	WaitTimeout time.Duration `mapstructure:"wait-timeout"`
	// MaxWaiting bounds the number of held POSTs (503 beyond).
	MaxWaiting int `mapstructure:"max-waiting"`
	// MaxSessions per node and per stream (503 beyond); 0 = unlimited.
	MaxSessions          int `mapstructure:"max-sessions"`
	MaxSessionsPerStream int `mapstructure:"max-sessions-per-stream"`
	// Start is where a new viewer starts: "gop" (latest keyframe) or "live".
	Start string `mapstructure:"start"`
	// ReplayRate is the pace of the GOP replayed to a viewer that starts
	// with it, as a multiple of the stream's bitrate (relay.Config.ReplayRate).
	ReplayRate float64 `mapstructure:"replay-rate"`
	// AllowOrigin is the CORS Access-Control-Allow-Origin value (default "*").
	AllowOrigin string `mapstructure:"allow-origin"`
	// DrainTimeout is how long a draining node keeps the sessions it told to
	// reconnect elsewhere before it closes them (default 30s); 0 closes them
	// at once.
	DrainTimeout time.Duration `mapstructure:"drain-timeout"`
	// MaxExports bounds the clip exports in progress (GET /export/, 503
	// beyond; export.Config.MaxExports).
	MaxExports int `mapstructure:"max-exports"`
}

// Node is the configuration of cmd/whep-node.
type Node struct {
	HTTPAddr string     `mapstructure:"http-addr"` // default ":8889"
	NATS     NATSClient `mapstructure:"nats"`      // URL default nats://127.0.0.1:4222
	WHEP     WHEP       `mapstructure:"whep"`
	Log      Log        `mapstructure:"log"`
	Debug    Debug      `mapstructure:"debug"`
}

// UDPIngest maps a UDP listen address to a stream name.
type UDPIngest struct {
	Stream string
	Addr   string
}

// Broker is the configuration of cmd/broker.
type Broker struct {
	// IngestAddr serves PUT/POST /ingest/{stream}, /healthz, /metrics (default ":8080").
	IngestAddr string `mapstructure:"ingest-addr"`
	// UDPIngest: --udp-ingest STREAM=ADDR, repeatable.
	UDPIngest []UDPIngest `mapstructure:"-"`
	// UDPIdle is the silence after which a UDP publication ends; the next
	// datagram starts a new publication (new epoch). Default 5s.
	UDPIdle time.Duration `mapstructure:"udp-idle"`
	// IngestTokens accepted as Bearer on ingest; empty = open ingest.
	IngestTokens []string `mapstructure:"ingest-token"`
	// IngestIdle ends an HTTP ingest whose body sends nothing for that long.
	IngestIdle time.Duration `mapstructure:"ingest-idle"`
	// Takeover: allow (default) or deny a new publisher of a live stream.
	Takeover string `mapstructure:"takeover"`
	// SRTAddr is the SRT ingest's UDP address (off when empty).
	SRTAddr string `mapstructure:"srt-addr"`
	// SRTPassphrase is required of SRT publishers when set.
	SRTPassphrase string `mapstructure:"srt-passphrase"`
	// SRTLatency is the SRT receiver latency (default 120 ms).
	SRTLatency time.Duration `mapstructure:"srt-latency"`
	// RTMPAddr is the RTMP ingest's TCP address (default ":1935"; off when
	// empty).
	RTMPAddr string `mapstructure:"rtmp-addr"`
	// RTMPCert and RTMPKey make the RTMP listener RTMPS.
	RTMPCert string `mapstructure:"rtmp-cert"`
	RTMPKey  string `mapstructure:"rtmp-key"`
	// WHIPUDPAddr is the one UDP address of every WHIP publisher's
	// PeerConnection (ephemeral ports when empty).
	WHIPUDPAddr string `mapstructure:"whip-udp-addr"`
	// NATS: URL empty = embed a nats-server.
	NATS     NATSClient `mapstructure:"nats"`
	Replicas int        `mapstructure:"replicas"` // JetStream replicas (default 1)
	// Embedded server.
	NATSListen string `mapstructure:"nats-listen"` // default 127.0.0.1:4222
	DataDir    string `mapstructure:"data-dir"`    // default ./data
	Storage    string `mapstructure:"storage"`     // file (default) or memory
	// NATSMonitorAddr serves the embedded server's HTTP monitoring
	// (/varz, /jsz, ...); off when empty.
	NATSMonitorAddr string `mapstructure:"nats-monitor-addr"`
	// Retention per media stream.
	MaxAge   time.Duration `mapstructure:"max-age"`   // default 30s
	MaxBytes int64         `mapstructure:"max-bytes"` // default 0: no per-stream limit (no reservation)
	// Stream lifecycle: limits of new streams (0: none).
	MaxStreams    int   `mapstructure:"max-streams"`    // streams live at once
	StorageBudget int64 `mapstructure:"storage-budget"` // JetStream bytes in use
	// Transcoding stage (pkg/transcode): auto, audio or off; the streams
	// transcoded at once; the ffmpeg binary.
	Transcode     string `mapstructure:"transcode"`
	MaxTranscodes int    `mapstructure:"max-transcodes"`
	FFmpeg        string `mapstructure:"ffmpeg"`
	// WHEPAddr serves WHEP in-process when set (off by default).
	WHEPAddr string `mapstructure:"whep-addr"`
	WHEP     WHEP   `mapstructure:"whep"`
	// Demo loops the bundled sample as stream "demo" and serves WHEP on :8889.
	Demo  bool  `mapstructure:"demo"`
	Log   Log   `mapstructure:"log"`
	Debug Debug `mapstructure:"debug"`
}

// TranscodeConfig is the transcoding stage's configuration (its Logger is
// the caller's to set).
func (b Broker) TranscodeConfig() transcode.Config {
	return transcode.Config{Mode: transcode.Mode(b.Transcode), MaxTranscodes: b.MaxTranscodes, FFmpeg: b.FFmpeg}
}
