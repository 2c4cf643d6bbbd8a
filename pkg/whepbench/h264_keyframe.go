package whepbench

// H.264 NAL unit types looked at.
const (
	nalIDR   = 5
	nalSPS   = 7
	nalPPS   = 8
	nalSTAPA = 24
	nalFUA   = 28
)

// keyframeDetector follows the H.264 RTP payloads (RFC 6184,
// packetization-mode 1) of one track and tells when an access unit ends
// (marker bit) and whether it was a complete, decodable IDR access unit:
// an IDR slice in it, SPS and PPS seen (in it or before), no sequence gap
// from its first packet to its marker packet, every FU-A run complete.
// It keeps no payload and allocates nothing.
type keyframeDetector struct {
	haveSeq bool
	lastSeq uint16

	clean    bool // the access unit so far has no gap or broken fragment run
	idr      bool // the access unit has an IDR slice
	fuActive bool // inside a FU-A run
	sps, pps bool // seen so far on the track
}

func newKeyframeDetector() keyframeDetector { return keyframeDetector{clean: true} }

// push takes the next packet. end is true when the packet ends an access
// unit (marker), key when that access unit was a complete IDR access unit.
func (d *keyframeDetector) push(seq uint16, marker bool, payload []byte) (end, key bool) {
	if d.haveSeq && seq != d.lastSeq+1 {
		d.clean = false
		d.fuActive = false
	}
	d.haveSeq, d.lastSeq = true, seq
	d.payload(payload)
	if !marker {
		return false, false
	}
	key = d.clean && d.idr && !d.fuActive && d.sps && d.pps
	d.clean, d.idr, d.fuActive = true, false, false
	return true, key
}

func (d *keyframeDetector) payload(p []byte) {
	if len(p) == 0 {
		d.clean = false
		return
	}
	switch typ := p[0] & 0x1f; typ {
	case nalSTAPA:
		for rest := p[1:]; len(rest) > 0; {
			if len(rest) < 3 {
				d.clean = false
				return
			}
			size := int(rest[0])<<8 | int(rest[1])
			if size == 0 || len(rest) < 2+size {
				d.clean = false
				return
			}
			d.nal(rest[2] & 0x1f)
			rest = rest[2+size:]
		}
	case nalFUA:
		if len(p) < 2 {
			d.clean = false
			return
		}
		start, stop := p[1]&0x80 != 0, p[1]&0x40 != 0
		switch {
		case start && d.fuActive: // the previous run never ended
			d.clean = false
		case !start && !d.fuActive: // a run without its start
			d.clean = false
		}
		if start {
			d.nal(p[1] & 0x1f)
		}
		d.fuActive = !stop && (start || d.fuActive)
	default:
		if typ >= 1 && typ <= 23 {
			d.nal(typ)
		}
	}
}

func (d *keyframeDetector) nal(typ byte) {
	switch typ {
	case nalIDR:
		d.idr = true
	case nalSPS:
		d.sps = true
	case nalPPS:
		d.pps = true
	}
}
