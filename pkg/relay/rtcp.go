package relay

import (
	"math/bits"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// rtcpReadSize is the read buffer of an RTCP reader: one compound packet.
const rtcpReadSize = 1500

// BindSenders starts reading the RTCP of the senders of the viewer's tracks
// (nil when there is none): NACKs are answered from the stream's shared
// buffer, PLI and FIR are counted (the encoder cannot be asked for a
// keyframe), receiver reports give loss, jitter and RTT in Stats. Reading
// RTCP is also what lets pion's interceptors see it. Each reader is one
// goroutine that ends when its sender stops (the PeerConnection closes), not
// at Close. Call it once, after adding the tracks.
func (v *Viewer) BindSenders(video, audio *webrtc.RTPSender) {
	for _, s := range []*webrtc.RTPSender{video, audio} {
		if s != nil {
			go v.readRTCP(s)
		}
	}
}

func (v *Viewer) readRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, rtcpReadSize)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		v.handleRTCP(pkts, time.Now())
	}
}

// writerFor returns the track writer whose bound SSRC is ssrc, and whether
// it is the video one.
func (v *Viewer) writerFor(ssrc uint32) (*trackWriter, bool) {
	for _, w := range []*trackWriter{v.video, v.audio} {
		if w == nil {
			continue
		}
		if b := w.t.current.Load(); b != nil && b.ssrc == ssrc {
			return w, w == v.video
		}
	}
	return nil, false
}

// handleRTCP applies the RTCP packets received at now.
func (v *Viewer) handleRTCP(pkts []rtcp.Packet, now time.Time) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			w, video := v.writerFor(p.MediaSSRC)
			if w == nil {
				continue
			}
			var n uint64
			for _, pair := range p.Nacks {
				n += 1 + uint64(bits.OnesCount16(uint16(pair.LostPackets)))
			}
			w.nackedPackets.Add(n)
			select {
			case v.nacks <- nackRequest{video: video, pairs: p.Nacks}:
			default:
				w.missedPackets.Add(n)
			}
		case *rtcp.PictureLossIndication:
			if w, _ := v.writerFor(p.MediaSSRC); w != nil {
				w.plis.Add(1)
			}
		case *rtcp.FullIntraRequest:
			for _, e := range p.FIR {
				if w, _ := v.writerFor(e.SSRC); w != nil {
					w.firs.Add(1)
				}
			}
		case *rtcp.ReceiverReport:
			v.applyReports(p.Reports, now)
		case *rtcp.SenderReport:
			v.applyReports(p.Reports, now)
		}
	}
}

// applyReports records the reception reports about our tracks.
func (v *Viewer) applyReports(reports []rtcp.ReceptionReport, now time.Time) {
	for _, r := range reports {
		w, _ := v.writerFor(r.SSRC)
		if w == nil {
			continue
		}
		w.fractionLost.Store(uint32(r.FractionLost))
		w.packetsLost.Store(int64(r.TotalLost))
		w.jitter.Store(r.Jitter)
		if r.LastSenderReport == 0 {
			continue
		}
		// RFC 3550 6.4.1: RTT = A - LSR - DLSR, in 1/65536 s.
		rtt := ntpMiddle32(now) - r.LastSenderReport - r.Delay
		if rtt < 1<<31 {
			v.rtt.Store(int64(uint64(rtt) * uint64(time.Second) >> 16))
		}
	}
}

// ntpMiddle32 is the middle 32 bits of the NTP timestamp of t.
func ntpMiddle32(t time.Time) uint32 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}
