package whepbench

import (
	"bytes"
	"fmt"
	"time"
)

const (
	tsPacketSize     = 188
	tsSync           = 0x47
	streamTypeH264   = 0x1b
	pts33            = int64(1) << 33
	maxScheduleBurst = 64 << 20 // a burst (one PES interval) larger than this is not a live stream
)

// Schedule is an MPEG-TS file cut into bursts for a real-time push. A burst
// starts at each PES start (payload_unit_start_indicator) of the pacing PID
// (the first H.264 stream of the first PMT, else its first stream) and runs
// to the next; it is due at its PES's DTS (PTS when there is no DTS) minus
// the first one, on the 90 kHz clock, unwrapped at 2^33 and never earlier
// than the burst before. The packets before the first PES start of the
// pacing PID (PAT, PMT, ...) go with the first burst, at 0.
//
// This is what a muxer fed by a live encoder writes: each video access unit
// with the audio and tables between it and the next, at its time.
type Schedule struct {
	data   []byte
	bursts []burst
	aus    []accessUnit
	// VideoPID is the H.264 PID (0 when the file has none).
	VideoPID uint16
	// Duration is the due time of the last burst.
	Duration time.Duration
}

type burst struct {
	off, end int // bytes of data
	at       time.Duration
}

// accessUnit is one PES of the video PID.
type accessUnit struct {
	pts  int64 // unwrapped, 90 kHz
	key  bool  // holds an IDR slice
	last int   // burst holding its last packet
	next int   // burst starting with the next PES of the video PID; -1 at the end
}

// Bursts is the number of bursts.
func (s *Schedule) Bursts() int { return len(s.bursts) }

// Frames is the number of video access units (PES of the video PID);
// Keyframes those that hold an IDR slice.
func (s *Schedule) Frames() int { return len(s.aus) }

// Keyframes counts the access units with an IDR slice.
func (s *Schedule) Keyframes() int {
	n := 0
	for _, a := range s.aus {
		if a.key {
			n++
		}
	}
	return n
}

// Bytes is the size of the file's whole packets.
func (s *Schedule) Bytes() int { return len(s.data) }

// Bitrate is the file's bits per second over its duration.
func (s *Schedule) Bitrate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(len(s.data)) * 8 / s.Duration.Seconds()
}

// NewSchedule cuts data, an MPEG-TS file, into bursts. It returns ErrTS when
// the file is not 188-byte packets starting with a sync byte, has no PAT or
// PMT, or no PES with a timestamp on the pacing PID. A partial packet at the
// end is ignored. The Schedule keeps data.
func NewSchedule(data []byte) (*Schedule, error) {
	data = data[:len(data)-len(data)%tsPacketSize]
	n := len(data) / tsPacketSize
	if n == 0 {
		return nil, fmt.Errorf("%w: no whole 188-byte packet", ErrTS)
	}
	for i := range n {
		if data[i*tsPacketSize] != tsSync {
			return nil, fmt.Errorf("%w: packet %d (offset %d) does not start with 0x47", ErrTS, i, i*tsPacketSize)
		}
	}
	video, pacing, err := findPIDs(data)
	if err != nil {
		return nil, err
	}
	s := &Schedule{data: data, VideoPID: video}
	s.bursts = []burst{{off: 0}}
	var (
		unwrap  unwrapper // pacing timestamps
		ptsWrap unwrapper // video PTS
		first   = int64(-1)
		prevAt  time.Duration
		auBuf   []byte // payload of the current access unit, for the IDR scan
		inAU    bool
		pesSkip int // PES header bytes still to skip in the current AU
	)
	closeAU := func(next int) {
		if !inAU {
			return
		}
		au := &s.aus[len(s.aus)-1]
		au.key = hasIDR(auBuf)
		au.next = next
	}
	for i := range n {
		off := i * tsPacketSize
		pkt := data[off : off+tsPacketSize]
		pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
		pusi := pkt[1]&0x40 != 0
		payload := tsPayload(pkt)
		var ts, pts int64
		var hasTS bool
		if pusi && (pid == pacing || pid == video) {
			pts, ts, hasTS = pesTimestamps(payload)
		}
		if pid == pacing && pusi && hasTS {
			t := unwrap.unwrap(ts)
			switch {
			case first < 0:
				first = t
			default:
				at := max(time.Duration(t-first)*time.Second/90000, prevAt)
				s.bursts[len(s.bursts)-1].end = off
				s.bursts = append(s.bursts, burst{off: off, at: at})
				prevAt = at
			}
		}
		cur := len(s.bursts) - 1
		if pid == video && video != 0 {
			switch {
			case pusi && hasTS:
				closeAU(cur)
				s.aus = append(s.aus, accessUnit{pts: ptsWrap.unwrap(pts), last: cur, next: -1})
				inAU, auBuf = true, auBuf[:0]
				pesSkip = pesHeaderLen(payload)
			case inAU:
				s.aus[len(s.aus)-1].last = cur
			}
			if inAU && len(payload) > 0 {
				skip := min(pesSkip, len(payload))
				pesSkip -= skip
				if len(auBuf) < maxScheduleBurst {
					auBuf = append(auBuf, payload[skip:]...)
				}
			}
		}
	}
	closeAU(-1)
	if first < 0 {
		return nil, fmt.Errorf("%w: no PES with a timestamp on PID %d", ErrTS, pacing)
	}
	s.bursts[len(s.bursts)-1].end = len(data)
	for _, b := range s.bursts {
		if b.end-b.off > maxScheduleBurst {
			return nil, fmt.Errorf("%w: %d bytes between two PES starts of PID %d", ErrTS, b.end-b.off, pacing)
		}
	}
	s.Duration = s.bursts[len(s.bursts)-1].at
	return s, nil
}

// unwrapper makes 33-bit timestamps continue past the wrap.
type unwrapper struct {
	started bool
	last    int64 // unwrapped
}

func (u *unwrapper) unwrap(ts int64) int64 {
	if !u.started {
		u.started, u.last = true, ts
		return ts
	}
	t := u.last - u.last%pts33 + ts
	switch {
	case t-u.last > pts33/2:
		t -= pts33
	case u.last-t > pts33/2:
		t += pts33
	}
	u.last = t
	return t
}

// tsPayload is the payload of a TS packet (after the adaptation field).
func tsPayload(pkt []byte) []byte {
	afc := pkt[3] >> 4 & 0x3
	switch afc {
	case 1:
		return pkt[4:]
	case 3:
		end := 5 + int(pkt[4])
		if end > len(pkt) {
			return nil
		}
		return pkt[end:]
	}
	return nil
}

// pesTimestamps reads PTS and DTS (DTS = PTS when absent) of a PES header
// at the start of payload.
func pesTimestamps(p []byte) (pts, dts int64, ok bool) {
	if len(p) < 14 || p[0] != 0 || p[1] != 0 || p[2] != 1 {
		return 0, 0, false
	}
	flags := p[7] >> 6
	if flags&2 == 0 {
		return 0, 0, false
	}
	pts = readTimestamp(p[9:14])
	dts = pts
	if flags == 3 && len(p) >= 19 {
		dts = readTimestamp(p[14:19])
	}
	return pts, dts, true
}

func readTimestamp(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// pesHeaderLen is the length of the PES header at the start of p.
func pesHeaderLen(p []byte) int {
	if len(p) < 9 {
		return len(p)
	}
	return 9 + int(p[8])
}

// hasIDR tells whether Annex-B data holds an IDR slice NAL unit.
func hasIDR(b []byte) bool {
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 || i+3 >= len(b) {
			return false
		}
		if b[i+3]&0x1f == nalIDR {
			return true
		}
		b = b[i+3:]
	}
}

// findPIDs reads the first PAT and the first PMT it points to, and returns
// the first H.264 PID (0 when none) and the pacing PID.
func findPIDs(data []byte) (video, pacing uint16, err error) {
	pmtPID := -1
	for off := 0; off < len(data); off += tsPacketSize {
		pkt := data[off : off+tsPacketSize]
		pid := int(pkt[1]&0x1f)<<8 | int(pkt[2])
		if pkt[1]&0x40 == 0 || (pid != 0 && pid != pmtPID) {
			continue
		}
		sec := psiSection(tsPayload(pkt))
		switch {
		case pid == 0 && pmtPID < 0 && len(sec) >= 8 && sec[0] == 0x00:
			for e := sec[8:]; len(e) >= 4; e = e[4:] {
				if prog := int(e[0])<<8 | int(e[1]); prog != 0 {
					pmtPID = int(e[2]&0x1f)<<8 | int(e[3])
					break
				}
			}
		case pid == pmtPID && len(sec) >= 12 && sec[0] == 0x02:
			info := int(sec[10]&0x0f)<<8 | int(sec[11])
			if 12+info > len(sec) {
				return 0, 0, fmt.Errorf("%w: PMT program_info_length %d beyond the section", ErrTS, info)
			}
			first := -1
			for e := sec[12+info:]; len(e) >= 5; {
				typ, es := e[0], uint16(e[1]&0x1f)<<8|uint16(e[2])
				if first < 0 {
					first = int(es)
				}
				if typ == streamTypeH264 && video == 0 {
					video = es
				}
				l := 5 + (int(e[3]&0x0f)<<8 | int(e[4]))
				if l > len(e) {
					break
				}
				e = e[l:]
			}
			if first < 0 {
				return 0, 0, fmt.Errorf("%w: the PMT lists no stream", ErrTS)
			}
			pacing = uint16(first)
			if video != 0 {
				pacing = video
			}
			return video, pacing, nil
		}
	}
	if pmtPID < 0 {
		return 0, 0, fmt.Errorf("%w: no PAT with a program", ErrTS)
	}
	return 0, 0, fmt.Errorf("%w: no PMT on PID %d", ErrTS, pmtPID)
}

// psiSection is the section after the pointer field, without its CRC, cut
// to section_length; nil when malformed.
func psiSection(p []byte) []byte {
	if len(p) < 1 || 1+int(p[0]) > len(p) {
		return nil
	}
	p = p[1+int(p[0]):]
	if len(p) < 3 {
		return nil
	}
	l := int(p[1]&0x0f)<<8 | int(p[2])
	if l < 4 || 3+l > len(p) {
		return nil
	}
	return p[:3+l-4]
}
