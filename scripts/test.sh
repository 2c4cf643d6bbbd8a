#!/usr/bin/env bash
# whepcast's test command: the README's, and what .ci/run runs.
# It installs what the tests need on a fresh machine (as root), checks
# formatting and vet, then runs every test with the race detector,
# including those behind the build tag "external" (they run Chromium,
# Firefox ESR, ffmpeg, curl or the nats CLI; plain `go test ./...` needs Go alone and
# leaves them out).
#   bash scripts/test.sh            all tests
#   bash scripts/test.sh -run X ./pkg/bus/   extra args go to `go test`
#                                            (and skip the fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg   >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe  >/dev/null 2>&1 || need+=(ffmpeg)
command -v curl     >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
if [ ${#need[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing $pkgs"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    echo "test.sh: the tests need: $pkgs" >&2
    echo "install them with: sudo apt-get install -y $pkgs" >&2
    exit 1
  fi
fi

# The nats CLI, for the tests that check the README's operator recipes.
if ! command -v nats >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/nats" ]; then
  echo "test.sh: installing the nats CLI (go install github.com/nats-io/natscli/nats@v0.5.1)"
  GOFLAGS= go install github.com/nats-io/natscli/nats@v0.5.1
fi
export PATH="$PATH:$(go env GOPATH)/bin"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
# The tests that need the programs installed above.
tags=external
go vet -tags "$tags" ./...

if [ $# -gt 0 ]; then
  exec go test -race -tags "$tags" -timeout 30m -count=1 "$@"
fi
go test -race -tags "$tags" -timeout 30m -count=1 ./...

# Bounded fuzzing of what parses untrusted input, from the corpora committed
# under each package's testdata/fuzz (a crasher found here is written there
# and fails the run). WHEPCAST_FUZZTIME sets the time per target: seconds
# (15s), minutes (2m) or a number of inputs (5000x); 0 skips the fuzzing.
#
# Each target must run at least fuzz_min_rate inputs per second of
# WHEPCAST_FUZZTIME (or all N of Nx): a target that reports a handful of
# inputs is not being fuzzed at all. -fuzzminimizetime bounds how many runs
# the fuzzer spends shrinking each new interesting input: by default it
# spends up to 60 s on each, and for inputs of a few kilobytes (MPEG-TS
# streams) it never finishes within the fuzzing time, so nothing else runs.
fuzztime=${WHEPCAST_FUZZTIME:-15s}
fuzz_min_rate=500
case $fuzztime in
  0) exit 0 ;;
  *[!0-9]*[smx] | [smx]) bad=1 ;;
  *s) fuzz_min=$(( ${fuzztime%s} * fuzz_min_rate )) ;;
  *m) fuzz_min=$(( ${fuzztime%m} * 60 * fuzz_min_rate )) ;;
  *x) fuzz_min=${fuzztime%x} ;;
  *) bad=1 ;;
esac
if [ -n "${bad:-}" ]; then
  echo "test.sh: WHEPCAST_FUZZTIME=$fuzztime: want seconds (15s), minutes (2m), a count (5000x) or 0" >&2
  exit 1
fi
fuzz_log=$(mktemp)
trap 'rm -f "$fuzz_log"' EXIT
for target in FuzzDemuxer:./pkg/tsframes/ FuzzSCTE35:./pkg/tsframes/ FuzzParse:./pkg/sdpfrag/ \
              FuzzDecoder:./pkg/bus/ FuzzPacketizeH264:./pkg/relay/ FuzzPacketizeH265:./pkg/relay/ \
              FuzzParseStreamID:./pkg/ingest/srt/ FuzzAccessUnit:./pkg/ingest/rtmp/ FuzzChunkGuard:./pkg/ingest/rtmp/ \
              FuzzH264Depacketizer:./pkg/ingest/whip/ FuzzLATMChannels:./pkg/transcode/; do
  name=${target%%:*} pkg=${target#*:}
  echo "test.sh: fuzzing $name ($pkg) for $fuzztime"
  go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 100x "$pkg" 2>&1 | tee "$fuzz_log"
  execs=$(grep -o 'execs: [0-9]*' "$fuzz_log" | tail -n 1 | cut -d' ' -f2)
  if [ -z "$execs" ] || [ "$execs" -lt "$fuzz_min" ]; then
    echo "test.sh: $name ran ${execs:-no} inputs in $fuzztime, below the minimum of $fuzz_min" \
         "($fuzz_min_rate per second): it is not being fuzzed (an input that waits or" \
         "a minimization that never ends; GODEBUG=fuzzdebug=1 shows what the fuzzer does)" >&2
    exit 1
  fi
  echo "test.sh: $name: $execs inputs (minimum $fuzz_min)"
done
