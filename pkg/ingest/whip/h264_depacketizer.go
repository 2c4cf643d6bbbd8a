package whip

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// NAL unit types of RFC 6184's packetization mode 1 (non-interleaved).
const (
	naluSTAPA = 24
	naluFUA   = 28
)

// accessUnit is one H.264 access unit: Annex-B, 4-byte start codes, no AUD,
// SPS and PPS before every IDR (the form tsframes produces).
type accessUnit struct {
	data []byte
	key  bool
	ts   uint32 // RTP timestamp
}

// h264Depacketizer turns the RTP payloads of one H.264 stream (RFC 6184,
// packetization mode 1: single NAL unit packets, STAP-A, FU-A), handed over
// in sequence order, into access units. The marker bit or a change of
// timestamp ends an access unit. After a loss, or a packet it cannot
// decode, it drops what follows up to the next IDR and says so (needKey),
// so that its owner asks the publisher for a keyframe.
type h264Depacketizer struct {
	nalus [][]byte // the NAL units of the current access unit
	size  int      // their Annex-B size
	ts    uint32   // timestamp of the current access unit
	open  bool     // an access unit is being collected
	fu    []byte   // the FU-A NAL unit being reassembled; nil when none

	broken  bool // the current access unit lost a part: dropped at its end
	waitKey bool // drop access units up to the next IDR
	keyed   bool // an IDR was delivered

	sps, pps   []byte
	spsChanged bool // a new SPS since the last call of takeSPSChange
	errs       uint64
}

// push adds one packet's payload; lost says that packets before it (since
// the previous push) were lost. It appends the access units it completes
// to dst and returns it.
func (d *h264Depacketizer) push(dst []accessUnit, payload []byte, ts uint32, marker, lost bool) []accessUnit {
	if lost {
		d.loss()
	}
	if d.open && ts != d.ts {
		dst = d.flush(dst)
		d.broken = lost
	}
	if !d.open {
		d.open, d.ts = true, ts
	}
	if err := d.payload(payload); err != nil {
		d.errs++
		d.fu = nil
		d.broken = true
	}
	if marker {
		dst = d.flush(dst)
	}
	return dst
}

// loss marks the current access unit and the next one broken: the lost
// packets may have belonged to either.
func (d *h264Depacketizer) loss() {
	d.fu = nil
	d.broken = true
	d.waitKey = true
}

// needKey reports whether the depacketizer waits for an IDR (at the start,
// and after a loss or a bad packet).
func (d *h264Depacketizer) needKey() bool { return d.waitKey || !d.keyed }

// payload adds the NAL units of one RTP payload to the current access unit.
func (d *h264Depacketizer) payload(p []byte) error {
	if len(p) == 0 {
		return errEmptyPayload
	}
	switch typ := p[0] & 0x1F; {
	case typ >= 1 && typ <= 23:
		return d.nalu(p)
	case typ == naluSTAPA:
		d.fu = nil
		for rest := p[1:]; len(rest) > 0; {
			if len(rest) < 2 {
				return fmt.Errorf("%w: STAP-A: %d trailing bytes", errBadPayload, len(rest))
			}
			n := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if n == 0 || n > len(rest) {
				return fmt.Errorf("%w: STAP-A: NAL unit of %d bytes, %d left", errBadPayload, n, len(rest))
			}
			if err := d.nalu(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	case typ == naluFUA:
		return d.fragment(p)
	default:
		return fmt.Errorf("%w: NAL unit type %d (packetization mode 1 carries 1-23, STAP-A and FU-A)", errBadPayload, typ)
	}
}

// fragment adds one FU-A packet.
func (d *h264Depacketizer) fragment(p []byte) error {
	if len(p) < 3 {
		return fmt.Errorf("%w: FU-A of %d bytes", errBadPayload, len(p))
	}
	start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
	switch {
	case start:
		d.fu = append(make([]byte, 0, 4*len(p)), p[0]&0xE0|p[1]&0x1F)
	case d.fu == nil:
		// Its start was lost (and counted as such) or never sent.
		return fmt.Errorf("%w: FU-A without its start", errBadPayload)
	}
	if len(d.fu)+len(p)-2 > maxAccessUnitSize {
		return fmt.Errorf("%w: NAL unit over %d bytes", errLimit, maxAccessUnitSize)
	}
	d.fu = append(d.fu, p[2:]...)
	if !end {
		return nil
	}
	nalu := d.fu
	d.fu = nil
	return d.nalu(nalu)
}

// nalu adds one complete NAL unit to the current access unit; SPS and PPS
// are kept aside (and put before every IDR), AUDs dropped.
func (d *h264Depacketizer) nalu(n []byte) error {
	switch h264.NALUType(n[0] & 0x1F) {
	case h264.NALUTypeSPS:
		if len(n) >= 4 && !bytes.Equal(n, d.sps) {
			d.sps = bytes.Clone(n)
			d.spsChanged = true
		}
		return nil
	case h264.NALUTypePPS:
		if !bytes.Equal(n, d.pps) {
			d.pps = bytes.Clone(n)
		}
		return nil
	case h264.NALUTypeAccessUnitDelimiter:
		return nil
	}
	if len(d.nalus) >= maxNALUsPerAccessUnit {
		return fmt.Errorf("%w: more than %d NAL units in an access unit", errLimit, maxNALUsPerAccessUnit)
	}
	if d.size+4+len(n) > maxAccessUnitSize {
		return fmt.Errorf("%w: access unit over %d bytes", errLimit, maxAccessUnitSize)
	}
	d.nalus = append(d.nalus, bytes.Clone(n))
	d.size += 4 + len(n)
	return nil
}

// flush ends the current access unit: appended to dst unless it is broken,
// has no picture, or cannot be decoded (no IDR with SPS and PPS since the
// start or the last loss).
func (d *h264Depacketizer) flush(dst []accessUnit) []accessUnit {
	nalus, size, ts, broken := d.nalus, d.size, d.ts, d.broken
	d.nalus, d.size, d.open, d.broken, d.fu = d.nalus[:0], 0, false, false, nil
	if broken {
		d.waitKey = true
		return dst
	}
	key, picture := false, false
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeIDR:
			key, picture = true, true
		case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA:
			picture = true
		}
	}
	switch {
	case !picture:
		return dst
	case key && (d.sps == nil || d.pps == nil):
		d.waitKey = true
		return dst
	case !key && (d.waitKey || !d.keyed):
		return dst
	}
	if key {
		d.keyed, d.waitKey = true, false
		size += 8 + len(d.sps) + len(d.pps)
	}
	data := make([]byte, 0, size)
	if key {
		data = appendNALU(appendNALU(data, d.sps), d.pps)
	}
	for _, n := range nalus {
		data = appendNALU(data, n)
	}
	return append(dst, accessUnit{data: data, key: key, ts: ts})
}

// takeSPSChange reports whether a new SPS arrived since the last call.
func (d *h264Depacketizer) takeSPSChange() bool {
	c := d.spsChanged
	d.spsChanged = false
	return c
}

// profileLevelID is the SDP profile-level-id of the current SPS, "" when
// there is none.
func (d *h264Depacketizer) profileLevelID() string {
	if len(d.sps) < 4 {
		return ""
	}
	return hex.EncodeToString(d.sps[1:4])
}

func appendNALU(b, nalu []byte) []byte {
	return append(append(b, 0, 0, 0, 1), nalu...)
}
