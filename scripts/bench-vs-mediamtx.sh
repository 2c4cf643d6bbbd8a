#!/usr/bin/env bash
# Side by side: the same viewers against whepcast (broker + one whep-node) and
# MediaMTX, both fed the same MPEG-TS file over UDP at the same time, measured
# by `whep-bench compare` (docs/benchmarks.md, "Side by side with MediaMTX").
#
#   bash scripts/bench-vs-mediamtx.sh /path/to/mediamtx [whep-bench compare flags]
#   e.g. bash scripts/bench-vs-mediamtx.sh /tmp/mediamtx --viewers 60 --duration 60s --rounds 2
#
# MediaMTX is built outside this repository (never vendored): from a checkout
# of github.com/bluenviron/mediamtx, `echo v0.0.0 > internal/core/VERSION;
# touch internal/servers/hls/hls.min.js; go build -o /tmp/mediamtx .` (both
# files are generated upstream; placeholders do for WebRTC). Needs ffmpeg.
# Everything listens on 127.0.0.1; every process started here is stopped on
# exit. WHEPCAST_BENCH_FILE: a TS file to use instead of the generated
# 640x360 H.264 (2 s GOP) + Opus one at about 2 Mb/s. WHEPCAST_NODE_FLAGS:
# more flags for the whep-node (e.g. --debug-addr 127.0.0.1:6061, to take
# a CPU profile during whepcast's rounds).
set -euo pipefail
cd "$(dirname "$0")/.."

mtx=${1:?usage: bench-vs-mediamtx.sh MEDIAMTX_BINARY [whep-bench compare flags]}
shift
[ -x "$mtx" ] || { echo "bench-vs-mediamtx: $mtx is not an executable" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "bench-vs-mediamtx: needs ffmpeg" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/" ./cmd/broker ./cmd/whep-node ./cmd/whep-bench

src=${WHEPCAST_BENCH_FILE:-}
if [ -z "$src" ]; then
  src=$work/src.ts
  ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 60 -c:v libx264 -preset veryfast -profile:v baseline -pix_fmt yuv420p -g 60 -keyint_min 60 \
    -sc_threshold 0 -b:v 1900k -maxrate 1900k -bufsize 1900k -c:a libopus -b:a 96k -ar 48000 -ac 2 \
    -f mpegts "$src"
fi

# whepcast: a broker with its embedded NATS server and UDP ingest, one node.
"$work/broker" --ingest-addr 127.0.0.1:18080 --rtmp-addr "" --nats-listen 127.0.0.1:14222 --data-dir "$work/data" \
  --storage memory --udp-ingest bench=127.0.0.1:19000 --log-level warn &
pids+=($!); broker=$!
"$work/whep-node" --nats-url nats://127.0.0.1:14222 --http-addr 127.0.0.1:18889 \
  --ice-udp-addr 127.0.0.1:18189 --log-level warn ${WHEPCAST_NODE_FLAGS:-} &
pids+=($!); node=$!

# MediaMTX: one path pulled from MPEG-TS over UDP, WebRTC on loopback only.
cat >"$work/mediamtx.yml" <<EOF
logLevel: warn
rtsp: no
rtmp: no
hls: no
srt: no
api: no
webrtc: yes
webrtcAddress: 127.0.0.1:28889
webrtcLocalUDPAddress: 127.0.0.1:28189
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
paths:
  bench:
    source: udp+mpegts://127.0.0.1:29000
EOF
# (in $work: it writes certificates for its other protocols beside itself)
(cd "$work" && exec "$mtx" mediamtx.yml) &
pids+=($!); mediamtx=$!

# One source, two copies: both servers get the same packets.
ffmpeg -v error -re -stream_loop -1 -i "$src" -c copy -map 0 \
  -f tee "[f=mpegts]udp://127.0.0.1:19000?pkt_size=1316|[f=mpegts]udp://127.0.0.1:29000?pkt_size=1316" &
pids+=($!)

# Both stream endpoints answer before the load starts.
for url in http://127.0.0.1:18889/whep/bench http://127.0.0.1:28889/bench/whep; do
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$url" || true)
    [ "$code" = 204 ] || [ "$code" = 200 ] && break
    sleep 0.2
  done
done
sleep 3 # a few GOPs on the bus and in MediaMTX

"$work/whep-bench" compare \
  --a-name whepcast --a-url http://127.0.0.1:18889/whep/bench --a-pid "$broker" --a-pid "$node" \
  --b-name mediamtx --b-url http://127.0.0.1:28889/bench/whep --b-pid "$mediamtx" "$@"
