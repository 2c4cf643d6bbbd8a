package udpbatch

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

// TestAppendFuncJoinsTheRun fills datagrams in place among ones written
// through the Conn: all leave in write order, in as few GSO sends as their
// sizes allow; a datagram whose fill fails is left out, and the run goes on
// as if it had not been added.
func TestAppendFuncJoinsTheRun(t *testing.T) {
	g := NewGroup(true, quiet())
	c := newConn(t, g)
	r := newReceiver(t)
	want := datagrams(1200, 1200, 1200, 1200, 517)
	b := g.NewBatch()
	fill := func(d []byte) func([]byte) bool {
		return func(dst []byte) bool { return copy(dst, d) == len(dst) }
	}
	// Closed: refused, fill not called.
	if b.AppendFunc(c, 1200, func([]byte) bool { t.Fatal("fill called on a closed batch"); return false }) {
		t.Fatal("AppendFunc on a closed batch accepted")
	}
	if !b.Begin(r.addr()) {
		t.Fatal("Begin refused")
	}
	if !b.AppendFunc(c, 1200, fill(want[0])) || !b.AppendFunc(c, 1200, fill(want[1])) {
		t.Fatal("AppendFunc refused")
	}
	if _, err := c.WriteToAddrPort(want[2], r.addr()); err != nil {
		t.Fatal(err)
	}
	// Dropped: a shorter datagram whose fill fails does not end the run.
	if !b.AppendFunc(c, 700, func([]byte) bool { return false }) {
		t.Fatal("AppendFunc refused")
	}
	if !b.AppendFunc(c, 1200, fill(want[3])) || !b.AppendFunc(c, 517, fill(want[4])) {
		t.Fatal("AppendFunc refused")
	}
	if b.AppendFunc(c, maxBytes+1, fill(nil)) || b.AppendFunc(c, 0, fill(nil)) {
		t.Fatal("AppendFunc accepted a size beyond the limits")
	}
	b.Flush()
	got := r.read(t, len(want))
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes starting %d", i, len(got[i]), got[i][0], len(want[i]), want[i][0])
		}
	}
	r.none(t)
	if st := g.Stats(); st.Datagrams != 5 || st.Sends != 1 || st.GSOSends != 1 {
		t.Fatalf("stats %+v, want 5 datagrams in one GSO send", st)
	}
}

func TestConnForFindsTheLocalSocket(t *testing.T) {
	g := NewGroup(true, quiet())
	a := newConn(t, g)
	addrOf := func(c *Conn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
	public := netip.MustParseAddrPort("203.0.113.7:8189")
	// One socket: it is the one, even under a public address.
	if g.ConnFor(addrOf(a)) != a || g.ConnFor(public) != a {
		t.Fatal("the only socket not found")
	}
	b := newConn(t, g)
	if g.ConnFor(addrOf(a)) != a || g.ConnFor(addrOf(b)) != b {
		t.Fatal("sockets not found by their addresses")
	}
	if c := g.ConnFor(public); c != nil {
		t.Fatalf("an unknown address among two sockets gave %v", c.LocalAddr())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if g.ConnFor(addrOf(b)) != a {
		t.Fatal("a closed socket still found")
	}
}
