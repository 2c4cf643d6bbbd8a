#!/usr/bin/env bash
# The broker's CPU per ingested stream for each ingest protocol: N ffmpeg
# publishers (-re, -c copy, so ffmpeg itself costs little) of the same
# 640x360 H.264 (2 s GOP) stream at about 2 Mb/s, over HTTP PUT, UDP, SRT and
# RTMP, and N pion WHIP publishers of its H.264 and Opus (whep-bench
# publish-whip: ffmpeg 5.1 has no WHIP muxer), each against a fresh broker (embedded NATS, memory storage,
# --transcode off: RTMP carries AAC here, since this ffmpeg's FLV has no
# Opus, and transcoding is measured apart). The broker's utime+stime is read
# from /proc over a window after a warm-up, less its idle rate.
#
#   bash scripts/bench-ingest-protocols.sh            N=10 streams, 30 s window
#   N=20 WINDOW=60 bash scripts/bench-ingest-protocols.sh
#   PROTOCOLS="rtmp whip" bash scripts/bench-ingest-protocols.sh
#
# Needs ffmpeg; listens on 127.0.0.1 only; stops everything it started on
# exit.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${N:-10}
window=${WINDOW:-30}
warmup=${WARMUP:-8}
command -v ffmpeg >/dev/null || { echo "bench-ingest-protocols: needs ffmpeg" >&2; exit 2; }

work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

go build -o "$work/" ./cmd/broker ./cmd/whep-bench
ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 60 -c:v libx264 -preset veryfast -profile:v baseline -pix_fmt yuv420p -g 60 -keyint_min 60 \
  -sc_threshold 0 -b:v 1900k -maxrate 1900k -bufsize 1900k -c:a libopus -b:a 96k -ar 48000 -ac 2 \
  -f mpegts "$work/src.ts"
ffmpeg -v error -i "$work/src.ts" -c:v copy -c:a aac -b:a 96k -f mpegts "$work/src-aac.ts"
bits=$(($(stat -c %s "$work/src.ts") * 8 / 60))

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "protocol  streams  broker cores  CPU per stream  streams per core  (file $((bits / 1000)) kb/s of TS)"
for proto in ${PROTOCOLS:-http udp srt rtmp whip}; do
  args=(--ingest-addr 127.0.0.1:18080 --rtmp-addr "" --nats-listen "" --data-dir "$work/data-$proto" --storage memory
    --transcode off --log-level warn)
  case $proto in
  udp) for i in $(seq "$n"); do args+=(--udp-ingest "s$i=127.0.0.1:$((19000 + i))"); done ;;
  srt) args+=(--srt-addr 127.0.0.1:18890) ;;
  rtmp) args+=(--rtmp-addr 127.0.0.1:11935) ;;
  esac
  "$work/broker" "${args[@]}" &
  broker=$!
  pids+=("$broker")
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done

  # Idle rate, then the publishers.
  t0=$(cpu_ticks "$broker"); sleep 3; idle=$(($(cpu_ticks "$broker") - t0))
  if [ "$proto" = whip ]; then
    "$work/whep-bench" publish-whip --url http://127.0.0.1:18080/whip/ --prefix s --streams "$n" \
      --file "$work/src.ts" --duration $((warmup + window + 5))s >"$work/whip.log" 2>&1 &
    whip=$!
    pids+=("$whip")
  fi
  for i in $(seq "$n"); do
    [ "$proto" = whip ] && break
    in=(-re -stream_loop -1 -i "$work/src.ts" -c copy)
    case $proto in
    http) out=(-f mpegts -method PUT "http://127.0.0.1:18080/ingest/s$i") ;;
    udp) out=(-f mpegts "udp://127.0.0.1:$((19000 + i))?pkt_size=1316") ;;
    srt) out=(-f mpegts "srt://127.0.0.1:18890?streamid=publish:s$i&pkt_size=1316") ;;
    rtmp) in=(-re -stream_loop -1 -i "$work/src-aac.ts" -c copy); out=(-f flv "rtmp://127.0.0.1:11935/live/s$i") ;;
    esac
    ffmpeg -v error -nostdin "${in[@]}" "${out[@]}" 2>>"$work/ffmpeg.log" &
    pids+=($!)
  done
  sleep "$warmup"
  t0=$(cpu_ticks "$broker"); sleep "$window"; busy=$(($(cpu_ticks "$broker") - t0))
  awk -v b="$busy" -v i="$idle" -v hz="$hz" -v w="$window" -v n="$n" -v p="$proto" 'BEGIN {
    cores = b / hz / w - i / hz / 3; per = cores / n
    printf "%-8s  %7d  %12.3f  %11.2f ms/s  %16.0f\n", p, n, cores, per * 1000, (per > 0 ? 1 / per : 0) }'
  if [ "$proto" = whip ]; then
    wait "$whip" || true
    sed 's/^/  whep-bench publish-whip: /' "$work/whip.log" # every publisher connected and sending?
  fi
  stop_all
done
