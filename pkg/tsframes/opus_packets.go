package tsframes

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
)

// opusDuration90k is the duration of an Opus packet on the 90 kHz clock,
// from its TOC; 0 when the packet is empty or its TOC gives no frames. Opus
// frame sizes are multiples of 120 samples at 48 kHz, so the conversion is
// exact.
func opusDuration90k(pkt []byte) int64 {
	return opus.PacketDuration2(pkt) * 90000 / 48000
}

// opusFrames times the Opus packets of one PES: packet i gets the PES PTS
// plus the durations of the packets before it. The frames' Data share one
// new allocation (capacity-limited, so appending to one never touches
// another) and do not alias packets. Packets without a duration are dropped
// and reported through bad.
func opusFrames(pid uint16, pts int64, packets [][]byte, bad func(error)) []Frame {
	return appendOpusFrames(make([]Frame, 0, len(packets)), pid, pts, packets, bad)
}

// appendOpusFrames is opusFrames appending to frames (a scratch slice of the
// caller: only the Data are new allocations).
func appendOpusFrames(frames []Frame, pid uint16, pts int64, packets [][]byte, bad func(error)) []Frame {
	size := 0
	for _, p := range packets {
		size += len(p)
	}
	buf := make([]byte, 0, size)
	first := len(frames)
	for i, p := range packets {
		d := opusDuration90k(p)
		if d <= 0 {
			bad(fmt.Errorf("%w: PID %d: packet %d of %d in the PES (%d bytes) has no duration",
				ErrOpus, pid, i+1, len(packets), len(p)))
			continue
		}
		start := len(buf)
		buf = append(buf, p...)
		frames = append(frames, Frame{
			PID:      pid,
			Kind:     KindAudio,
			Codec:    CodecOpus,
			PTS:      pts,
			DTS:      pts,
			Duration: d,
			Data:     buf[start:len(buf):len(buf)],
		})
		pts += d
	}
	for i := first; i < len(frames)-1; i++ {
		frames[i].More = true
	}
	return frames
}
