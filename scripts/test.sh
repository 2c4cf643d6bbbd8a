#!/usr/bin/env bash
# whepcast's test command: the README's, and what .ci/run runs.
# It installs what the tests need on a fresh machine (as root), checks
# formatting and vet, then runs every test with the race detector.
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
go vet ./...

if [ $# -gt 0 ]; then
  exec go test -race -timeout 30m -count=1 "$@"
fi
go test -race -timeout 30m -count=1 ./...

# Bounded fuzzing of what parses untrusted input, from the corpora committed
# under each package's testdata/fuzz (a crasher found here is written there
# and fails the run). WHEPCAST_FUZZTIME sets the time per target (0: skip).
fuzztime=${WHEPCAST_FUZZTIME:-15s}
if [ "$fuzztime" != 0 ]; then
  for target in FuzzDemuxer:./pkg/tsframes/ FuzzParse:./pkg/sdpfrag/ \
                FuzzDecoder:./pkg/bus/ FuzzPacketizeH264:./pkg/relay/; do
    echo "test.sh: fuzzing ${target%%:*} (${target#*:}) for $fuzztime"
    go test -run '^$' -fuzz "^${target%%:*}\$" -fuzztime "$fuzztime" "${target#*:}"
  done
fi
