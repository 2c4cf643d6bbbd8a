package relay

// Audio groups. Muxers put several Opus packets in one PES (ffmpeg: five,
// 100 ms), the bus stores them as one message, and they reach the hub
// together (tsframes.Frame.More on all but the last). The hub queues such a
// group to each viewer as one item: the first frame, the others linked by
// frame.next. The viewer writes the group in one batch, and when the packets
// are of one size (see padGroup) the batch leaves in one GSO send instead of
// one send per packet: on Linux the kernel's per-datagram send path is most
// of a viewer's cost, and audio is 50 of its ~290 datagrams a second.
//
// Nothing is held back: the packets of a group arrive together and went out
// back to back before; they still do, with the same timestamps.

// maxRTPPadding is the most padding an RTP packet carries: its last byte
// counts the padding bytes, itself included (RFC 3550, section 5.1).
const maxRTPPadding = 255

// flushGroup delivers the audio group being assembled, if any: padded to
// one size when the hub pads, linked by next, kept for retransmissions and
// published to the viewers as one item.
func (h *hub) flushGroup() {
	g := h.group
	if len(g) == 0 {
		return
	}
	if h.cfg.padAudio {
		padGroup(g)
	}
	for i, f := range g {
		if i+1 < len(g) {
			f.next = g[i+1]
		}
		h.audioBuf.put(f)
	}
	h.publish(g[0])
	clear(h.group)
	h.group = h.group[:0]
}

// padGroup pads the packets of an audio group with RTP padding so that a
// GSO send can carry them: a run of datagrams of one size, the last one
// possibly shorter. Each packet but the last is padded up to the largest
// packet of the group; one that would need more than maxRTPPadding bytes
// is left as it is (the batch then sends in several runs). The padding is
// built once per stream, shared by every viewer; receivers drop it.
func padGroup(g []*frame) {
	if len(g) < 2 {
		return
	}
	size := 0
	for _, f := range g {
		size = max(size, len(f.pkts[0].payload))
	}
	for _, f := range g[:len(g)-1] {
		p := &f.pkts[0]
		n := size - len(p.payload)
		if n == 0 || n > maxRTPPadding {
			continue
		}
		padded := make([]byte, size)
		copy(padded, p.payload)
		padded[size-1] = byte(n)
		p.payload, p.padding = padded, true
		f.bytes = size
	}
}
