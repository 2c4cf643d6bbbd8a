package whep

import (
	"net/netip"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/udpbatch"
)

// pathBatch is a session's relay.Batcher: it opens a udpbatch.Batch for the
// remote address of the session's selected ICE candidate pair, so that the
// packets of a frame leave in one system call. Until a UDP pair is selected
// (or when the pair is TCP, or through a TURN relay) Begin declines and
// packets are written one by one.
type pathBatch struct {
	g    *udpbatch.Group
	b    *udpbatch.Batch
	path atomic.Pointer[udpPath] // nil when not direct UDP
}

// udpPath is where a session's packets go on a direct UDP pair: the remote
// address, and the socket of the local candidate (nil when the Group cannot
// tell which it is).
type udpPath struct {
	remote netip.AddrPort
	conn   *udpbatch.Conn
}

func newPathBatch(g *udpbatch.Group) *pathBatch {
	return &pathBatch{g: g, b: g.NewBatch()}
}

// Begin opens the batch for the current path.
func (pb *pathBatch) Begin() bool {
	p := pb.current()
	if p == nil {
		return false
	}
	return pb.b.Begin(p.remote)
}

// Flush sends the batch.
func (pb *pathBatch) Flush() { pb.b.Flush() }

// current returns the current direct UDP path, or nil.
func (pb *pathBatch) current() *udpPath { return pb.path.Load() }

// follow tracks the selected candidate pair of t (ICE restarts included).
func (pb *pathBatch) follow(t *webrtc.ICETransport) {
	t.OnSelectedCandidatePairChange(pb.selected)
}

// selected records the pair p as the path.
func (pb *pathBatch) selected(p *webrtc.ICECandidatePair) {
	remote := batchAddr(p)
	if !remote.IsValid() {
		pb.path.Store(nil)
		return
	}
	up := &udpPath{remote: remote}
	if ip, err := netip.ParseAddr(p.Local.Address); err == nil {
		up.conn = pb.g.ConnFor(netip.AddrPortFrom(ip.Unmap(), p.Local.Port))
	}
	pb.path.Store(up)
}

// batchAddr is the address our packets go to on pair p, when they go
// there directly over UDP; zero otherwise.
func batchAddr(p *webrtc.ICECandidatePair) netip.AddrPort {
	if p == nil || p.Local == nil || p.Remote == nil ||
		p.Remote.Protocol != webrtc.ICEProtocolUDP || p.Local.Typ == webrtc.ICECandidateTypeRelay {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(p.Remote.Address)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), p.Remote.Port)
}
