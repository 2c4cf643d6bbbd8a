#!/usr/bin/env bash
# Regenerates sample.ts, the clip that `broker --demo` loops as stream "demo".
# The clip is committed and embedded (go:embed); run this only to change it:
#   bash pkg/demo/gen-sample.sh
#
# 10 s of 640x360@30 testsrc2 (with a burnt-in running clock and frame counter
# when ffmpeg has drawtext and a DejaVu font is installed), H.264 constrained
# baseline, 1 s GOP, no B-frames, ~550 kb/s; Opus 48 kHz stereo 64 kb/s, 20 ms
# packets, carrying a tone whose pitch changes every second (integer
# frequencies, so the wave crosses zero at every second and at the loop point:
# no click when the clip loops). Exactly 300 video frames and 500 audio
# packets, so that video and audio both span 10 s and the loop is seamless.
# x264 runs on one thread so that the output is the same on every run.
set -euo pipefail
cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { echo "gen-sample.sh: ffmpeg is needed (apt-get install ffmpeg)" >&2; exit 1; }

SECS=10; FPS=30
VF="testsrc2=size=640x360:rate=${FPS}:duration=${SECS}"
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
FILTERS=$(ffmpeg -hide_banner -filters 2>/dev/null || true)
if grep -qw drawtext <<<"$FILTERS" && [ -f "$FONT" ]; then
  VF="${VF},drawtext=fontfile=${FONT}:text='whepcast demo  %{pts\:hms}  frame %{n}':x=(w-tw)/2:y=h-th-20:fontsize=22:fontcolor=white:box=1:boxcolor=black@0.7:boxborderw=8"
else
  echo "gen-sample.sh: drawtext or $FONT missing; the clip has no burnt-in clock" >&2
fi
# The source runs a second longer than the clip: -frames:a cuts it at exactly
# SECS * 50 packets (the encoder's delay would otherwise leave one short).
# 440, 550, 660, 770, 880 Hz, one per second, then again.
TONE="0.25*sin(2*PI*(440+110*mod(floor(t)\,5))*t)"
AF="aevalsrc=exprs='${TONE}|${TONE}':sample_rate=48000:channel_layout=stereo:duration=$((SECS + 1))"

ffmpeg -hide_banner -loglevel error -y -bitexact \
  -f lavfi -i "$VF" -f lavfi -i "$AF" \
  -c:v libx264 -threads 1 -preset veryfast -tune zerolatency -profile:v baseline -pix_fmt yuv420p -bf 0 \
  -g ${FPS} -keyint_min ${FPS} -sc_threshold 0 -b:v 550k -maxrate 550k -bufsize 550k -flags -global_header \
  -c:a libopus -b:a 64k -ac 2 -ar 48000 -frame_duration 20 -frames:a $((SECS * 50)) \
  -f mpegts sample.ts

v=$(ffprobe -v error -select_streams v -show_entries packet=pts -of csv=p=0 sample.ts | grep -c . || true)
a=$(ffprobe -v error -select_streams a -show_entries packet=pts -of csv=p=0 sample.ts | grep -c . || true)
echo "sample.ts: $(stat -c %s sample.ts) bytes, ${v} video frames, ${a} audio packets"
