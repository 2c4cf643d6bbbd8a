package tsframes

import (
	"errors"
	"fmt"
	"io"
)

// packetReader cuts a byte stream into 188-byte MPEG-TS packets. A packet
// must start with 0x47. While sync is being acquired (at the start, after a
// resync) a packet is accepted only when the byte after it is 0x47 too (or
// the input ends there); when it is not, the packet is dropped as suspect
// (garbage or lost bytes may lie inside it) and sync is lost. Once locked
// (a packet was confirmed by the sync byte after it), a packet is returned
// as soon as its 188 bytes are in, without waiting for the byte after it (a
// live input may write nothing more for a while): when that byte is already
// buffered it is checked first, as above; when it comes later and is not
// 0x47, onRetract is told that the packet returned last is suspect, sync is
// lost and the search restarts from that packet's second byte. Out of sync,
// bytes are skipped up to the next position where three packets in a row
// (fewer at the end of the input) start with 0x47.
type packetReader struct {
	r io.Reader

	// stop is checked before every read of r.
	stop func() error
	// onResync is called once per loss of sync, with the bytes skipped.
	onResync func(skipped int)
	// onTruncated is called with a partial packet at the end of the input.
	onTruncated func(partial []byte)
	// onSuspect is called for a packet dropped because no sync byte follows.
	onSuspect func(pkt []byte)
	// onRetract is called, before the next packet is returned, for the
	// packet returned last when the byte after it turns out not to be a
	// sync byte.
	onRetract func(pkt []byte)
	// onBytes is called with the size of every successful read of r.
	onBytes func(n int)

	buf    []byte
	start  int
	end    int
	err    error // sticky error of r (io.EOF at the end)
	inSync bool
	// locked is set once a packet was confirmed by the sync byte after it;
	// packets are then returned without waiting for that byte.
	locked bool
	// pending is set while the packet returned last, at buf[pendingAt:],
	// awaits the byte after it (fill keeps it in the buffer).
	pending   bool
	pendingAt int
	lost      bool // sync lost, skipped bytes not reported yet
	skip      int
}

// syncConfirm is how many consecutive sync bytes, 188 bytes apart, confirm a
// resync point.
const syncConfirm = 3

func newPacketReader(r io.Reader) *packetReader {
	return &packetReader{
		r:           r,
		stop:        func() error { return nil },
		onResync:    func(int) {},
		onTruncated: func([]byte) {},
		onSuspect:   func([]byte) {},
		onRetract:   func([]byte) {},
		onBytes:     func(int) {},
		buf:         make([]byte, readBufferSize),
		inSync:      true,
	}
}

// next returns the next packet. The slice is valid until the following call.
// It returns io.EOF at the end of the input, the reader's error, or the error
// of stop.
func (p *packetReader) next() ([]byte, error) {
	for {
		avail := p.end - p.start
		if p.inSync {
			if p.pending && (avail > 0 || p.err != nil) {
				p.pending = false
				if avail > 0 && p.buf[p.start] != syncByte {
					// The packet returned last is not followed by a sync
					// byte: retract it and search again from its second
					// byte, as if it had been dropped as suspect.
					at := p.pendingAt
					p.onRetract(p.buf[at : at+packetSize : at+packetSize])
					p.loseSync()
					p.start = at + 1
					p.skip = 1
					continue
				}
			}
			if avail >= packetSize && p.buf[p.start] != syncByte {
				p.loseSync()
				continue
			}
			if avail > packetSize || (avail == packetSize && (p.err != nil || p.locked)) {
				pkt := p.buf[p.start : p.start+packetSize : p.start+packetSize]
				switch {
				case avail > packetSize && p.buf[p.start+packetSize] != syncByte:
					p.onSuspect(pkt)
					p.loseSync()
					p.start++ // the next packet may start inside this one
					p.skip++
					continue
				case avail > packetSize:
					p.locked = true
				case p.err == nil:
					// Locked, and the byte after it is not in yet.
					p.pending, p.pendingAt = true, p.start
				}
				p.start += packetSize
				return pkt, nil
			}
			if p.err != nil {
				return nil, p.finish(avail)
			}
			if err := p.fill(); err != nil {
				return nil, err
			}
			continue
		}

		// Out of sync: look for a confirmed sync point; everything before it
		// is garbage.
		cut, found := p.end, false
		for i := p.start; i < p.end; i++ {
			if p.buf[i] != syncByte {
				continue
			}
			ok, needMore := p.confirmed(i)
			if ok {
				cut, found = i, true
				break
			}
			if needMore {
				cut = i
				break
			}
		}
		p.skip += cut - p.start
		p.start = cut
		if found {
			p.inSync = true
			p.reportResync()
			continue
		}
		if p.err != nil {
			// confirmed never asks for more at the end of the input, so
			// everything left was garbage.
			p.reportResync()
			return nil, p.finish(0)
		}
		if err := p.fill(); err != nil {
			return nil, err
		}
	}
}

func (p *packetReader) loseSync() {
	p.inSync = false
	p.locked = false
	p.pending = false
	p.lost = true
	p.skip = 0
}

// confirmed reports whether the sync byte at i is followed by syncConfirm-1
// more sync bytes at 188-byte steps. needMore is true when the buffer ends
// before that can be decided and more input may come.
func (p *packetReader) confirmed(i int) (ok, needMore bool) {
	for k := 1; k < syncConfirm; k++ {
		j := i + k*packetSize
		if j >= p.end {
			if p.err != nil {
				// End of input: a full packet is enough.
				return i+packetSize <= p.end, false
			}
			return false, true
		}
		if p.buf[j] != syncByte {
			return false, false
		}
	}
	return true, false
}

func (p *packetReader) reportResync() {
	if p.lost {
		p.lost = false
		p.onResync(p.skip)
		p.skip = 0
	}
}

// finish reports a trailing partial packet and returns the sticky error.
func (p *packetReader) finish(rest int) error {
	if rest > 0 {
		p.onTruncated(p.buf[p.start:p.end])
		p.start = p.end
	}
	return p.err
}

// fill reads more input, compacting the buffer first (keeping a pending
// packet).
func (p *packetReader) fill() error {
	if err := p.stop(); err != nil {
		return err
	}
	from := p.start
	if p.pending {
		from = p.pendingAt
	}
	if from > 0 {
		n := copy(p.buf, p.buf[from:p.end])
		p.start -= from
		p.pendingAt -= from
		p.end = n
	}
	// The buffer holds more than syncConfirm+1 packets, so there is always
	// room here: fill is only called with fewer bytes than syncConfirm
	// packets pending (plus a pending packet only when fewer than one).
	for range maxEmptyReads {
		n, err := p.r.Read(p.buf[p.end:])
		if n < 0 || n > len(p.buf)-p.end {
			p.err = fmt.Errorf("invalid read count %d", n)
			return nil
		}
		p.end += n
		if n > 0 {
			p.onBytes(n)
		}
		if err != nil {
			p.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	p.err = io.ErrNoProgress
	return nil
}

// isEOF tells the end of the input from a read error.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF)
}
