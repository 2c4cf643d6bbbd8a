package udpbatch

import (
	"net/netip"
	"sync"
)

// bufPool holds the batches' buffers (one GSO send each).
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, maxBytes)
	return &b
}}

// Batch collects the datagrams to one address between Begin and Flush: a
// write to that address through any Conn of the Group, from any goroutine,
// is copied into the batch and reported written. Runs that reach the GSO
// limits (64 segments, 64000 bytes, a size change) are sent as soon as they
// are full, so a batch holds at most one 64 KB buffer, taken from a pool at
// the first write and returned at Flush. A Batch belongs to one writer and
// is reusable: Begin again after Flush.
type Batch struct {
	g *Group

	mu    sync.Mutex
	addr  netip.AddrPort
	open  bool
	conn  *Conn   // the socket of the run
	buf   *[]byte // the run, nil when empty
	seg   int     // size of the run's datagrams (all but a shorter last)
	n     int     // datagrams in the run
	short bool    // the run ended with a shorter datagram
	// prevShort is short before the last datagram (see dropLastLocked).
	prevShort bool
}

// NewBatch returns a closed Batch of the Group.
func (g *Group) NewBatch() *Batch { return &Batch{g: g} }

// Begin opens the batch for addr. It returns false, and leaves the batch
// closed, when addr is not valid or another batch is open for it; writes
// then go straight to the socket.
func (b *Batch) Begin(addr netip.AddrPort) bool {
	if !addr.IsValid() {
		return false
	}
	addr = canonical(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return false
	}
	g := b.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, taken := g.open[addr]; taken {
		return false
	}
	g.open[addr] = b
	g.nopen.Add(1)
	b.addr, b.open = addr, true
	return true
}

// Flush sends the datagrams collected and closes the batch. Flushing a
// closed batch does nothing.
func (b *Batch) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return
	}
	g := b.g
	g.mu.Lock()
	delete(g.open, b.addr)
	g.nopen.Add(-1)
	g.mu.Unlock()
	b.open = false
	b.sendLocked()
	if b.buf != nil {
		*b.buf = (*b.buf)[:0]
		bufPool.Put(b.buf)
		b.buf = nil
	}
	b.conn = nil
}

// add appends p, written through c, to the batch; false when the batch is
// not open (the caller writes p itself).
func (b *Batch) add(c *Conn, p []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst := b.nextLocked(c, len(p))
	if dst == nil {
		return false
	}
	copy(dst, p)
	return true
}

// AppendFunc appends a datagram of n bytes to the batch, to be sent
// through c: fill writes all n bytes of it in place (under the batch's
// lock, so it must not write to the Group's sockets). When fill returns
// false the datagram is left out. AppendFunc returns false, without
// calling fill, when the batch is not open or n is beyond the limits; the
// caller then sends the datagram itself (Conn.Send).
func (b *Batch) AppendFunc(c *Conn, n int, fill func(dst []byte) bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst := b.nextLocked(c, n)
	if dst == nil {
		return false
	}
	if !fill(dst) {
		b.dropLastLocked(n)
	}
	return true
}

// nextLocked makes room for a datagram of n bytes to be sent through c at
// the end of the run (sending the run first when the datagram cannot join
// it) and returns it; nil when the batch is not open or n is too large.
func (b *Batch) nextLocked(c *Conn, n int) []byte {
	if !b.open || n > maxBytes || n <= 0 {
		return nil
	}
	if b.n > 0 && (c != b.conn || b.short || n > b.seg || b.n == maxSegments || len(*b.buf)+n > maxBytes) {
		b.sendLocked()
	}
	if b.buf == nil {
		b.buf = bufPool.Get().(*[]byte)
	}
	b.conn = c
	off := len(*b.buf)
	*b.buf = (*b.buf)[:off+n]
	b.prevShort = b.short
	switch {
	case b.n == 0:
		b.seg = n
	case n < b.seg:
		b.short = true
	}
	b.n++
	return (*b.buf)[off : off+n]
}

// dropLastLocked removes the run's last datagram, of n bytes, added by
// nextLocked.
func (b *Batch) dropLastLocked(n int) {
	*b.buf = (*b.buf)[:len(*b.buf)-n]
	b.n--
	b.short = b.prevShort
	if b.n == 0 {
		b.seg, b.short = 0, false
	}
}

// sendLocked sends the run and empties it.
func (b *Batch) sendLocked() {
	if b.n == 0 {
		return
	}
	g, data := b.g, *b.buf
	g.datagrams.Add(uint64(b.n))
	sent := false
	if b.n > 1 && g.gso.Load() {
		if err := g.sendGSO(b.conn.UDPConn, data, b.seg, b.addr); err != nil {
			g.gsoFailed(err)
		} else {
			g.sends.Add(1)
			g.gsoSends.Add(1)
			sent = true
		}
	}
	if !sent {
		for off := 0; off < len(data); off += b.seg {
			end := min(off+b.seg, len(data))
			g.sends.Add(1)
			if _, err := b.conn.WriteToUDPAddrPort(data[off:end], b.addr); err != nil {
				g.sendErrs.Add(1)
			}
		}
	}
	*b.buf = data[:0]
	b.n, b.seg, b.short = 0, 0, false
}
