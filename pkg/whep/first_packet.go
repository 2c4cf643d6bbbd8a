package whep

import (
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// firstPacketFactory makes the interceptor that tells a session when its
// first RTP packet has gone out (time to first frame). After that its
// per-packet cost is one atomic load.
type firstPacketFactory struct{ onFirst func() }

func (f firstPacketFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &firstPacketInterceptor{onFirst: f.onFirst}, nil
}

type firstPacketInterceptor struct {
	interceptor.NoOp
	seen    atomic.Bool
	onFirst func()
}

func (i *firstPacketInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := w.Write(h, payload, a)
		if err == nil && !i.seen.Load() && i.seen.CompareAndSwap(false, true) {
			i.onFirst()
		}
		return n, err
	})
}
