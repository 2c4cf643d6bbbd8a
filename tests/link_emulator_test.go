package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A linkEmulator stands for one viewer's access link, in userspace, on
// loopback: a UDP proxy between a WebRTC viewer and a whep-node, with a
// bottleneck on the node → viewer direction. The viewer's offer is sent
// without its candidates and the node's answer has its candidates rewritten
// to the emulator's viewer-facing address (linkOffer, linkAnswer), so that
// the only path between the two goes through the emulator: the viewer only
// knows the emulator's address, and the node learns the emulator's
// node-facing address as a peer-reflexive candidate from the viewer's
// connectivity checks.
//
// Node → viewer datagrams go through, in order:
//   - the blackhole switch (drop everything, both directions: a viewer that
//     stopped reading, or a dead link);
//   - random loss (linkConfig.Loss, from a seeded RNG);
//   - the bottleneck: a FIFO queue drained at linkConfig.Rate bits per
//     second, holding at most linkConfig.Queue worth of bytes at that rate;
//     a datagram that does not fit is dropped (tail drop).
//
// Viewer → node datagrams are forwarded at once (unless blackholed): the
// bottleneck of a slow viewer is its downlink, where the node's media goes.
//
// The emulator records what it saw: datagrams by kind and fate, and for RTP
// (SRTP keeps the RTP header in clear) every sequence number of every SSRC,
// so that a test can compare what the node says it sent and what the viewer
// reported lost with what the link did. SRTCP keeps its first 8 bytes in
// clear: the viewer's receiver reports and NACKs are counted (their content
// is encrypted).
type linkEmulator struct {
	nodeAddr   *net.UDPAddr
	nodeSide   *net.UDPConn // to and from the node
	viewerSide *net.UDPConn // to and from the viewer
	queue      chan linkDatagram
	done       chan struct{}
	wg         sync.WaitGroup
	stopOnce   sync.Once

	mu         sync.Mutex
	cfg        linkConfig
	rng        *rand.Rand
	blackholed bool
	viewerAddr *net.UDPAddr // the first source of a datagram on viewerSide
	queued     int          // bytes in the bottleneck queue, not yet departed
	lastDepart time.Time    // departure time of the last datagram queued
	st         linkCounters
	flows      map[uint32]*rtpFlow
	rrs        []linkRR
}

// linkConfig shapes the node → viewer direction. The zero value is a
// perfect link.
type linkConfig struct {
	// Rate is the bottleneck's rate in bits per second; 0 is no bottleneck.
	Rate int64
	// Queue is the bottleneck's queue, as the time it takes to send at
	// Rate: it holds Rate*Queue/8 bytes.
	Queue time.Duration
	// Loss is the probability that a datagram is lost before the queue.
	Loss float64
	// Seed seeds the loss RNG.
	Seed uint64
}

// linkDatagram is a node → viewer datagram in the bottleneck queue.
type linkDatagram struct {
	b      []byte
	depart time.Time // when its last bit leaves the bottleneck
	rtp    bool
	ssrc   uint32
	ext    uint64 // extended sequence number
}

// linkCounters count datagrams. "Down" is node → viewer, "up" viewer →
// node.
type linkCounters struct {
	DownIn         int // datagrams from the node
	DownDelivered  int // sent on to the viewer
	DownQueueDrops int // dropped by the bottleneck (queue full)
	DownLossDrops  int // dropped by random loss
	DownHoleDrops  int // dropped by the blackhole
	DownRTP        int // RTP datagrams from the node
	DownRTCP       int // SRTCP datagrams from the node (sender reports)
	DownOther      int // STUN, DTLS
	DownStray      int // datagrams on the node side from another address
	LastDownIn     time.Time

	UpIn         int // datagrams from the viewer
	UpToNode     int // sent on to the node
	LastUpToNode time.Time
	UpHoleDrop   int // dropped by the blackhole
	UpRR         int // SRTCP receiver reports forwarded
	UpNACK       int // SRTCP transport-layer feedback (NACK) forwarded
	UpStray      int // datagrams on the viewer side from another address than the first
}

// drops returns the node → viewer datagrams dropped, for any reason.
func (c linkCounters) drops() int { return c.DownQueueDrops + c.DownLossDrops + c.DownHoleDrops }

// rtpFlow is the record of one SSRC, node → viewer.
type rtpFlow struct {
	started   bool
	maxExt    uint64
	first     uint64 // extended sequence number of the first datagram delivered
	delivered bool   // first is set
	seqs      map[uint64]*linkSeq
	st        rtpFlowStats
}

// linkSeq is the fate of one sequence number.
type linkSeq struct{ dropped, delivered int }

// rtpFlowStats summarize one SSRC.
type rtpFlowStats struct {
	Seen      int // datagrams from the node, retransmissions included
	Delivered int // datagrams sent on to the viewer
	Dropped   int // datagrams dropped
	// Repeats are the datagrams whose sequence number came before: the
	// node's retransmissions (NACK answers), whatever their fate.
	Repeats int
	// DroppedSeqs are the sequence numbers after the first one delivered
	// that were dropped at least once; NeverDelivered those of them that
	// were never delivered. A receiver counts as lost (RTCP cumulative
	// lost) what it had not received when it reported, from its first
	// packet on: at least NeverDelivered (up to the last report), at most
	// DroppedSeqs.
	DroppedSeqs    int
	NeverDelivered int
}

// linkRR is a receiver report the emulator forwarded to the node.
type linkRR struct {
	ssrc uint32 // the reporter's SSRC (one per received stream)
	at   time.Time
}

// linkQueueLen bounds the datagrams waiting in the bottleneck: far more
// than the byte limit lets in (datagrams beyond are counted as queue drops).
const linkQueueLen = 1 << 14

// linkSocketBuffer is the receive buffer asked for on both sockets, so that
// the emulator itself does not lose bursts (net.core.rmem_max caps it).
const linkSocketBuffer = 4 << 20

// newLinkEmulator starts an emulator in front of the node's ICE UDP address
// nodeAddr, shaped by cfg. The cleanup stops it (sockets closed, goroutines
// ended).
func newLinkEmulator(t *testing.T, nodeAddr *net.UDPAddr, cfg linkConfig) *linkEmulator {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(linkSocketBuffer)
		_ = c.SetWriteBuffer(linkSocketBuffer)
		return c
	}
	e := &linkEmulator{
		nodeAddr:   nodeAddr,
		nodeSide:   listen(),
		viewerSide: listen(),
		queue:      make(chan linkDatagram, linkQueueLen),
		done:       make(chan struct{}),
		cfg:        cfg,
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		flows:      map[uint32]*rtpFlow{},
	}
	e.wg.Add(3)
	go e.down()
	go e.send()
	go e.up()
	t.Cleanup(e.stop)
	return e
}

// stop closes the sockets and waits for the emulator's goroutines.
func (e *linkEmulator) stop() {
	e.stopOnce.Do(func() {
		close(e.done)
		_ = e.nodeSide.Close()
		_ = e.viewerSide.Close()
		e.wg.Wait()
	})
}

// viewerFacing is the address the viewer is given as the node's.
func (e *linkEmulator) viewerFacing() *net.UDPAddr { return e.viewerSide.LocalAddr().(*net.UDPAddr) }

// nodeFacing is the address the node sees the viewer at.
func (e *linkEmulator) nodeFacing() *net.UDPAddr { return e.nodeSide.LocalAddr().(*net.UDPAddr) }

// reshape changes the shaping from now on; datagrams already queued keep
// their departure times.
func (e *linkEmulator) reshape(cfg linkConfig) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = cfg
	e.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
}

// setBlackhole turns the blackhole on or off.
func (e *linkEmulator) setBlackhole(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.blackholed = on
}

// counters returns the datagram counters.
func (e *linkEmulator) counters() linkCounters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// flow returns the record of ssrc (zero when never seen).
func (e *linkEmulator) flow(ssrc uint32) rtpFlowStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.flows[ssrc]
	if f == nil {
		return rtpFlowStats{}
	}
	st := f.st
	if !f.delivered {
		return st
	}
	for ext, s := range f.seqs {
		if ext <= f.first || s.dropped == 0 {
			continue
		}
		st.DroppedSeqs++
		if s.delivered == 0 {
			st.NeverDelivered++
		}
	}
	return st
}

// reportsSince returns, per reporter SSRC, how many receiver reports were
// forwarded to the node at or after since.
func (e *linkEmulator) reportsSince(since time.Time) map[uint32]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[uint32]int{}
	for _, r := range e.rrs {
		if _, ok := out[r.ssrc]; !ok {
			out[r.ssrc] = 0
		}
		if !r.at.Before(since) {
			out[r.ssrc]++
		}
	}
	return out
}

// down reads the node's datagrams and queues (or drops) them.
func (e *linkEmulator) down() {
	defer e.wg.Done()
	defer close(e.queue)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := e.nodeSide.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		d, ok := e.admit(buf[:n], from, time.Now())
		if !ok {
			continue
		}
		select {
		case e.queue <- d:
		default:
			e.mu.Lock()
			e.queued -= len(d.b)
			e.st.DownQueueDrops++
			e.dropped(d)
			e.mu.Unlock()
		}
	}
}

// admit classifies and records a node → viewer datagram and decides its
// fate: ok with its departure time, or dropped.
func (e *linkEmulator) admit(b []byte, from *net.UDPAddr, now time.Time) (linkDatagram, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !from.IP.Equal(e.nodeAddr.IP) || from.Port != e.nodeAddr.Port {
		e.st.DownStray++
		return linkDatagram{}, false
	}
	e.st.DownIn++
	e.st.LastDownIn = now
	d := linkDatagram{b: append([]byte(nil), b...)}
	switch {
	case isRTCP(b):
		e.st.DownRTCP++
	case isRTP(b):
		e.st.DownRTP++
		d.rtp = true
		d.ssrc = binary.BigEndian.Uint32(b[8:12])
		f := e.flows[d.ssrc]
		if f == nil {
			f = &rtpFlow{seqs: map[uint64]*linkSeq{}}
			e.flows[d.ssrc] = f
		}
		d.ext = f.extend(binary.BigEndian.Uint16(b[2:4]))
		f.st.Seen++
		if f.seqs[d.ext] != nil {
			f.st.Repeats++
		} else {
			f.seqs[d.ext] = &linkSeq{}
		}
	default:
		e.st.DownOther++
	}
	switch {
	case e.blackholed:
		e.st.DownHoleDrops++
		e.dropped(d)
		return d, false
	case e.cfg.Loss > 0 && e.rng.Float64() < e.cfg.Loss:
		e.st.DownLossDrops++
		e.dropped(d)
		return d, false
	}
	if e.cfg.Rate <= 0 {
		d.depart = now
		e.queued += len(d.b)
		return d, true
	}
	limit := int(e.cfg.Rate * int64(e.cfg.Queue) / int64(8*time.Second))
	if e.queued+len(d.b) > limit {
		e.st.DownQueueDrops++
		e.dropped(d)
		return d, false
	}
	start := e.lastDepart
	if start.Before(now) {
		start = now
	}
	d.depart = start.Add(time.Duration(int64(len(d.b)) * 8 * int64(time.Second) / e.cfg.Rate))
	e.lastDepart = d.depart
	e.queued += len(d.b)
	return d, true
}

// dropped records the drop of d; the caller holds mu.
func (e *linkEmulator) dropped(d linkDatagram) {
	if !d.rtp {
		return
	}
	f := e.flows[d.ssrc]
	f.st.Dropped++
	f.seqs[d.ext].dropped++
}

// send sends the queued datagrams to the viewer, each at its departure
// time.
func (e *linkEmulator) send() {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for d := range e.queue {
		if wait := time.Until(d.depart); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-e.done:
				return
			}
		}
		e.mu.Lock()
		to := e.viewerAddr
		e.mu.Unlock()
		var err error
		if to != nil {
			_, err = e.viewerSide.WriteToUDP(d.b, to)
		}
		e.mu.Lock()
		e.queued -= len(d.b)
		if to == nil || err != nil {
			// No viewer yet (cannot happen once ICE runs: the viewer
			// speaks first), or the socket is closed.
			e.st.DownQueueDrops++
			e.dropped(d)
		} else {
			e.st.DownDelivered++
			if d.rtp {
				f := e.flows[d.ssrc]
				f.st.Delivered++
				f.seqs[d.ext].delivered++
				if !f.delivered {
					f.delivered, f.first = true, d.ext
				}
			}
		}
		e.mu.Unlock()
	}
}

// up forwards the viewer's datagrams to the node.
func (e *linkEmulator) up() {
	defer e.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := e.viewerSide.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		e.mu.Lock()
		if e.viewerAddr == nil {
			e.viewerAddr = from
		}
		if !from.IP.Equal(e.viewerAddr.IP) || from.Port != e.viewerAddr.Port {
			e.st.UpStray++
			e.mu.Unlock()
			continue
		}
		e.st.UpIn++
		if e.blackholed {
			e.st.UpHoleDrop++
			e.mu.Unlock()
			continue
		}
		e.st.UpToNode++
		e.st.LastUpToNode = time.Now()
		if isRTCP(b) && len(b) >= 8 {
			switch b[1] {
			case 201:
				e.st.UpRR++
				e.rrs = append(e.rrs, linkRR{ssrc: binary.BigEndian.Uint32(b[4:8]), at: time.Now()})
			case 205:
				e.st.UpNACK++
			}
		}
		e.mu.Unlock()
		_, _ = e.nodeSide.WriteToUDP(b, e.nodeAddr)
	}
}

// extend returns the extended sequence number of seq, the highest so far
// being f.maxExt.
func (f *rtpFlow) extend(seq uint16) uint64 {
	if !f.started {
		f.started = true
		f.maxExt = 1<<32 | uint64(seq)
		return f.maxExt
	}
	ext := uint64(int64(f.maxExt) + int64(int16(seq-uint16(f.maxExt))))
	f.maxExt = max(f.maxExt, ext)
	return ext
}

// isRTCP and isRTP tell (S)RTCP and (S)RTP apart by their first two bytes
// (RFC 7983: first byte 128..191; RFC 5761: RTCP packet types 192..223).
func isRTCP(b []byte) bool { return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223 }

func isRTP(b []byte) bool { return len(b) >= 12 && b[0]>>6 == 2 && !isRTCP(b) }

// linkOffer returns an offer without its candidates (and how many it had):
// the node must not learn the viewer's own address.
func linkOffer(sdp string) (string, int) {
	lines := strings.Split(sdp, "\r\n")
	out := lines[:0]
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "a=candidate:") {
			n++
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n"), n
}

// linkAnswer returns the node's ICE UDP address, read from the answer's
// candidates, and a function that rewrites the answer so that every
// candidate is the emulator's viewer-facing address. The candidates must
// all be UDP host candidates of one address.
func linkAnswer(sdp string) (*net.UDPAddr, func(to *net.UDPAddr) string, error) {
	lines := strings.Split(sdp, "\r\n")
	var node *net.UDPAddr
	var at []int
	for i, l := range lines {
		if !strings.HasPrefix(l, "a=candidate:") {
			continue
		}
		// a=candidate:foundation component transport priority address port typ type ...
		f := strings.Fields(l)
		if len(f) < 8 || !strings.EqualFold(f[2], "udp") || f[6] != "typ" || f[7] != "host" {
			return nil, nil, fmt.Errorf("answer candidate %q: want a UDP host candidate", l)
		}
		port, err := strconv.Atoi(f[5])
		ip := net.ParseIP(f[4])
		if err != nil || ip == nil {
			return nil, nil, fmt.Errorf("answer candidate %q: bad address", l)
		}
		a := &net.UDPAddr{IP: ip, Port: port}
		if node != nil && (!node.IP.Equal(a.IP) || node.Port != a.Port) {
			return nil, nil, fmt.Errorf("answer candidates %v and %v: want one address", node, a)
		}
		node = a
		at = append(at, i)
	}
	if node == nil {
		return nil, nil, errors.New("answer without candidates")
	}
	rewrite := func(to *net.UDPAddr) string {
		out := append([]string(nil), lines...)
		for _, i := range at {
			f := strings.Fields(out[i])
			f[4], f[5] = to.IP.String(), strconv.Itoa(to.Port)
			out[i] = strings.Join(f, " ")
		}
		return strings.Join(out, "\r\n")
	}
	return node, rewrite, nil
}

// TestLinkEmulatorBottleneck checks the emulator alone, with plain UDP: a
// burst larger than the queue is cut to what the queue holds, the rest
// leaves at the configured rate, and the RTP record matches.
func TestLinkEmulatorBottleneck(t *testing.T) {
	whepLeakCheck(t)
	node, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	viewer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	// 80 kbit/s, 500 ms of queue: 5000 bytes, which the queue counts until
	// a datagram has left: of a burst of 1000-byte datagrams, five get in,
	// then leave 100 ms apart.
	const size, rate = 1000, 80_000
	e := newLinkEmulator(t, node.LocalAddr().(*net.UDPAddr), linkConfig{Rate: rate, Queue: 500 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	_ = viewer.SetDeadline(deadline)
	_ = node.SetDeadline(deadline)

	// The viewer speaks first (as ICE does), so that the emulator knows it.
	if _, err := viewer.WriteToUDP([]byte("hello"), e.viewerFacing()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := node.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("node got %q from %v, %v", buf[:n], from, err)
	}
	if from.Port != e.nodeFacing().Port {
		t.Fatalf("node got the datagram from %v, want the emulator's %v", from, e.nodeFacing())
	}

	// A burst of 10 RTP datagrams, sequence numbers 65530..65535, 0..3.
	const burst = 10
	for i := range burst {
		p := make([]byte, size)
		p[0], p[1] = 0x80, 96
		binary.BigEndian.PutUint16(p[2:], uint16(65530+i))
		binary.BigEndian.PutUint32(p[8:], 0xfeedbeef)
		if _, err := node.WriteToUDP(p, from); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint16
	var at []time.Time
	for len(got) < 5 {
		n, _, err := viewer.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		if n != size {
			t.Fatalf("datagram of %d bytes, want %d", n, size)
		}
		got = append(got, binary.BigEndian.Uint16(buf[2:]))
		at = append(at, time.Now())
	}
	want := []uint16{65530, 65531, 65532, 65533, 65534}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	// Four datagrams take 4 x 100 ms after the first at 80 kbit/s.
	if d := at[4].Sub(at[0]); d < 350*time.Millisecond {
		t.Fatalf("5 datagrams of %d bytes in %v, want 400 ms at %d bit/s", size, d, rate)
	}
	whepWait(t, t.Context(), "the fifth delivery recorded", func() bool { return e.counters().DownDelivered == 5 })
	c := e.counters()
	if c.DownIn != burst || c.DownRTP != burst || c.DownDelivered != 5 || c.DownQueueDrops != 5 || c.UpIn != 1 || c.UpToNode != 1 {
		t.Fatalf("counters %+v", c)
	}
	// Seqs 65535 and 0..3 were dropped: 5 dropped after the first delivered,
	// never delivered.
	if f := e.flow(0xfeedbeef); f != (rtpFlowStats{Seen: burst, Delivered: 5, Dropped: 5, DroppedSeqs: 5, NeverDelivered: 5}) {
		t.Fatalf("flow %+v", f)
	}

	// A retransmission of a dropped one (seq 1) goes through now that the
	// queue is empty, and counts as a repeat; the blackhole drops the next.
	p := make([]byte, size)
	p[0], p[1] = 0x80, 96
	binary.BigEndian.PutUint16(p[2:], 1)
	binary.BigEndian.PutUint32(p[8:], 0xfeedbeef)
	if _, err := node.WriteToUDP(p, from); err != nil {
		t.Fatal(err)
	}
	if n, _, err := viewer.ReadFromUDP(buf); err != nil || binary.BigEndian.Uint16(buf[2:n]) != 1 {
		t.Fatalf("retransmission: %v", err)
	}
	// The emulator records a delivery once its write returned: the viewer
	// may read the datagram first.
	whepWait(t, t.Context(), "the retransmission recorded", func() bool {
		return e.flow(0xfeedbeef).Delivered == 6
	})
	if f := e.flow(0xfeedbeef); f != (rtpFlowStats{Seen: burst + 1, Delivered: 6, Dropped: 5, Repeats: 1, DroppedSeqs: 5, NeverDelivered: 4}) {
		t.Fatalf("flow after the retransmission %+v", f)
	}
	e.setBlackhole(true)
	binary.BigEndian.PutUint16(p[2:], 4)
	if _, err := node.WriteToUDP(p, from); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.WriteToUDP([]byte("lost"), e.viewerFacing()); err != nil {
		t.Fatal(err)
	}
	whepWait(t, t.Context(), "the blackhole's drops", func() bool {
		c := e.counters()
		return c.DownHoleDrops == 1 && c.UpHoleDrop == 1
	})
}

// TestLinkEmulatorSDP checks the offer and answer rewriting.
func TestLinkEmulatorSDP(t *testing.T) {
	offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
	got, n := linkOffer(offer)
	if n != 1 || got != "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=end-of-candidates\r\n" {
		t.Fatalf("linkOffer = %q, %d", got, n)
	}
	answer := "v=0\r\na=candidate:2 1 udp 2130706431 127.0.0.1 8189 typ host generation 0\r\na=candidate:3 1 UDP 2130706431 127.0.0.1 8189 typ host\r\n"
	node, rewrite, err := linkAnswer(answer)
	if err != nil || node.String() != "127.0.0.1:8189" {
		t.Fatalf("linkAnswer: %v, %v", node, err)
	}
	want := "v=0\r\na=candidate:2 1 udp 2130706431 127.0.0.1 40000 typ host generation 0\r\na=candidate:3 1 UDP 2130706431 127.0.0.1 40000 typ host\r\n"
	if got := rewrite(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}); got != want {
		t.Fatalf("rewritten:\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []string{
		"v=0\r\n",
		"a=candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype passive\r\n",
		"a=candidate:1 1 udp 1 127.0.0.1 9 typ srflx raddr 0.0.0.0 rport 0\r\n",
		"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=candidate:2 1 udp 1 127.0.0.1 10 typ host\r\n",
		"a=candidate:1 1 udp 1 nohost 9 typ host\r\n",
	} {
		if _, _, err := linkAnswer(bad); err == nil {
			t.Errorf("linkAnswer(%q): no error", bad)
		}
	}
}
