#!/usr/bin/env bash
# Regenerates the MPEG-TS fixtures of whepcast's tests with ffmpeg, and records
# next to each fixture (NAME.ts.expect) the counts ffprobe reports for it.
# The fixtures are committed; run this only to change them:
#   bash testdata/gen.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { echo "gen.sh: ffmpeg is needed (apt-get install ffmpeg)" >&2; exit 1; }

# Small, deterministic sources: a test pattern and a sine tone.
W=320; H=180; FPS=30
vsrc() { echo "testsrc2=size=${W}x${H}:rate=${FPS}:duration=$1"; }
asrc() { echo "sine=frequency=440:sample_rate=48000:duration=$1"; }
X264=(-c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -pix_fmt yuv420p -bf 0 -b:v 250k -maxrate 400k -bufsize 400k -sc_threshold 0 -flags -global_header)
OPUS=(-c:a libopus -b:a 32k -ac 2 -frame_duration 20)
FF=(ffmpeg -hide_banner -loglevel error -y -bitexact)

gop() { echo "-g $1 -keyint_min $1"; }

# av.ts: H.264 (1 s GOP) + Opus, 6 s.
"${FF[@]}" -f lavfi -i "$(vsrc 6)" -f lavfi -i "$(asrc 6)" "${X264[@]}" $(gop 30) "${OPUS[@]}" -f mpegts av.ts
# video.ts: H.264 only, 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" "${X264[@]}" $(gop 30) -f mpegts video.ts
# audio.ts: Opus only, 4 s.
"${FF[@]}" -f lavfi -i "$(asrc 4)" "${OPUS[@]}" -f mpegts audio.ts
# aac.ts: H.264 + AAC (WebRTC cannot carry the audio), 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X264[@]}" $(gop 30) -c:a aac -b:a 64k -f mpegts aac.ts
# latm.ts: H.264 + AAC stereo in LATM/LOAS (PMT stream_type 0x11, as DVB broadcast sends it), 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X264[@]}" $(gop 30) -c:a aac -b:a 64k -ac 2 -mpegts_flags latm -f mpegts latm.ts
# mp2.ts: H.264 + MPEG-1 Layer II (ffmpeg's default audio in MPEG-TS), 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X264[@]}" $(gop 30) -c:a mp2 -b:a 128k -f mpegts mp2.ts
# ac3.ts: H.264 + AC-3 5.1 (broadcast contribution), 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X264[@]}" $(gop 30) -c:a ac3 -ac 6 -b:a 384k -f mpegts ac3.ts
# hevc.ts: H.265 Main (libx265, 1 s GOP, no B-frames) + Opus, 4 s: sent as is to viewers that offer H.265.
X265=(-c:v libx265 -preset veryfast -tune zerolatency -pix_fmt yuv420p -b:v 250k -x265-params "keyint=30:min-keyint=30:bframes=0:scenecut=0:log-level=error")
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X265[@]}" "${OPUS[@]}" -f mpegts hevc.ts
# wrap.ts: H.264 + Opus whose PTS crosses 2^33 (at 95443.717 s) about 0.7 s in, 4 s.
"${FF[@]}" -f lavfi -i "$(vsrc 4)" -f lavfi -i "$(asrc 4)" "${X264[@]}" $(gop 30) "${OPUS[@]}" -muxdelay 0 -muxpreload 0 -output_ts_offset 95443 -f mpegts wrap.ts
# gop4.ts: H.264 with a 4 s GOP + Opus, 10 s.
"${FF[@]}" -f lavfi -i "$(vsrc 10)" -f lavfi -i "$(asrc 10)" "${X264[@]}" $(gop 120) "${OPUS[@]}" -f mpegts gop4.ts
# pmtchange.ts: 3 s video-only, then 3 s of video + Opus: the PMT changes
# mid-way (same version number, new content); timestamps continue.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"${FF[@]}" -f lavfi -i "$(vsrc 3)" "${X264[@]}" $(gop 30) -f mpegts "$tmp/a.ts"
"${FF[@]}" -f lavfi -i "$(vsrc 3)" -f lavfi -i "$(asrc 3)" "${X264[@]}" $(gop 30) "${OPUS[@]}" -output_ts_offset 3 -f mpegts "$tmp/b.ts"
cat "$tmp/a.ts" "$tmp/b.ts" > pmtchange.ts
# sync_{opus,aac,mp2,ac3}.ts: the A/V sync fixtures, 12 s of H.264 (160x90, grey) + audio
# (silence) where a flash (white frames) and a beep (1 kHz) start together at every whole
# second and last 100 ms; the same stream with Opus (the reference), AAC, MP2 and AC-3.
FLASH="color=c=0x303030:s=160x90:r=${FPS}:d=20,drawbox=c=white:t=fill:enable='lt(mod(t,1),0.1)'"
BEEP="aevalsrc='if(lt(mod(t,1),0.1),0.5*sin(2*PI*1000*t),0)':s=48000:d=20"
for a in "opus libopus -frame_duration 20" "aac aac" "mp2 mp2" "ac3 ac3"; do
  set -- $a; n=$1; shift
  "${FF[@]}" -f lavfi -i "$FLASH" -f lavfi -i "$BEEP" "${X264[@]}" $(gop 30) -c:a "$@" -b:a 64k -ac 2 -f mpegts "sync_$n.ts"
done
# bframes.ts: H.264 High profile with 2 B-frames (x264 -bf 2, as x264's
# defaults), 640x360, 1 s GOP, + Opus, 4 s. Each frame's number is drawn in
# its top 40 rows as 16 blocks of 40 px, black or white, bit 0 on the left
# (tests/chromium_bframes_test.go reads them back to check the order).
BITS="if(lt(Y,40),if(mod(floor(N/pow(2,floor(X/40))),2),235,16),lum(X,Y))"
"${FF[@]}" -f lavfi -i "testsrc2=size=640x360:rate=30:duration=4" -f lavfi -i "$(asrc 4)" \
  -vf "geq=lum='$BITS':cb='if(lt(Y,20),128,cb(X,Y))':cr='if(lt(Y,20),128,cr(X,Y))'" \
  -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf 2 $(gop 30) -sc_threshold 0 \
  -b:v 600k -maxrate 800k -bufsize 800k -flags -global_header "${OPUS[@]}" -f mpegts bframes.ts

# Expected counts, as ffprobe sees them.
for f in av video audio aac latm mp2 ac3 hevc wrap gop4 pmtchange sync_opus sync_aac sync_mp2 sync_ac3 bframes; do
  v=$(ffprobe -v error -select_streams v -show_entries packet=flags -of compact "$f.ts" | grep -c '^packet|' || true)
  k=$(ffprobe -v error -select_streams v -show_entries packet=flags -of compact "$f.ts" | grep -c '^packet|flags=K' || true)
  a=$(ffprobe -v error -select_streams a -show_entries packet=pts -of compact "$f.ts" | grep -c '^packet|' || true)
  printf 'video_frames=%d\nkeyframes=%d\naudio_packets=%d\n' "$v" "$k" "$a" > "$f.ts.expect"
done
ls -l ./*.ts
