package config

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/export"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/ingest/rtmp"
	"github.com/whepcast/whepcast/pkg/ingest/srt"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/transcode"
	"github.com/whepcast/whepcast/pkg/whep"
)

// kind is the type of an option's value, which decides its flag type.
type kind int

const (
	kindString kind = iota
	kindInt
	kindBool
	kindDuration
	kindStrings // repeatable flag, comma-separated in the environment
	kindSize    // bytes with an optional KiB/MiB/GiB/KB/MB/GB suffix
	kindFloat
)

// option is one configuration key: its default, its flag and its variable.
type option struct {
	key   string // viper key, dotted for nested groups ("whep.ice-udp-addr")
	flag  string // flag name without dashes ("ice-udp-addr")
	kind  kind
	def   any // default, of the Go type of the struct field
	usage string
}

// envName is the environment variable of the option: WHEPCAST_ and the key
// in upper case, dots and dashes turned into underscores.
func (o option) envName() string {
	return envPrefix + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(o.key))
}

const (
	envPrefix = "WHEPCAST_"
	envConfig = envPrefix + "CONFIG"
)

// Defaults of the binaries' own settings. The settings of a library take
// that library's defaults (whep.DefaultICEUDPAddr, bus.DefaultMaxAge, ...).
const (
	DefaultIngestAddr  = ":8080"
	DefaultHTTPAddr    = ":8889"
	DefaultNodeNATSURL = "nats://127.0.0.1:4222"
	// DefaultUDPIdle is the default of --udp-idle.
	DefaultUDPIdle = 5 * time.Second
)

// defaultNATSListen is the embedded server's conventional client address.
var defaultNATSListen = net.JoinHostPort(embedded.DefaultHost, strconv.Itoa(embedded.DefaultPort))

func natsOptions(defaultURL, urlUsage string) []option {
	return []option{
		{key: "nats.url", flag: "nats-url", kind: kindString, def: defaultURL, usage: urlUsage},
		{key: "nats.user", flag: "nats-user", kind: kindString, def: "", usage: "NATS user name (with --nats-password)"},
		{key: "nats.password", flag: "nats-password", kind: kindString, def: "", usage: "NATS password"},
		{key: "nats.token", flag: "nats-token", kind: kindString, def: "", usage: "NATS authentication token"},
		{key: "nats.nkey-file", flag: "nats-nkey", kind: kindString, def: "", usage: "NATS NKey seed file"},
		{key: "nats.creds-file", flag: "nats-creds", kind: kindString, def: "", usage: "NATS credentials (JWT + seed) file"},
		{key: "nats.tls-ca", flag: "nats-tls-ca", kind: kindString, def: "", usage: "CA certificate file to verify the NATS servers"},
		{key: "nats.tls-cert", flag: "nats-tls-cert", kind: kindString, def: "", usage: "client certificate file for NATS (with --nats-tls-key)"},
		{key: "nats.tls-key", flag: "nats-tls-key", kind: kindString, def: "", usage: "client key file for NATS"},
	}
}

func whepOptions() []option {
	return []option{
		{key: "whep.ice-udp-addr", flag: "ice-udp-addr", kind: kindString, def: whep.DefaultICEUDPAddr, usage: "UDP address shared by all WebRTC sessions"},
		{key: "whep.ice-tcp-addr", flag: "ice-tcp-addr", kind: kindString, def: "", usage: "TCP address for ICE-TCP (off when empty)"},
		{key: "whep.udp-gso", flag: "udp-gso", kind: kindBool, def: whep.DefaultUDPGSO, usage: "send each video frame, and each group of audio packets (padded to one size), to a viewer with one system call (Linux UDP GSO; falls back by itself)"},
		{key: "whep.direct-srtp", flag: "direct-srtp", kind: kindBool, def: whep.DefaultDirectSRTP, usage: "encrypt media with SRTP here and write it straight to the UDP batch, past pion's per-packet write path (pion keeps ICE, DTLS, RTCP)"},
		{key: "whep.ice-disconnected-timeout", flag: "ice-disconnected-timeout", kind: kindDuration, def: whep.DefaultICEDisconnectedTimeout, usage: "silence from a viewer after which its connection is disconnected (media stops)"},
		{key: "whep.ice-failed-timeout", flag: "ice-failed-timeout", kind: kindDuration, def: whep.DefaultICEFailedTimeout, usage: "further silence after which the session is closed and its resources freed"},
		{key: "whep.public-ip", flag: "public-ip", kind: kindStrings, def: []string{}, usage: "IP announced as host candidate (NAT 1:1), repeatable"},
		{key: "whep.ice-server", flag: "ice-server", kind: kindStrings, def: []string{}, usage: "STUN/TURN URL (turn:host:3478?username=u&credential=p), repeatable"},
		{key: "whep.token", flag: "token", kind: kindStrings, def: []string{}, usage: "Bearer token accepted by WHEP, repeatable (open when none)"},
		{key: "whep.admin-token", flag: "admin-token", kind: kindStrings, def: []string{}, usage: "Bearer token accepted by GET /sessions, which lists session ids, repeatable (loopback clients only when none)"},
		{key: "whep.token-file", flag: "token-file", kind: kindString, def: "", usage: "file of WHEP tokens, one per line"},
		{key: "whep.wait-timeout", flag: "wait-timeout", kind: kindDuration, def: whep.DefaultWaitTimeout, usage: "how long a WHEP POST waits for a stream that is not live"},
		{key: "whep.max-waiting", flag: "max-waiting", kind: kindInt, def: whep.DefaultMaxWaiting, usage: "maximum number of waiting WHEP POSTs"},
		{key: "whep.max-sessions", flag: "max-sessions", kind: kindInt, def: 0, usage: "maximum WHEP sessions (0 = unlimited)"},
		{key: "whep.max-sessions-per-stream", flag: "max-sessions-per-stream", kind: kindInt, def: 0, usage: "maximum WHEP sessions per stream (0 = unlimited)"},
		{key: "whep.start", flag: "start", kind: kindString, def: string(whep.DefaultStart), usage: "where a new viewer starts: gop (latest keyframe) or live"},
		{key: "whep.replay-rate", flag: "replay-rate", kind: kindFloat, def: float64(relay.DefaultReplayRate), usage: "with --start gop, the pace of the backlog after the keyframe, as a multiple of the stream's bitrate (more than 1)"},
		{key: "whep.allow-origin", flag: "allow-origin", kind: kindString, def: whep.DefaultAllowOrigin, usage: "CORS Access-Control-Allow-Origin"},
		{key: "whep.max-exports", flag: "max-exports", kind: kindInt, def: export.DefaultMaxExports, usage: "maximum clip exports (GET /export/) in progress; 503 beyond"},
		{key: "whep.drain-timeout", flag: "drain-timeout", kind: kindDuration, def: whep.DefaultDrainTimeout, usage: "on shutdown, how long sessions told to reconnect elsewhere are kept before they are closed (0: close at once)"},
	}
}

func logOptions() []option {
	return []option{
		{key: "log.level", flag: "log-level", kind: kindString, def: "info", usage: "log level: debug, info, warn or error"},
		{key: "log.format", flag: "log-format", kind: kindString, def: "text", usage: "log format: text or json"},
		{key: "debug.addr", flag: "debug-addr", kind: kindString, def: "", usage: "serve Go profiles (/debug/pprof/) on this HTTP address; keep it private (off when empty)"},
	}
}

func brokerOptions() []option {
	opts := []option{
		{key: "ingest-addr", flag: "ingest-addr", kind: kindString, def: DefaultIngestAddr, usage: "HTTP address of PUT/POST /ingest/{stream}, /healthz and /metrics"},
		{key: "udp-ingest", flag: "udp-ingest", kind: kindStrings, def: []string{}, usage: "STREAM=ADDR: MPEG-TS over UDP on ADDR published as STREAM, repeatable"},
		{key: "udp-idle", flag: "udp-idle", kind: kindDuration, def: DefaultUDPIdle, usage: "silence after which a UDP publication ends (the next datagram starts a new epoch)"},
		{key: "ingest-token", flag: "ingest-token", kind: kindStrings, def: []string{}, usage: "Bearer token accepted on ingest, repeatable (open when none)"},
		{key: "ingest-idle", flag: "ingest-idle", kind: kindDuration, def: ingest.DefaultIdleTimeout, usage: "an HTTP ingest whose body sends nothing for this long ends (400)"},
		{key: "takeover", flag: "takeover", kind: kindString, def: ingest.TakeoverAllow.String(), usage: "a new publisher of a live stream: allow (it takes over at its first access unit) or deny (409)"},
		{key: "srt-addr", flag: "srt-addr", kind: kindString, def: "", usage: "UDP address of the SRT ingest (listener mode, streamid publish:{stream}; e.g. :8890; off when empty)"},
		{key: "srt-passphrase", flag: "srt-passphrase", kind: kindString, def: "", usage: "SRT passphrase (10 to 79 characters) required of every SRT publisher (none when empty)"},
		{key: "srt-latency", flag: "srt-latency", kind: kindDuration, def: srt.DefaultLatency, usage: "SRT receiver latency"},
		{key: "rtmp-addr", flag: "rtmp-addr", kind: kindString, def: rtmp.DefaultAddr, usage: "TCP address of the RTMP ingest, rtmp://HOST/live/{stream} (off when empty)"},
		{key: "rtmp-cert", flag: "rtmp-cert", kind: kindString, def: "", usage: "PEM certificate file: the RTMP listener is RTMPS (with --rtmp-key)"},
		{key: "rtmp-key", flag: "rtmp-key", kind: kindString, def: "", usage: "PEM key file of --rtmp-cert"},
		{key: "whip-udp-addr", flag: "whip-udp-addr", kind: kindString, def: "", usage: "one UDP address for the WebRTC media of every WHIP publisher (e.g. :8190, one firewall port; ephemeral ports when empty)"},
	}
	opts = append(opts, natsOptions("", "NATS server URLs, comma-separated (empty: run an embedded server)")...)
	opts = append(opts, []option{
		{key: "replicas", flag: "replicas", kind: kindInt, def: 1, usage: "JetStream replicas of each media stream"},
		{key: "nats-listen", flag: "nats-listen", kind: kindString, def: defaultNATSListen, usage: "client address of the embedded NATS server (empty: in-process only)"},
		{key: "nats-monitor-addr", flag: "nats-monitor-addr", kind: kindString, def: "", usage: "HTTP address of the embedded NATS server's monitoring endpoints (/varz, /jsz, ...; no authentication: keep it private; off when empty)"},
		{key: "data-dir", flag: "data-dir", kind: kindString, def: embedded.DefaultDataDir, usage: "JetStream directory of the embedded NATS server"},
		{key: "storage", flag: "storage", kind: kindString, def: bus.StorageFile, usage: "media stream storage: file or memory"},
		{key: "max-age", flag: "max-age", kind: kindDuration, def: bus.DefaultMaxAge, usage: "how long a media stream keeps messages"},
		{key: "max-bytes", flag: "max-bytes", kind: kindSize, def: int64(bus.DefaultMaxBytes), usage: "maximum size of each media stream, reserved in JetStream's store while the stream exists (0: none, the stream is bounded by --max-age and --storage-budget)"},
		{key: "max-streams", flag: "max-streams", kind: kindInt, def: 0, usage: "streams live at once; a new stream beyond it is refused with 503 and Retry-After (0: no limit)"},
		{key: "storage-budget", flag: "storage-budget", kind: kindSize, def: int64(0), usage: "JetStream storage in use (e.g. 10GiB) beyond which a new stream is refused with 507 (0: no budget); streams already live are never refused"},
		{key: "transcode", flag: "transcode", kind: kindString, def: string(transcode.DefaultMode), usage: "transcoding stage: auto (audio that WebRTC cannot carry becomes Opus, H.264 with B-frames is re-encoded without, H.265 gets an H.264 rendition, when ffmpeg is found), audio (audio only, ffmpeg required) or off"},
		{key: "max-transcodes", flag: "max-transcodes", kind: kindInt, def: transcode.DefaultMaxTranscodes, usage: "transcodes at once (a stream's audio and its video count one each); beyond it a stream's audio stays unplayable until a slot frees, its B-frame video as it is (counted in whepcast_transcode_rejected_total)"},
		{key: "ffmpeg", flag: "ffmpeg", kind: kindString, def: transcode.DefaultFFmpeg, usage: "the ffmpeg binary of the transcoding stage (a path, or a name looked up in PATH)"},
		{key: "whep-addr", flag: "whep-addr", kind: kindString, def: "", usage: "serve WHEP in process on this HTTP address (off when empty)"},
	}...)
	opts = append(opts, whepOptions()...)
	opts = append(opts, option{key: "demo", flag: "demo", kind: kindBool, def: false, usage: "loop the bundled sample as stream \"demo\" and serve WHEP and the player (on :8889 unless --whep-addr is set)"})
	return append(opts, logOptions()...)
}

func nodeOptions() []option {
	opts := []option{
		{key: "http-addr", flag: "http-addr", kind: kindString, def: DefaultHTTPAddr, usage: "HTTP address of the WHEP endpoints"},
	}
	opts = append(opts, natsOptions(DefaultNodeNATSURL, "NATS server URLs, comma-separated")...)
	opts = append(opts, whepOptions()...)
	return append(opts, logOptions()...)
}
