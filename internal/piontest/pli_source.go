package piontest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// PLISource sends a Publisher's video as an encoder without a keyframe
// interval does (a browser, OBS with keyframe interval 0): 30 frames a
// second, a keyframe only after the receiver asked for one (RTCP PLI or
// FIR), delta frames otherwise.
type PLISource struct {
	// PLIs counts the keyframe requests received; Keyframes the keyframes
	// sent.
	PLIs, Keyframes atomic.Int64

	asked chan struct{} // a request since the last keyframe
	got   chan struct{} // a request arrived (for WaitPLIs)
	stop  chan struct{}
	done  sync.WaitGroup
}

// StartPLISource starts sending key and deltas (H.264 access units, the
// deltas in turn) on p.Video until the test ends (p must be connected, or
// become so). The first frame is a delta: nothing is sent as a keyframe
// before a request.
func (p *Publisher) StartPLISource(t testing.TB, key []byte, deltas [][]byte) *PLISource {
	t.Helper()
	var sender *webrtc.RTPSender
	for _, s := range p.PC.GetSenders() {
		if tr := s.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			sender = s
		}
	}
	if sender == nil || len(deltas) == 0 {
		t.Fatal("piontest: StartPLISource: no video sender or no delta frames")
	}
	s := &PLISource{asked: make(chan struct{}, 1), got: make(chan struct{}, 1), stop: make(chan struct{})}
	s.done.Add(2)
	go func() {
		defer s.done.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return // the PeerConnection is closed
			}
			for _, pkt := range pkts {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					s.PLIs.Add(1)
					for _, ch := range []chan struct{}{s.asked, s.got} {
						select {
						case ch <- struct{}{}:
						default:
						}
					}
				}
			}
		}
	}()
	go func() {
		defer s.done.Done()
		const frame = time.Second / 30
		tick := time.NewTicker(frame)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			data := deltas[i%len(deltas)]
			select {
			case <-s.asked:
				data = key
				s.Keyframes.Add(1)
			default:
				i++
			}
			if err := p.Video.WriteSample(media.Sample{Data: data, Duration: frame}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		_ = p.PC.Close() // ends ReadRTCP
		s.done.Wait()
	})
	return s
}

// WaitPLIs waits until at least n requests arrived, for at most timeout.
func (s *PLISource) WaitPLIs(t testing.TB, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for s.PLIs.Load() < n {
		select {
		case <-s.got:
		case <-deadline.C:
			t.Fatalf("piontest: %d keyframe requests received in %s, want %d", s.PLIs.Load(), timeout, n)
		}
	}
}
