package ingest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/tstest"
)

// sendDatagrams sends data to l in 1316-byte datagrams (7 TS packets),
// with at most 32 datagrams in flight: it waits for l to have read them, so
// that a busy machine does not overflow the loopback socket buffer.
func sendDatagrams(t *testing.T, l *UDPListener, data []byte) {
	t.Helper()
	tstest.SendDatagrams(t, l.Addr().String(), l.Datagrams, data, testDeadline)
}

func startUDP(t *testing.T, ps *Publications, idle time.Duration) *UDPListener {
	t.Helper()
	l, err := ListenUDP(UDPConfig{Stream: "udpcam", Addr: "127.0.0.1:0", Idle: idle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ps) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testDeadline):
			t.Error("Serve did not return")
		}
	})
	return l
}

// waitClosed waits until p's publication has ended.
func waitClosed(t *testing.T, p *fakePub) {
	t.Helper()
	select {
	case <-p.closedCh:
	case <-time.After(testDeadline):
		t.Fatal("publication did not end")
	}
}

// waitReceived waits until l has read n datagrams in all.
func waitReceived(t *testing.T, l *UDPListener, n uint64) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for l.Datagrams() < n {
		if time.Now().After(deadline) {
			t.Fatalf("listener read %d datagrams, want %d", l.Datagrams(), n)
		}
		time.Sleep(2 * time.Millisecond) // polling a counter, with a deadline
	}
}

func TestUDPIngest(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	f := newFakeFactory()
	ps, m := newTestPublications(t, f)
	l := startUDP(t, ps, time.Second)

	sendDatagrams(t, l, data)
	p1 := f.nextPub(t)
	waitClosed(t, p1) // the idle gap ends the publication
	_, frames, _, _ := p1.snapshot()
	tstest.SameFramesPerTrack(t, frames, want.Frames)
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("udpcam")); got != float64(len(data)) {
		t.Fatalf("bytes %v, want %d", got, len(data))
	}

	// Datagrams after the gap start a new publication with a new epoch.
	sendDatagrams(t, l, data)
	p2 := f.nextPub(t)
	waitClosed(t, p2)
	if p2.epoch <= p1.epoch {
		t.Fatalf("epoch %d after %d", p2.epoch, p1.epoch)
	}
	_, frames, _, _ = p2.snapshot()
	tstest.SameFramesPerTrack(t, frames, want.Frames)
}

func TestUDPTakenOverIsMuted(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	l := startUDP(t, ps, 2*time.Second)
	ctx := t.Context()

	sendDatagrams(t, l, data[:len(data)/2])
	p1 := f.nextPub(t)
	<-p1.got

	// Another publisher takes the stream over while the UDP sender goes on.
	src := newBlockingSource(data)
	done := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(ctx, "udpcam", Source{Kind: "other", Body: src, Interrupt: src.interrupt})
		done <- err
	}()
	p2 := f.nextPub(t)
	waitClosed(t, p1)
	sendDatagrams(t, l, data[len(data)/2:])
	datagrams := func(n int) uint64 { return uint64((n + 1315) / 1316) }
	waitReceived(t, l, datagrams(len(data)/2)+datagrams(len(data)-len(data)/2))
	// The listener is muted: no publication takes the stream back, the other
	// publisher stays active.
	if s := ps.Live(); len(s) != 1 || s[0].Epoch != p2.epoch {
		t.Fatalf("publications %+v, want only the other publisher", s)
	}
	select {
	case p := <-f.opened:
		t.Fatalf("UDP opened a publisher (epoch %d) while muted", p.epoch)
	default:
	}
	src.interrupt()
	if err := <-done; err == nil {
		t.Fatal("interrupted source: want an error")
	}
}

func TestUDPListenFails(t *testing.T) {
	l, err := ListenUDP(UDPConfig{Stream: "a", Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := ListenUDP(UDPConfig{Stream: "b", Addr: l.Addr().String()}); err == nil {
		t.Fatal("second bind of the same address: want error")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	if err := l.Serve(context.Background(), ps); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}
