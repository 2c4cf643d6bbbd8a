package relay

import "sync/atomic"

// retransmitBuffer holds the most recent packets of one track of a stream,
// shared by all its viewers to answer NACKs. The hub's bus handler stores,
// viewers load concurrently without locks; a slot is checked against the
// requested sequence number, so a packet that has been overwritten is
// reported missing rather than sent in place of another.
type retransmitBuffer struct {
	mask  uint64
	slots []atomic.Pointer[packet]
}

// newRetransmitBuffer returns a buffer of size packets, rounded up to a
// power of two.
func newRetransmitBuffer(size int) *retransmitBuffer {
	n := 1
	for n < size {
		n <<= 1
	}
	return &retransmitBuffer{mask: uint64(n - 1), slots: make([]atomic.Pointer[packet], n)}
}

// put stores the packets of f.
func (b *retransmitBuffer) put(f *frame) {
	for i := range f.pkts {
		p := &f.pkts[i]
		b.slots[p.seq&b.mask].Store(p)
	}
}

// get returns the packet with stream sequence number seq, or nil when it is
// no longer (or was never) in the buffer.
func (b *retransmitBuffer) get(seq uint64) *packet {
	p := b.slots[seq&b.mask].Load()
	if p == nil || p.seq != seq {
		return nil
	}
	return p
}
