package whip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/pion/rtp"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// PIDs of the tracks as announced: WebRTC has none, and whepcast numbers
// them as ffmpeg's MPEG-TS muxer does (video first).
const (
	videoPID = 0x100
	audioPID = 0x101
)

// Jitter buffers: how many packets may be held behind a missing one, and
// for how long (a NACK's round trip, with margin).
const (
	videoWindow   = 512
	audioWindow   = 64
	videoMaxDelay = 300 * time.Millisecond
	audioMaxDelay = 150 * time.Millisecond
)

// The first access units wait for the sender reports of every track, for
// at most alignWait and maxPending of them, so that audio and video start
// aligned by them: a later realignment makes audio jump.
const (
	alignWait  = 2 * time.Second
	maxPending = 1024
)

// keyframeRequester is what the frame loop needs of its publication: a way
// to ask the publisher for a keyframe, and to say whether it waits for one.
type keyframeRequester interface {
	requestKeyframe()
	setWaitingForKeyframe(bool)
}

// frameLoop turns the records of a publication's packetQueue into the
// track announcement and access units of a tsframes.Sink: the one owner of
// the jitter buffers, the depacketizer and the timeline.
type frameLoop struct {
	o           offer
	sink        tsframes.Sink
	keys        keyframeRequester
	keyInterval time.Duration // ask for a keyframe when none came for that long (0: never)
	log         *slog.Logger

	video, audio *reorder
	h264         h264Depacketizer
	tl           *timeline
	ann          tsframes.Announcement
	aus          []accessUnit
	now          time.Time
	flowing      bool           // the first access units were published
	firstAU      time.Time      // arrival of the first access unit
	pending      []pendingFrame // access units waiting for the sender reports
	lastKey      time.Time      // arrival of the last keyframe
	lastAudio    int64          // PTS of the last audio packet published
	audioOut     bool           // an audio packet was published
	audioBehind  uint64
	err          error // the sink's: ends the loop
	badPackets   uint64
}

func newFrameLoop(o offer, sink tsframes.Sink, keys keyframeRequester, keyInterval time.Duration, log *slog.Logger) *frameLoop {
	l := &frameLoop{o: o, sink: sink, keys: keys, keyInterval: keyInterval, log: log}
	var vRate, aRate int64
	if o.video != nil {
		vRate = 90000
		l.video = newReorder(videoWindow, videoMaxDelay)
		l.ann.Tracks = append(l.ann.Tracks, tsframes.Track{PID: videoPID, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264,
			WebRTC: true, ProfileLevelID: o.profileLevelID})
	}
	if o.audio != nil {
		aRate = 48000
		l.audio = newReorder(audioWindow, audioMaxDelay)
		l.ann.Tracks = append(l.ann.Tracks, tsframes.Track{PID: audioPID, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus,
			WebRTC: true, SampleRate: 48000, Channels: int(o.audio.channels)})
	}
	l.tl = newTimeline(vRate, aRate)
	return l
}

func (l *frameLoop) announcement() tsframes.Announcement {
	return tsframes.Announcement{Tracks: append([]tsframes.Track(nil), l.ann.Tracks...)}
}

// pendingFrame is an access unit waiting for its PTS.
type pendingFrame struct {
	track int
	ts    uint32
	f     tsframes.Frame
}

// run reads records from body until it ends (nil), fails (its error) or the
// sink fails (the sink's error).
func (l *frameLoop) run(ctx context.Context, body io.Reader) error {
	if err := l.sink.Tracks(l.announcement()); err != nil {
		return err
	}
	if l.video != nil {
		l.keys.setWaitingForKeyframe(true)
	}
	buf := make([]byte, maxRecord)
	for {
		n, err := body.Read(buf)
		if errors.Is(err, io.EOF) {
			// The publisher ended: what is held is all there is.
			if l.video != nil {
				l.video.flush(l.videoPacket)
			}
			if l.audio != nil {
				l.audio.flush(l.audioPacket)
			}
			l.flow()
			return l.err
		}
		if err != nil {
			return err
		}
		l.record(time.Now(), buf[:n])
		if l.err != nil {
			return l.err
		}
		if ctx.Err() != nil {
			return nil // the publication is stopping; its cause is known
		}
	}
}

// record handles one record arrived at now.
func (l *frameLoop) record(now time.Time, rec []byte) {
	l.now = now
	if len(rec) == 0 {
		return
	}
	switch rec[0] {
	case recVideo, recAudio:
		r := l.video
		emit := l.videoPacket
		if rec[0] == recAudio {
			r, emit = l.audio, l.audioPacket
		}
		if r == nil {
			return
		}
		pkt := &rtp.Packet{}
		if err := pkt.Unmarshal(append([]byte(nil), rec[1:]...)); err != nil {
			l.badPacket(fmt.Errorf("%w: %w", errBadPayload, err))
			return
		}
		r.push(pkt, now, emit)
	case recVideoSR, recAudioSR:
		if len(rec) != 13 {
			return
		}
		track := trackVideo
		if rec[0] == recAudioSR {
			track = trackAudio
		}
		if l.tl.senderReport(track, binary.BigEndian.Uint64(rec[1:]), binary.BigEndian.Uint32(rec[9:])) {
			l.log.Debug("tracks aligned by the sender reports", "audio_shift_ms", l.tl.shift.Milliseconds())
		}
	case recTick:
		if !l.flowing && len(l.pending) > 0 && now.Sub(l.firstAU) >= alignWait {
			l.flow()
		}
		if l.video != nil {
			l.video.expire(now, l.videoPacket)
		}
		if l.audio != nil {
			l.audio.expire(now, l.audioPacket)
		}
	}
}

func (l *frameLoop) badPacket(err error) {
	l.badPackets++
	if l.badPackets == 1 {
		l.log.Warn("bad RTP packet (later ones are logged at debug level)", "err", err)
	} else {
		l.log.Debug("bad RTP packet", "err", err)
	}
}

// videoPacket depacketizes the next video packet in order.
func (l *frameLoop) videoPacket(pkt *rtp.Packet, lost bool) {
	if l.err != nil {
		return
	}
	l.tl.observe(trackVideo, pkt.Timestamp, l.now)
	errs := l.h264.errs
	waiting := l.h264.needKey()
	l.aus = l.h264.push(l.aus[:0], pkt.Payload, pkt.Timestamp, pkt.Marker, lost)
	if l.h264.errs != errs {
		l.badPacket(fmt.Errorf("%w: sequence number %d", errBadPayload, pkt.SequenceNumber))
	}
	if l.h264.takeSPSChange() {
		if id := l.h264.profileLevelID(); id != l.ann.Tracks[0].ProfileLevelID {
			l.ann.Tracks[0].ProfileLevelID = id
			if l.err = l.sink.Tracks(l.announcement()); l.err != nil {
				return
			}
		}
	}
	for _, au := range l.aus {
		if au.key {
			l.lastKey = l.now
		}
		l.publish(trackVideo, au.ts, tsframes.Frame{
			PID: videoPID, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, Key: au.key, Data: au.data,
		})
		if l.err != nil {
			return
		}
	}
	// Browsers send keyframes only when asked: a viewer joins at the last
	// one, so it must not be older than keyInterval (asked at every access
	// unit until one comes; the sender of PLIs bounds their rate).
	if l.keyInterval > 0 && len(l.aus) > 0 && !l.lastKey.IsZero() && l.now.Sub(l.lastKey) >= l.keyInterval && !l.h264.needKey() {
		l.keys.requestKeyframe()
	}
	if now := l.h264.needKey(); now != waiting {
		l.keys.setWaitingForKeyframe(now)
		if now {
			l.log.Debug("video broken by a loss: asking for a keyframe", "seq", pkt.SequenceNumber)
			l.keys.requestKeyframe()
		}
	}
}

// audioPacket publishes the next Opus packet in order.
func (l *frameLoop) audioPacket(pkt *rtp.Packet, _ bool) {
	if l.err != nil {
		return
	}
	l.tl.observe(trackAudio, pkt.Timestamp, l.now)
	dur := opus.PacketDuration2(pkt.Payload) * 90000 / 48000
	if dur <= 0 {
		return
	}
	l.publish(trackAudio, pkt.Timestamp, tsframes.Frame{
		PID: audioPID, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, Duration: dur, Data: pkt.Payload,
	})
}

// publish hands f (with RTP timestamp ts) to the sink, or keeps it until
// the tracks are aligned by their sender reports (see alignWait).
func (l *frameLoop) publish(track int, ts uint32, f tsframes.Frame) {
	if !l.flowing {
		if len(l.pending) == 0 {
			l.firstAU = l.now
		}
		l.pending = append(l.pending, pendingFrame{track: track, ts: ts, f: f})
		if l.tl.aligned || len(l.pending) >= maxPending || l.now.Sub(l.firstAU) >= alignWait {
			l.flow()
		}
		return
	}
	l.out(track, ts, f)
}

// flow publishes the access units kept, and from now on every one at once.
func (l *frameLoop) flow() {
	if l.flowing {
		return
	}
	l.flowing = true
	if !l.tl.aligned && len(l.pending) > 0 {
		l.log.Debug("no sender report of every track yet: tracks aligned by their first packets")
	}
	for _, p := range l.pending {
		if l.err != nil {
			break
		}
		l.out(p.track, p.ts, p.f)
	}
	l.pending = nil
}

// out stamps f and hands it to the sink.
func (l *frameLoop) out(track int, ts uint32, f tsframes.Frame) {
	f.PTS = l.tl.pts(track, ts)
	f.DTS = f.PTS
	if track == trackAudio {
		if l.audioOut && f.PTS <= l.lastAudio {
			// Realigned back by the sender reports: what overlaps is dropped.
			l.audioBehind++
			return
		}
		l.audioOut, l.lastAudio = true, f.PTS
	}
	l.err = l.sink.Frame(f)
}
