package tstest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestDemuxFixture(t *testing.T) {
	d := Demux(t, Read(t, "av.ts"))
	video, audio := len(d.Kind(tsframes.KindVideo)), len(d.Kind(tsframes.KindAudio))
	// testdata/av.ts.expect: 180 video frames, 301 Opus packets.
	if video != 180 || audio != 301 || len(d.Announcements) != 1 {
		t.Fatalf("av.ts: %d video, %d audio, %d announcements", video, audio, len(d.Announcements))
	}
	// Events: the announcement first, then every frame in order.
	if len(d.Events) != 1+len(d.Frames) || d.Events[0].Announcement == nil {
		t.Fatalf("%d events for %d frames, first %+v", len(d.Events), len(d.Frames), d.Events[0])
	}
	for i, e := range d.Events[1:] {
		if e.Frame == nil || e.Frame.PTS != d.Frames[i].PTS || e.Frame.Kind != d.Frames[i].Kind {
			t.Fatalf("event %d: %+v, want frame %d", i+1, e, i)
		}
	}
}

func TestSendDatagrams(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var got []int
	var read atomic.Uint64
	done := make(chan struct{})
	data := make([]byte, 100*188+5)
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		total := 0
		for total < len(data) {
			n, err := rx.Read(buf)
			if err != nil {
				return
			}
			got = append(got, n)
			total += n
			read.Add(1)
		}
	}()
	SendDatagrams(t, rx.LocalAddr().String(), read.Load, data, 10*time.Second)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not get every byte")
	}
	want := []int{}
	for left := len(data); left > 0; left -= 7 * 188 {
		want = append(want, min(left, 7*188))
	}
	if len(got) != len(want) {
		t.Fatalf("datagrams %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("datagram %d: %d bytes, want %d", i, got[i], want[i])
		}
	}
}
