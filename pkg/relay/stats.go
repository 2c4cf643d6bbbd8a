package relay

import "time"

// TrackStats are the counters of one track of one viewer.
type TrackStats struct {
	Packets uint64 // RTP packets sent, retransmissions included
	// Bytes counts the RTP payload bytes sent, retransmissions included
	// (with their RTX header when sent on RTX).
	Bytes  uint64
	Frames uint64 // access units (video) or Opus packets (audio) sent
	// Drops counts frames not sent because the viewer's queue was full
	// (video: from the overflow to the next keyframe).
	Drops uint64
	NACKs uint64 // packets the receiver asked for again
	// Retransmits counts the packets resent from the stream's buffer: on
	// the track's RTX stream (RFC 4588) when the viewer negotiated it,
	// otherwise on its SSRC with their sequence numbers.
	Retransmits uint64
	Missed      uint64 // NACKed packets no longer in the buffer
	// Suppressed counts NACKed packets not resent because they were resent
	// MaxResends times already, or less than a round trip ago: a receiver
	// behind a slow or lossy link must not multiply its own traffic.
	Suppressed  uint64
	PLIs        uint64 // picture loss indications received (counted only)
	FIRs        uint64 // full intra requests received (counted only)
	WriteErrors uint64 // packets the WriteStream refused
	// FractionLost (0..1), PacketsLost (cumulative) and Jitter are from the
	// receiver's latest report.
	FractionLost float64
	PacketsLost  int64
	Jitter       time.Duration
}

// ViewerStats are the counters of one viewer.
type ViewerStats struct {
	Stream string
	Video  TrackStats
	Audio  TrackStats
	// RTT is the round-trip time from the latest receiver report that
	// referred to one of our sender reports; 0 until then.
	RTT time.Duration
	// TimeToFirstFrame is the time from Start to the first keyframe written
	// (to the first audio packet when the viewer has no video); 0 until then.
	TimeToFirstFrame time.Duration
	// Replayed is the number of video frames sent from the GOP cache at Start.
	Replayed int
	// CatchUp is the time from Start to the end of the catch-up after the
	// replay (its backlog sent at Config.ReplayRate): from then on the
	// viewer gets each frame as it arrives. 0 until then, and when nothing
	// was replayed.
	CatchUp time.Duration
	// BusToRTP is the delay from a frame's message reaching the node (the
	// bus subscription's handler call) to the last RTP packet of the frame
	// written to this viewer (its WriteRTP returned). It samples the frames
	// of the live feed, not the replayed GOP nor the video frames sent at
	// its pace until the viewer caught up (see CatchUp): the video frames
	// whose position in their GOP is a multiple of 32 (every keyframe) and
	// every 32nd audio packet of the stream.
	BusToRTP DelayHistogram
	// IngestToRTP is the delay from the frame's store time in JetStream
	// (the completing message's metadata timestamp, so the NATS server's
	// clock) to the same write, for the same frames when that time is
	// known. Skew between the server's clock and this node's adds to it;
	// observations below zero are left out.
	IngestToRTP DelayHistogram
}

// Stats are the counters of a Relay.
type Stats struct {
	Streams       int // streams with a hub on this node
	Subscriptions int // bus subscriptions open (one per hub once set up)
	Viewers       int // viewers joined and not closed
}
