package whip

import (
	"time"

	"github.com/pion/rtp"
)

// reorder is the jitter buffer of one RTP stream: it hands packets over in
// sequence order, waiting for a missing one (a NACK's repair, or a packet
// overtaken on the way) while fewer than its window of later packets are
// held and the oldest held one is younger than its maximum delay; then it
// gives the missing ones up as lost. Late and duplicate packets are
// dropped.
type reorder struct {
	slots    []slot // ring indexed by sequence number
	maxDelay time.Duration
	next     uint16 // the sequence number handed over next
	started  bool
	held     int
	lost     bool // packets were given up before the next one handed over
	lateRun  int  // late packets in a row
	drops    uint64
	gaps     uint64 // packets given up as lost
}

type slot struct {
	pkt     *rtp.Packet
	arrived time.Time
}

// newReorder returns a reorder buffer of window packets (a power of two)
// holding a gap for at most maxDelay.
func newReorder(window int, maxDelay time.Duration) *reorder {
	return &reorder{slots: make([]slot, window), maxDelay: maxDelay}
}

// push adds pkt, arrived at now, and hands over (to emit, in order) what
// is ready; lost tells emit that packets before this one were given up.
func (r *reorder) push(pkt *rtp.Packet, now time.Time, emit func(pkt *rtp.Packet, lost bool)) {
	if !r.started {
		r.started, r.next = true, pkt.SequenceNumber
	}
	d := int16(pkt.SequenceNumber - r.next)
	if d < 0 && r.lateRun < len(r.slots) {
		r.drops++ // late (given up already) or a duplicate of one handed over
		r.lateRun++
		return
	}
	r.lateRun = 0
	if d < 0 {
		// A window of packets all behind: the sequence jumped back. Hand
		// over what is held, start again from this one.
		r.flush(emit)
		r.next, r.lost = pkt.SequenceNumber, true
		r.gaps++
	}
	// Beyond the window: give up the oldest missing packets.
	for int(int16(pkt.SequenceNumber-r.next)) >= len(r.slots) && r.held > 0 {
		r.skip(emit)
	}
	if int(int16(pkt.SequenceNumber-r.next)) >= len(r.slots) {
		r.next, r.lost = pkt.SequenceNumber, true
		r.gaps++
	}
	s := &r.slots[int(pkt.SequenceNumber)%len(r.slots)]
	if s.pkt != nil {
		r.drops++ // duplicate
		return
	}
	s.pkt, s.arrived = pkt, now
	r.held++
	r.drain(emit)
	r.expire(now, emit)
}

// expire gives up a missing packet when the oldest packet held behind it
// has waited maxDelay. push calls it; its owner also calls it when no
// packet arrives for a while.
func (r *reorder) expire(now time.Time, emit func(*rtp.Packet, bool)) {
	for r.held > 0 {
		oldest := time.Time{}
		for i := range len(r.slots) {
			s := &r.slots[int(r.next+uint16(i))%len(r.slots)]
			if s.pkt != nil {
				oldest = s.arrived
				break
			}
		}
		if now.Sub(oldest) < r.maxDelay {
			return
		}
		r.skip(emit)
	}
}

// flush hands over every packet held, giving up the missing ones: the end
// of the stream.
func (r *reorder) flush(emit func(*rtp.Packet, bool)) {
	for r.held > 0 {
		r.skip(emit)
	}
}

// skip gives up the missing packet at the head, then hands over what
// follows in order.
func (r *reorder) skip(emit func(*rtp.Packet, bool)) {
	if r.slots[int(r.next)%len(r.slots)].pkt == nil {
		r.next++
		r.lost = true
		r.gaps++
	}
	r.drain(emit)
}

// drain hands over the packets in order from the head.
func (r *reorder) drain(emit func(*rtp.Packet, bool)) {
	for {
		s := &r.slots[int(r.next)%len(r.slots)]
		if s.pkt == nil {
			return
		}
		pkt := s.pkt
		*s = slot{}
		r.held--
		r.next++
		lost := r.lost
		r.lost = false
		emit(pkt, lost)
	}
}
