package relay

import "time"

// packet is one RTP packet of a stream, built once and shared by every
// viewer: a viewer only rewrites the header fields that are its own (SSRC,
// payload type, sequence number and timestamp offsets).
type packet struct {
	seq    uint64 // extended stream sequence number of its track
	marker bool
	// padding: payload ends with RTP padding (its last byte counts it),
	// sent with the header's P bit.
	padding bool
	payload []byte
	frame   *frame
}

// frame is one access unit (video) or one Opus packet (audio), packetized.
// It is immutable once published.
type frame struct {
	video bool
	key   bool
	// sampled frames are recorded in the viewers' delay histograms.
	sampled bool
	// hasIngest tells that ingest is known.
	hasIngest bool
	ts        uint32 // stream RTP timestamp
	// gopIndex is the position of a video frame in its GOP (0 = keyframe).
	gopIndex int
	bytes    int // payload bytes of all packets
	pkts     []packet
	// next is the following frame of an audio group (audio_group.go),
	// queued to the viewers with this one; nil otherwise.
	next *frame

	// recv is when the frame's bus message reached the hub, since the
	// hub's clock base (monotonic).
	recv time.Duration
	// ingest is recv minus the message's JetStream store time (wall
	// clocks of this node and of the NATS server).
	ingest time.Duration
	// pts is the frame's PTS (90 kHz, unwrapped, of its epoch) and stored
	// its JetStream store time (Unix ns, 0 when unknown): the position a
	// viewer reports once the frame is written (Viewer.Position).
	pts    int64
	stored int64
}

// newFrame builds a frame of payloads whose packets get the stream sequence
// numbers firstSeq, firstSeq+1, ...; the last packet carries the marker bit
// when marker is set.
func newFrame(video, key bool, ts uint32, gopIndex int, firstSeq uint64, payloads [][]byte, marker bool) *frame {
	f := &frame{video: video, key: key, ts: ts, gopIndex: gopIndex, pkts: make([]packet, len(payloads))}
	for i, p := range payloads {
		f.pkts[i] = packet{seq: firstSeq + uint64(i), payload: p, frame: f}
		f.bytes += len(p)
	}
	if marker && len(f.pkts) > 0 {
		f.pkts[len(f.pkts)-1].marker = true
	}
	return f
}

// count is how many frames f stands for in a viewer's queue: itself and
// the frames of its audio group after it.
func (f *frame) count() int {
	n := 0
	for ; f != nil; f = f.next {
		n++
	}
	return n
}

// lastSeq is the stream sequence number of the frame's last packet.
func (f *frame) lastSeq() uint64 { return f.pkts[len(f.pkts)-1].seq }
