package whep

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

func TestFirstPacketOnce(t *testing.T) {
	calls := 0
	i, _ := firstPacketFactory{onFirst: func() { calls++ }}.NewInterceptor("")
	w := i.BindLocalStream(&interceptor.StreamInfo{}, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
		return 1, nil
	}))
	for range 3 {
		if n, err := w.Write(&rtp.Header{}, nil, nil); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if calls != 1 {
		t.Fatalf("onFirst called %d times", calls)
	}
}

// BenchmarkFirstPacketWrite is the per-packet, per-viewer cost of the
// interceptor once the first packet is out: no allocation.
func BenchmarkFirstPacketWrite(b *testing.B) {
	i, _ := firstPacketFactory{onFirst: func() {}}.NewInterceptor("")
	w := i.BindLocalStream(&interceptor.StreamInfo{}, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
		return 0, nil
	}))
	h, payload := &rtp.Header{}, make([]byte, 1200)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.Write(h, payload, nil)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = w.Write(h, payload, nil) }); allocs != 0 {
		b.Fatalf("%v allocations per packet", allocs)
	}
}
