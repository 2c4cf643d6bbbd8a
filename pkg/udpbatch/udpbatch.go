// Package udpbatch coalesces the datagrams a writer sends to one peer over
// a shared UDP socket into as few system calls as the kernel allows: with UDP
// generic segmentation offload (Linux UDP_SEGMENT, 4.18+) one sendmsg(2)
// carries a run of equal-size datagrams (the last may be shorter), such as
// the RTP packets of a video access unit, where one sendto(2) per packet
// made the system calls and the network stack most of a node's CPU
// (BenchmarkFrame: about 3.5 times less per frame on loopback). Without GSO
// (turned off, failed, or not Linux) a batch still works: its datagrams are
// sent one by one at Flush.
//
// A Group is shared by the sockets of one ICE UDP mux (Group.Wrap, or
// Group.Net for pion's multi-socket mux). A Batch belongs to one writer:
// between Begin(addr) and Flush, every write to addr through any Conn of the
// Group, from any goroutine, is collected and then sent in write order;
// other writes go straight to the socket. Errors of batched sends are
// counted in Stats, never returned to the writer.
package udpbatch

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// GSO limits: the segments of one send, and its bytes (below the 64 KiB IP
// datagram limit with room for the headers).
const (
	maxSegments = 64
	maxBytes    = 64000
	// maxGSOFailures is how many failed GSO sends turn GSO off.
	maxGSOFailures = 8
)

// Stats are the counters of a Group.
type Stats struct {
	GSO        bool   // GSO in use
	Datagrams  uint64 // datagrams sent from batches
	Sends      uint64 // system calls that sent them
	GSOSends   uint64 // of which GSO sends (more than one datagram)
	SendErrors uint64 // batched datagrams lost to a send error
}

// Group is the batching state shared by the sockets of one mux. Errors of a
// batched send cannot reach the writer (its writes already returned); they
// are counted (Stats), UDP being lossy anyway. When a GSO send fails, its
// datagrams are sent one by one; after maxGSOFailures such failures GSO is
// turned off for the Group (logged once).
type Group struct {
	log *slog.Logger
	gso atomic.Bool
	// sendGSO sends a run with one GSO system call (replaced in tests).
	sendGSO func(c *net.UDPConn, data []byte, seg int, addr netip.AddrPort) error

	mu    sync.RWMutex
	open  map[netip.AddrPort]*Batch
	nopen atomic.Int32
	conns map[netip.AddrPort]*Conn // by local address, for ConnFor

	gsoFailures                          atomic.Int32
	datagrams, sends, gsoSends, sendErrs atomic.Uint64
}

// NewGroup returns a Group; gso enables UDP segmentation offload where the
// platform has it.
func NewGroup(gso bool, logger *slog.Logger) *Group {
	g := &Group{log: logger, open: map[netip.AddrPort]*Batch{}, conns: map[netip.AddrPort]*Conn{}, sendGSO: sendGSO}
	g.gso.Store(gso && gsoSupported)
	return g
}

// Stats returns the Group's counters.
func (g *Group) Stats() Stats {
	return Stats{
		GSO:        g.gso.Load(),
		Datagrams:  g.datagrams.Load(),
		Sends:      g.sends.Load(),
		GSOSends:   g.gsoSends.Load(),
		SendErrors: g.sendErrs.Load(),
	}
}

// gsoFailed records a failed GSO send and turns GSO off after
// maxGSOFailures.
func (g *Group) gsoFailed(err error) {
	if g.gsoFailures.Add(1) == maxGSOFailures && g.gso.CompareAndSwap(true, false) {
		g.log.Warn("UDP segmentation offload fails here; sending datagrams one by one", "err", err)
	}
}

// Wrap returns c as a Conn of the Group. Closing the Conn closes c.
func (g *Group) Wrap(c *net.UDPConn) *Conn {
	conn := &Conn{UDPConn: c, g: g}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		conn.local = canonical(a.AddrPort())
		g.mu.Lock()
		g.conns[conn.local] = conn
		g.mu.Unlock()
	}
	return conn
}

// ConnFor returns the Conn of the Group bound to local, a local ICE
// candidate's address; when none is, the Group's only Conn (a single socket
// announced under a public address), else nil.
func (g *Group) ConnFor(local netip.AddrPort) *Conn {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if c := g.conns[canonical(local)]; c != nil {
		return c
	}
	if len(g.conns) == 1 {
		for _, c := range g.conns {
			return c
		}
	}
	return nil
}

// Net returns a transport.Net whose ListenUDP sockets are Conns of the
// Group; everything else is the standard network.
func (g *Group) Net() (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &groupNet{Net: n, g: g}, nil
}

type groupNet struct {
	*stdnet.Net
	g *Group
}

func (n *groupNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return n.g.Wrap(c), nil
}

// batchFor returns the batch open for addr, or nil.
func (g *Group) batchFor(addr netip.AddrPort) *Batch {
	if g.nopen.Load() == 0 {
		return nil
	}
	g.mu.RLock()
	b := g.open[addr]
	g.mu.RUnlock()
	return b
}

// Conn is a UDP socket of a Group: a net.PacketConn that also implements
// pion/ice's AddrPortReaderWriter. Its writes go straight to the socket
// unless a batch is open for their destination.
type Conn struct {
	*net.UDPConn
	g     *Group
	local netip.AddrPort
}

// Close closes the socket and removes it from the Group.
func (c *Conn) Close() error {
	c.g.mu.Lock()
	if c.g.conns[c.local] == c {
		delete(c.g.conns, c.local)
	}
	c.g.mu.Unlock()
	return c.UDPConn.Close()
}

// Send writes the datagram p to addr straight to the socket, past any
// batch: for a writer that batches by itself (see Batch.AppendFunc).
func (c *Conn) Send(p []byte, addr netip.AddrPort) error {
	_, err := c.WriteToUDPAddrPort(p, addr)
	return err
}

// ReadFromAddrPort reads a datagram (pion/ice's AddrPortReaderWriter).
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort writes b to addr, into addr's batch when one is open.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if bt := c.g.batchFor(addr); bt != nil && bt.add(c, b) {
		return len(b), nil
	}
	return c.WriteToUDPAddrPort(b, addr)
}

// WriteTo writes b to addr, into addr's batch when one is open.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, canonical(ua.AddrPort()))
	}
	return c.UDPConn.WriteTo(b, addr)
}

// canonical unmaps IPv4-mapped IPv6 addresses, as pion/ice does.
func canonical(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
