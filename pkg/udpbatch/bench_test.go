package udpbatch

import (
	"net"
	"testing"
)

// BenchmarkFrame sends one access unit to a loopback receiver per
// operation: one sendto per datagram, a batch with GSO, a batch without.
// 1slice: 8 datagrams of 1200 bytes and one of 517 (a 2 Mb/s 30 fps
// frame); 2slices: the same frame in two slices (x264 with 2 threads),
// hence two GSO runs. (Tried and dropped: sendmmsg of the runs of a batch,
// no faster on loopback, where the per-datagram cost is the stack's.)
func BenchmarkFrame(b *testing.B) {
	for _, shape := range []struct {
		name  string
		sizes []int
	}{
		{"1slice", sizes(8, 1200, 517)},
		{"2slices", append(sizes(3, 1200, 700), sizes(3, 1200, 650)...)},
		{"audio5", sizes(5, 190)},
	} {
		benchmarkFrame(b, shape.name, datagrams(shape.sizes...))
	}
}

func benchmarkFrame(b *testing.B, shape string, frame [][]byte) {
	total := 0
	for _, d := range frame {
		total += len(d)
	}
	for _, mode := range []string{"direct", "batch-gso", "batch-nogso"} {
		b.Run(shape+"/"+mode, func(b *testing.B) {
			g := NewGroup(mode == "batch-gso", quiet())
			sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			c := g.Wrap(sock)
			defer c.Close()
			rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			_ = rx.SetReadBuffer(8 << 20)
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 65536)
				for {
					if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
						return
					}
				}
			}()
			dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			bt := g.NewBatch()
			b.SetBytes(int64(total))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batched := mode != "direct" && bt.Begin(dst)
				for _, d := range frame {
					if _, err := c.WriteToAddrPort(d, dst); err != nil {
						b.Fatal(err)
					}
				}
				if batched {
					bt.Flush()
				}
			}
			b.StopTimer()
			rx.Close()
			<-done
		})
	}
}
