package relay

import (
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// maxSegments is how many sequence-number segments a track writer remembers
// to translate NACKed sequence numbers back to the stream's.
const maxSegments = 8

// segment is a run of packets a viewer got without a gap in the stream's
// sequence numbers: viewer seq = uint16(stream seq) + (viewerStart -
// uint16(streamStart)).
type segment struct {
	streamStart uint64
	viewerStart uint16
}

// Retransmission bounds, per viewer and packet.
const (
	// MaxResends is how many times one packet is resent to one viewer.
	MaxResends = 2
	// minResendGap is the least time between two resends of one packet
	// (a longer round trip, once known, is used instead).
	minResendGap = 20 * time.Millisecond
	// resendSlots is how many recent resends a track writer remembers
	// (a power of two).
	resendSlots = 512
	// resendHold is how long a slot keeps the packet it last resent: a
	// NACK for another packet of the same slot within it is suppressed.
	// Without it a viewer that NACKs more than resendSlots packets over and
	// over evicts every history before it counts, and has each packet
	// resent at every NACK. So a viewer gets at most
	// MaxResends*resendSlots resends per resendHold and track.
	resendHold = time.Second
)

// resend is the resend history of one packet (by stream sequence).
type resend struct {
	stream uint64
	count  uint32
	at     int64 // ns, of the last resend
}

// trackWriter sends one track's frames to one viewer. It is owned by the
// viewer's writer goroutine, except for the counters (atomics, read by
// Stats) and the RTCP-derived fields (written by the RTCP reader).
//
// The viewer's sequence numbers are contiguous even where the viewer skipped
// frames (queue overflow, waiting for a keyframe): a gap in the stream's
// sequence numbers starts a new segment. Its timestamps are the stream's
// plus a random offset, except for the frames sent while catching up with
// the live feed after a replay (see setReplay).
type trackWriter struct {
	t      *track
	buffer *retransmitBuffer
	hdr    rtp.Header

	started    bool
	lastStream uint64 // stream seq of the last packet written
	lastSeq    uint16 // viewer seq of the last packet written
	tsOff      uint32
	segs       [maxSegments]segment
	nsegs      int // segments used, newest at (nsegs-1) % maxSegments

	// The catch-up after a replay: stream seqs [replayFirst, replayLast]
	// (the replayed GOP and the live frames sent at its pace) are sent with
	// the timestamps replayTop (the keyframe), then replayTop + replayGap +
	// (ts - replayTS0) / replayRate.
	replaying   bool
	replayFirst uint64
	replayLast  uint64
	replayTop   uint32
	replayTS0   uint32
	replayRate  float64
	replayGap   uint32
	// liveShift is added to the timestamps of the frames after a catch-up.
	liveShift uint32
	// lastTS is the timestamp of the last frame written. rebase (set by
	// resync, at a seek) makes the next write start a new segment and
	// continue the timestamps from lastTS, advanced by the time since
	// pausedAt.
	lastTS   uint32
	rebase   bool
	pausedAt time.Time

	packets, bytes, frames, drops atomic.Uint64
	// nackedPackets counts the packets NACKs asked for, missedPackets
	// those of them no longer in the buffer.
	nackedPackets, retransmits, missedPackets atomic.Uint64
	suppressed                                atomic.Uint64
	// resends is allocated at the first NACK (most viewers never send one).
	resends *[resendSlots]resend
	// rtxBuf (the payload of an RTX packet) and rtxSeq (the next sequence
	// number of the viewer's RTX stream, random at first) are set at the
	// first retransmission on RTX.
	rtxBuf                []byte
	rtxSeq                uint16
	plis, firs, writeErrs atomic.Uint64
	fractionLost          atomic.Uint32 // 1/256 units
	packetsLost           atomic.Int64
	jitter                atomic.Uint32 // RTP clock units
	clockRate             uint32
}

func newTrackWriter(t *track, buffer *retransmitBuffer, clockRate uint32) *trackWriter {
	return &trackWriter{t: t, buffer: buffer, clockRate: clockRate, tsOff: rand.Uint32()}
}

// setReplay makes the GOP gop (keyframe first) the start of a catch-up
// sent at rate times real time (see replayPacer). Its frames, and the live
// frames added by extendReplay, get timestamps that advance in step with
// their paced sending (see replayPacer): the keyframe gets the live edge's
// (that of the GOP's last frame), and each frame after it gap plus its media
// time since the keyframe divided by rate more. The receiver sees a regular
// stream that plays the backlog fast forward, and no latency is added.
func (w *trackWriter) setReplay(gop []*frame, rate float64, gap uint32) {
	if len(gop) == 0 {
		return
	}
	last := gop[len(gop)-1]
	w.replaying = true
	w.replayFirst = gop[0].pkts[0].seq
	w.replayLast = last.lastSeq()
	w.replayTop = last.ts
	w.replayTS0 = gop[0].ts
	w.replayRate = rate
	w.replayGap = gap
}

// extendReplay adds f, a live frame sent at the replay's pace, to the
// catch-up.
func (w *trackWriter) extendReplay(f *frame) {
	w.replayLast = f.lastSeq()
}

// endReplay ends the catch-up: the frames written from now on get the
// stream's timestamps plus an offset that continues those of the catch-up
// (the last frame of the catch-up keeps its distance to the next).
func (w *trackWriter) endReplay(last *frame) {
	w.liveShift = w.replayTS(last) - last.ts
}

// replayTS is the timestamp of f, a frame of the catch-up, before the
// viewer's offset.
func (w *trackWriter) replayTS(f *frame) uint32 {
	if f.pkts[0].seq == w.replayFirst {
		return w.replayTop
	}
	media := float64(max(int32(f.ts-w.replayTS0), 0))
	return w.replayTop + w.replayGap + uint32(int64(media/w.replayRate))
}

// viewerTS is the timestamp f is sent with.
func (w *trackWriter) viewerTS(f *frame) uint32 {
	if w.replaying {
		if s := f.pkts[0].seq; s >= w.replayFirst && s <= w.replayLast {
			return w.replayTS(f) + w.tsOff
		}
	}
	return f.ts + w.liveShift + w.tsOff
}

// write sends f. It returns false when the track is not bound (nothing
// written).
func (w *trackWriter) write(f *frame) bool {
	b := w.t.current.Load()
	if b == nil {
		return false
	}
	first := f.pkts[0].seq
	if w.rebase {
		w.rebaseAt(f)
	} else if !w.started || first != w.lastStream+1 {
		var start uint16
		if w.started {
			start = w.lastSeq + 1
		} else {
			start = uint16(rand.Uint32())
		}
		w.segs[w.nsegs%maxSegments] = segment{streamStart: first, viewerStart: start}
		w.nsegs++
		w.started = true
	}
	seg := w.segs[(w.nsegs-1)%maxSegments]
	off := seg.viewerStart - uint16(seg.streamStart)

	h := &w.hdr
	h.Version = 2
	h.PayloadType = b.payloadType
	h.SSRC = b.ssrc
	h.Timestamp = w.viewerTS(f)
	h.Extension = false
	h.Extensions = h.Extensions[:0]
	var n, bytes uint64
	for i := range f.pkts {
		p := &f.pkts[i]
		h.SequenceNumber = uint16(p.seq) + off
		h.Marker = p.marker
		h.Padding = p.padding
		if _, err := b.writer.WriteRTP(h, p.payload); err != nil {
			w.writeErrs.Add(1)
			continue
		}
		n++
		bytes += uint64(len(p.payload))
	}
	w.lastStream = f.lastSeq()
	w.lastSeq = uint16(w.lastStream) + off
	w.lastTS = h.Timestamp
	w.packets.Add(n)
	w.bytes.Add(bytes)
	w.frames.Add(1)
	if w.replaying && first > w.replayLast {
		w.replaying = w.replayLast+uint64(len(w.buffer.slots)) > first // keep while NACKable
	}
	return true
}

// resync prepares the writer for the frames of another hub (a seek): their
// stream sequence numbers and timestamps are that hub's, and NACKs are
// answered from buf. The next write starts a new segment (what was sent
// before can no longer be retransmitted) and continues the viewer's
// timestamps (see rebaseAt). The writer goroutine must not run.
func (w *trackWriter) resync(buf *retransmitBuffer) {
	w.buffer = buf
	w.replaying = false
	w.liveShift = 0
	if w.resends != nil {
		*w.resends = [resendSlots]resend{}
	}
	if w.started {
		w.rebase = true
		w.pausedAt = time.Now()
	}
}

// rebaseStep is the least timestamp step across a seek, in seconds: about
// one frame.
const rebaseStep = 0.02

// rebaseAt starts the segment of f, the first frame after a resync: its
// sequence numbers follow the last one sent, and its timestamp is the last
// one sent plus the time since the resync plus rebaseStep (in the track's
// clock), so that the receiver's clock never goes back and advances as the
// wall clock did. The frames after f keep their distance to it.
func (w *trackWriter) rebaseAt(f *frame) {
	w.rebase = false
	gap := time.Since(w.pausedAt).Seconds() + rebaseStep
	want := w.lastTS + uint32(gap*float64(w.clockRate))
	w.tsOff += want - w.viewerTS(f)
	w.segs[0] = segment{streamStart: f.pkts[0].seq, viewerStart: w.lastSeq + 1}
	w.nsegs = 1
}

// streamSeq translates a sequence number the viewer got back to the stream's.
func (w *trackWriter) streamSeq(seq uint16) (uint64, bool) {
	if !w.started {
		return 0, false
	}
	back := w.lastSeq - seq // how far before the last packet
	used := min(w.nsegs, maxSegments)
	for i := 0; i < used; i++ {
		s := w.segs[(w.nsegs-1-i)%maxSegments]
		if back <= w.lastSeq-s.viewerStart {
			stream := s.streamStart + uint64(seq-s.viewerStart)
			if stream > w.lastStream {
				return 0, false
			}
			return stream, true
		}
	}
	return 0, false
}

// retransmit resends the packet the viewer got as seq, from the stream's
// shared buffer, unless it was resent MaxResends times already or less than
// gap ago (at now, in ns), or its slot of the resend history holds another
// packet resent less than resendHold ago. It returns false when it did not. With RTX
// negotiated the packet goes on the RTX stream (see writeRTX), otherwise
// again on the track's SSRC with its sequence number.
func (w *trackWriter) retransmit(seq uint16, now int64, gap time.Duration) bool {
	b := w.t.current.Load()
	if b == nil {
		return false
	}
	s, ok := w.streamSeq(seq)
	if !ok {
		w.missedPackets.Add(1)
		return false
	}
	p := w.buffer.get(s)
	if p == nil {
		w.missedPackets.Add(1)
		return false
	}
	if w.resends == nil {
		w.resends = new([resendSlots]resend)
	}
	r := &w.resends[s%resendSlots]
	if r.stream != s && r.count > 0 && now-r.at < int64(resendHold) {
		w.suppressed.Add(1)
		return false
	}
	if r.stream != s || r.count == 0 {
		*r = resend{stream: s}
	} else if r.count >= MaxResends || now-r.at < int64(gap) {
		w.suppressed.Add(1)
		return false
	}
	h := &w.hdr
	h.Version = 2
	h.Timestamp = w.viewerTS(p.frame)
	h.Marker = p.marker
	h.Padding = p.padding
	h.Extension = false
	h.Extensions = h.Extensions[:0]
	var err error
	size := len(p.payload)
	if b.rtxSSRC != 0 {
		size += rtxHeaderSize
		err = w.writeRTX(b, seq, p.payload)
	} else {
		h.PayloadType = b.payloadType
		h.SSRC = b.ssrc
		h.SequenceNumber = seq
		_, err = b.writer.WriteRTP(h, p.payload)
	}
	if err != nil {
		w.writeErrs.Add(1)
		return false
	}
	r.count++
	r.at = now
	w.retransmits.Add(1)
	w.packets.Add(1)
	w.bytes.Add(uint64(size))
	return true
}

// rtxHeaderSize is the RTX payload header: the original sequence number.
const rtxHeaderSize = 2

// writeRTX sends payload, the packet the viewer got as seq, on the RTX
// stream of b (RFC 4588 section 4): the RTX payload type, the RTX SSRC,
// the next sequence number of the viewer's RTX stream and seq in the first
// two bytes of the payload; the timestamp and marker set by the caller in
// w.hdr stay. The payload is assembled in a buffer of the writer (the
// WriteStream copies what it sends).
func (w *trackWriter) writeRTX(b *binding, seq uint16, payload []byte) error {
	if w.rtxBuf == nil {
		w.rtxBuf = make([]byte, 0, rtxHeaderSize+MaxPayload)
		w.rtxSeq = uint16(rand.Uint32())
	}
	buf := binary.BigEndian.AppendUint16(w.rtxBuf[:0], seq)
	buf = append(buf, payload...)
	w.rtxBuf = buf[:0]
	h := &w.hdr
	h.PayloadType = b.rtxPayloadType
	h.SSRC = b.rtxSSRC
	h.SequenceNumber = w.rtxSeq
	if _, err := b.writer.WriteRTP(h, buf); err != nil {
		return err
	}
	w.rtxSeq++
	return nil
}

// stats returns the track's counters.
func (w *trackWriter) stats() TrackStats {
	return TrackStats{
		Packets:      w.packets.Load(),
		Bytes:        w.bytes.Load(),
		Frames:       w.frames.Load(),
		Drops:        w.drops.Load(),
		NACKs:        w.nackedPackets.Load(),
		Retransmits:  w.retransmits.Load(),
		Missed:       w.missedPackets.Load(),
		Suppressed:   w.suppressed.Load(),
		PLIs:         w.plis.Load(),
		FIRs:         w.firs.Load(),
		WriteErrors:  w.writeErrs.Load(),
		FractionLost: float64(w.fractionLost.Load()) / 256,
		PacketsLost:  w.packetsLost.Load(),
		Jitter:       time.Duration(uint64(w.jitter.Load()) * uint64(time.Second) / uint64(w.clockRate)),
	}
}
