package udpbatch

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
)

var (
	_ transport.UDPConn        = (*Conn)(nil)
	_ ice.AddrPortReaderWriter = (*Conn)(nil)
	_ net.PacketConn           = (*Conn)(nil)
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// receiver is a UDP socket on loopback whose datagrams a test reads.
type receiver struct {
	c *net.UDPConn
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &receiver{c: c}
}

func (r *receiver) addr() netip.AddrPort { return r.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// read returns the next n datagrams, failing the test after a deadline.
func (r *receiver) read(t *testing.T, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 65536)
	for len(got) < n {
		if err := r.c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		k, _, err := r.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		got = append(got, bytes.Clone(buf[:k]))
	}
	return got
}

// none checks that no datagram is waiting.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	if err := r.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	if k, _, err := r.c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("unexpected datagram of %d bytes", k)
	}
}

func newConn(t *testing.T, g *Group) *Conn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	wc := g.Wrap(c)
	t.Cleanup(func() { wc.Close() })
	return wc
}

// datagrams returns datagrams of the given sizes, each filled with its
// index so that order and content can be checked.
func datagrams(sizes ...int) [][]byte {
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
	}
	return out
}

func sizes(n, size int, tail ...int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return append(s, tail...)
}

func TestBatchSendsInOrderWithFewerSends(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gso       bool
		sizes     []int
		wantSends uint64
		wantGSO   uint64
	}{
		{"frame", true, sizes(8, 1200, 517), 1, 1},
		{"size changes", true, []int{1200, 1200, 800, 1100, 1100, 1100, 300}, 2, 2},
		{"bigger after", true, []int{500, 500, 1200, 1200}, 2, 2},
		{"one", true, []int{1200}, 1, 0},
		{"segment limit", true, sizes(150, 400), 3, 3},              // 64 + 64 + 22
		{"byte limit", true, sizes(60, 1200), 2, 2},                 // 53 fit in 64000 bytes
		{"without GSO", false, sizes(8, 1200, 517), 9, 0},           // one by one
		{"keyframe", true, sizes(100, 1188, 1000), 2, 2},            // 53 + 48
		{"short then same", true, []int{1200, 700, 700, 700}, 2, 2}, // [1200 700] [700 700]
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGroup(tc.gso, quiet())
			c := newConn(t, g)
			r := newReceiver(t)
			want := datagrams(tc.sizes...)
			b := g.NewBatch()
			if !b.Begin(r.addr()) {
				t.Fatal("Begin refused")
			}
			for _, d := range want {
				if n, err := c.WriteToAddrPort(d, r.addr()); err != nil || n != len(d) {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			b.Flush()
			got := r.read(t, len(want))
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes starting %d", i, len(got[i]), got[i][0], len(want[i]), want[i][0])
				}
			}
			r.none(t)
			st := g.Stats()
			if st.Datagrams != uint64(len(want)) || st.Sends != tc.wantSends || st.GSOSends != tc.wantGSO || st.SendErrors != 0 {
				t.Errorf("stats %+v, want %d datagrams in %d sends (%d GSO)", st, len(want), tc.wantSends, tc.wantGSO)
			}
		})
	}
}

func TestBatchHoldsUntilFlush(t *testing.T) {
	g := NewGroup(true, quiet())
	c := newConn(t, g)
	r, other := newReceiver(t), newReceiver(t)
	b := g.NewBatch()
	if !b.Begin(r.addr()) {
		t.Fatal("Begin refused")
	}
	if _, err := c.WriteToAddrPort([]byte("held"), r.addr()); err != nil {
		t.Fatal(err)
	}
	// Other destinations are not held, nor writes through net.Addr to them.
	if _, err := c.WriteTo([]byte("direct"), net.UDPAddrFromAddrPort(other.addr())); err != nil {
		t.Fatal(err)
	}
	if got := other.read(t, 1); string(got[0]) != "direct" {
		t.Fatalf("other got %q", got[0])
	}
	r.none(t)
	// A write through net.Addr to the batch's address is batched too.
	if _, err := c.WriteTo([]byte("also"), net.UDPAddrFromAddrPort(r.addr())); err != nil {
		t.Fatal(err)
	}
	r.none(t)
	b.Flush()
	got := r.read(t, 2)
	if string(got[0]) != "held" || string(got[1]) != "also" {
		t.Fatalf("got %q", got)
	}
	// Closed: writes go straight out; Flush again is a no-op.
	b.Flush()
	if _, err := c.WriteToAddrPort([]byte("after"), r.addr()); err != nil {
		t.Fatal(err)
	}
	if got := r.read(t, 1); string(got[0]) != "after" {
		t.Fatalf("got %q", got[0])
	}
}

func TestBeginRefusals(t *testing.T) {
	g := NewGroup(true, quiet())
	r := newReceiver(t)
	a, b := g.NewBatch(), g.NewBatch()
	if a.Begin(netip.AddrPort{}) {
		t.Error("Begin of an invalid address accepted")
	}
	if !a.Begin(r.addr()) {
		t.Fatal("Begin refused")
	}
	if a.Begin(r.addr()) {
		t.Error("Begin of an open batch accepted")
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(r.addr().Addr().As16()), r.addr().Port())
	if b.Begin(mapped) {
		t.Error("a second batch for the same (IPv4-mapped) address accepted")
	}
	a.Flush()
	if !b.Begin(mapped) {
		t.Error("Begin refused after the first batch flushed")
	}
	b.Flush()
	if n := g.nopen.Load(); n != 0 || len(g.open) != 0 {
		t.Errorf("%d batches open (%d in the map) after Flush", n, len(g.open))
	}
}

func TestGSOFailureFallsBack(t *testing.T) {
	g := NewGroup(true, quiet())
	fails := 0
	g.sendGSO = func(*net.UDPConn, []byte, int, netip.AddrPort) error {
		fails++
		return errors.New("no offload")
	}
	c := newConn(t, g)
	r := newReceiver(t)
	b := g.NewBatch()
	want := datagrams(sizes(3, 1000)...)
	for i := 0; i < maxGSOFailures+2; i++ {
		if !b.Begin(r.addr()) {
			t.Fatal("Begin refused")
		}
		for _, d := range want {
			if _, err := c.WriteToAddrPort(d, r.addr()); err != nil {
				t.Fatal(err)
			}
		}
		b.Flush()
		got := r.read(t, len(want))
		for j := range want {
			if !bytes.Equal(got[j], want[j]) {
				t.Fatalf("round %d datagram %d differs", i, j)
			}
		}
	}
	if fails != maxGSOFailures {
		t.Errorf("%d GSO attempts, want %d (then off)", fails, maxGSOFailures)
	}
	if st := g.Stats(); st.GSO || st.GSOSends != 0 || st.Sends != uint64(3*(maxGSOFailures+2)) {
		t.Errorf("stats %+v", st)
	}
}

func TestConcurrentWritersToOneBatch(t *testing.T) {
	g := NewGroup(true, quiet())
	c := newConn(t, g)
	r := newReceiver(t)
	const writers, each = 4, 50
	b := g.NewBatch()
	if !b.Begin(r.addr()) {
		t.Fatal("Begin refused")
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := c.WriteToAddrPort([]byte{byte(w), byte(i)}, r.addr()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.Flush()
	got := r.read(t, writers*each)
	next := make([]int, writers)
	for _, d := range got {
		if len(d) != 2 || int(d[1]) != next[d[0]] {
			t.Fatalf("datagram %v out of order (writer expected %d)", d, next[d[0]])
		}
		next[d[0]]++
	}
}

func TestNetWrapsListenUDP(t *testing.T) {
	g := NewGroup(true, quiet())
	n, err := g.Net()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, ok := pc.(*Conn)
	if !ok {
		t.Fatalf("ListenUDP returned %T, want *Conn", pc)
	}
	r := newReceiver(t)
	b := g.NewBatch()
	b.Begin(r.addr())
	if _, err := c.WriteToAddrPort([]byte("x"), r.addr()); err != nil {
		t.Fatal(err)
	}
	r.none(t)
	b.Flush()
	if got := r.read(t, 1); string(got[0]) != "x" {
		t.Fatalf("got %q", got[0])
	}
}
