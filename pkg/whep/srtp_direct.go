package whep

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/srtpout"
)

// directSRTP is a session's fast path for media (Config.DirectSRTP): the
// innermost interceptor of its PeerConnection, under the sender reports and
// the first-packet hook, so those still see every packet. Once DTLS is
// connected (start) it encrypts each RTP packet itself with the session's
// SRTP keys, straight into the session's UDP batch when the path is direct
// UDP (else to the socket, else through ICE for TCP and TURN paths),
// instead of handing it to pion's SRTP session, mux and candidate pair.
// Before start, or when the keys cannot be had, packets take pion's path.
//
// Every packet of the session's SSRCs goes through the one SRTP context
// once it exists, so its rollover counters follow all sequence numbers
// whatever the path.
type directSRTP struct {
	log  *slog.Logger
	path *pathBatch // nil without UDP batching

	mu  sync.Mutex         // orders the packets through enc
	enc *srtpout.Encrypter // set once by start
	on  atomic.Bool        // enc is set
	buf []byte             // a packet sent alone
	pkt struct {           // the packet fill encrypts (under mu)
		h       *rtp.Header
		payload []byte
		err     error
	}
	fill func(dst []byte) bool

	// sent counts the packets sent by the fast path: batched, straight to
	// the socket, through ICE.
	batched, direct, viaICE atomic.Uint64
}

func newDirectSRTP(logger *slog.Logger) *directSRTP {
	d := &directSRTP{log: logger}
	d.fill = d.encryptPending
	return d
}

// useBatch makes the fast path write into pb's batch and socket.
func (d *directSRTP) useBatch(pb *pathBatch) { d.path = pb }

// start takes the SRTP keys of pc's connected DTLS transport. On error the
// session keeps pion's path (logged).
func (d *directSRTP) start(pc *webrtc.PeerConnection) {
	local := pc.CurrentLocalDescription()
	if local == nil {
		d.log.Warn("direct SRTP off for this session: no local description")
		return
	}
	enc, err := srtpout.FromDTLS(pc.SCTP().Transport(), srtpout.IsDTLSClient(local.SDP))
	if err != nil {
		d.log.Warn("direct SRTP off for this session; pion writes the media", "err", err)
		return
	}
	d.mu.Lock()
	d.enc = enc
	d.mu.Unlock()
	d.on.Store(true)
	d.log.Debug("direct SRTP on", "profile", enc.Profile().String())
}

// NewInterceptor implements interceptor.Factory: the session's one
// interceptor (a PeerConnection asks once).
func (d *directSRTP) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &directInterceptor{d: d}, nil
}

type directInterceptor struct {
	interceptor.NoOp
	d *directSRTP
}

// BindLocalStream sends the stream's packets by the fast path once it is
// on, else through next (pion's SRTP session).
func (i *directInterceptor) BindLocalStream(_ *interceptor.StreamInfo, next interceptor.RTPWriter) interceptor.RTPWriter {
	d := i.d
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if !d.on.Load() {
			return next.Write(h, payload, a)
		}
		return d.write(h, payload)
	})
}

// write encrypts and sends one packet; it returns the size of the SRTP
// packet.
func (d *directSRTP) write(h *rtp.Header, payload []byte) (int, error) {
	if len(h.CSRC) > 0 {
		return 0, fmt.Errorf("whep: direct SRTP: packet with CSRCs")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.enc.Size(h, payload)
	var p *udpPath
	if d.path != nil {
		p = d.path.current()
	}
	if p != nil && p.conn != nil {
		d.pkt.h, d.pkt.payload, d.pkt.err = h, payload, nil
		ok := d.path.b.AppendFunc(p.conn, n, d.fill)
		d.pkt.h, d.pkt.payload = nil, nil
		if ok {
			if d.pkt.err != nil {
				return 0, d.pkt.err
			}
			d.batched.Add(1)
			return n, nil
		}
	}
	if cap(d.buf) < n {
		d.buf = make([]byte, n, max(n, 1500))
	}
	buf := d.buf[:n]
	if err := d.enc.EncryptTo(buf, h, payload); err != nil {
		return 0, err
	}
	if p != nil && p.conn != nil {
		if err := p.conn.Send(buf, p.remote); err != nil {
			return 0, fmt.Errorf("whep: direct SRTP: %w", err)
		}
		d.direct.Add(1)
		return n, nil
	}
	if err := d.enc.Send(buf); err != nil {
		return 0, err
	}
	d.viaICE.Add(1)
	return n, nil
}

// encryptPending is the batch's fill: it encrypts d.pkt into dst. The
// caller holds d.mu.
func (d *directSRTP) encryptPending(dst []byte) bool {
	d.pkt.err = d.enc.EncryptTo(dst, d.pkt.h, d.pkt.payload)
	return d.pkt.err == nil
}
