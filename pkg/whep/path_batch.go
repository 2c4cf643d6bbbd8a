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
	b      *udpbatch.Batch
	remote atomic.Value // netip.AddrPort; zero when unknown
}

func newPathBatch(g *udpbatch.Group) *pathBatch {
	pb := &pathBatch{b: g.NewBatch()}
	pb.remote.Store(netip.AddrPort{})
	return pb
}

// Begin opens the batch for the current path.
func (pb *pathBatch) Begin() bool { return pb.b.Begin(pb.remote.Load().(netip.AddrPort)) }

// Flush sends the batch.
func (pb *pathBatch) Flush() { pb.b.Flush() }

// follow tracks the selected candidate pair of t (ICE restarts included).
func (pb *pathBatch) follow(t *webrtc.ICETransport) {
	t.OnSelectedCandidatePairChange(pb.selected)
}

// selected records the pair p as the path.
func (pb *pathBatch) selected(p *webrtc.ICECandidatePair) {
	pb.remote.Store(batchAddr(p))
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
