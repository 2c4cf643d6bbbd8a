package transcode

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The child's input is a minimal MPEG-TS of one audio program: PAT, PMT and
// the source's PES payloads as they came off the bus, with their PTS (on
// the 33-bit clock), so that ffmpeg keeps the source timeline (-copyts).
// It is written here rather than with mediacommon's mpegts.Writer (which
// pkg/export uses): that writer re-frames the audio (AAC from access units
// and one fixed AudioSpecificConfig, so a config change means a new
// writer) and refuses MPEG-2 audio, while the bus already carries whole PES
// payloads that only need a header.

const (
	tsPacketSize = 188
	tsPMTPID     = 0x1000
	tsAudioPID   = 0x100
)

// tsWriter writes the child's input. It is used by one goroutine.
type tsWriter struct {
	w          io.Writer
	streamType byte
	streamID   byte
	descriptor []byte // of the PMT's elementary stream
	cc         map[uint16]byte
	buf        []byte
}

// newTSWriter returns a writer for audio of codec.
func newTSWriter(w io.Writer, codec tsframes.Codec) (*tsWriter, error) {
	t := &tsWriter{w: w, cc: map[uint16]byte{}}
	switch codec {
	case tsframes.CodecAAC:
		t.streamType, t.streamID = 0x0f, 0xc0 // ADTS
	case tsframes.CodecAACLATM:
		t.streamType, t.streamID = 0x11, 0xc0 // LATM in LOAS: ffmpeg's aac_latm decoder
	case tsframes.CodecMPEGAudio:
		t.streamType, t.streamID = 0x03, 0xc0
	case tsframes.CodecAC3:
		t.streamType, t.streamID = 0x81, 0xbd // ATSC A/52
	case tsframes.CodecEAC3:
		t.streamType, t.streamID = 0x87, 0xbd
	case tsframes.CodecH264:
		t.streamType, t.streamID = 0x1b, tsVideoStreamID // video.go
	case tsframes.CodecH265:
		t.streamType, t.streamID = 0x24, tsVideoStreamID
	default:
		return nil, fmt.Errorf("transcode: no MPEG-TS mapping for %s", codec)
	}
	return t, nil
}

// transcodable reports whether the stage turns audio of codec into Opus.
func transcodable(codec tsframes.Codec) bool {
	switch codec {
	case tsframes.CodecAAC, tsframes.CodecAACLATM, tsframes.CodecMPEGAudio, tsframes.CodecAC3, tsframes.CodecEAC3:
		return true
	}
	return false
}

// writeTables writes a PAT and a PMT.
func (t *tsWriter) writeTables() error {
	// PAT: program 1 on tsPMTPID.
	pat := []byte{0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00,
		0x00, 0x01, 0xe0 | tsPMTPID>>8, tsPMTPID & 0xff}
	// PMT: PCR on the audio PID, one elementary stream.
	pmt := []byte{0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00,
		0xe0 | tsAudioPID>>8, tsAudioPID & 0xff, 0xf0, 0x00,
		t.streamType, 0xe0 | tsAudioPID>>8, tsAudioPID & 0xff, 0xf0, byte(len(t.descriptor))}
	pmt = append(pmt, t.descriptor...)
	for _, s := range []struct {
		pid uint16
		sec []byte
	}{{0, pat}, {tsPMTPID, pmt}} {
		sec := s.sec
		l := len(sec) - 3 + 4 // after section_length, CRC included
		sec[1] |= byte(l >> 8)
		sec[2] = byte(l)
		sec = binary.BigEndian.AppendUint32(sec, tsframes.CRC32MPEG(sec))
		payload := append([]byte{0}, sec...) // pointer_field
		if err := t.writePackets(s.pid, payload, false); err != nil {
			return err
		}
	}
	return nil
}

// writePES writes one PES: data at pts and, for video, dts (any values:
// written modulo 2^33; an audio PES has no DTS, dts is ignored).
func (t *tsWriter) writePES(pts, dts int64, data []byte) error {
	var a [19]byte // the longest header: on the stack
	hdr := append(a[:0], 0, 0, 1, t.streamID, 0, 0, 0x80, 0x80, 5)
	if t.streamID == tsVideoStreamID {
		hdr[7], hdr[8] = 0xc0, 10
		hdr = appendTimestamp(appendTimestamp(hdr, 0x31, pts), 0x11, dts)
	} else {
		hdr = appendTimestamp(hdr, 0x21, pts)
	}
	if n := len(hdr) - 6 + len(data); n <= 0xffff {
		binary.BigEndian.PutUint16(hdr[4:], uint16(n))
	}
	t.buf = append(append(t.buf[:0], hdr...), data...)
	return t.writePackets(tsAudioPID, t.buf, true)
}

// appendTimestamp appends the 5 bytes of a PES timestamp (PTS or DTS),
// ts modulo 2^33 after the 4 bits of prefix (0x21: PTS only; 0x31 and
// 0x11: PTS and DTS).
func appendTimestamp(b []byte, prefix byte, ts int64) []byte {
	ts &= 1<<33 - 1
	return append(b, prefix|byte(ts>>29&0x0e), byte(ts>>22), byte(ts>>14|1), byte(ts>>7), byte(ts<<1|1))
}

// writePackets writes payload as the packets of one unit (PSI section or
// PES) on pid; the last is padded with an adaptation field (PES) or 0xff
// stuffing (PSI).
func (t *tsWriter) writePackets(pid uint16, payload []byte, pes bool) error {
	var pkt [tsPacketSize]byte
	first := true
	for len(payload) > 0 {
		pkt[0] = 0x47
		pkt[1] = byte(pid >> 8 & 0x1f)
		if first {
			pkt[1] |= 0x40
		}
		pkt[2] = byte(pid)
		cc := t.cc[pid]
		t.cc[pid] = (cc + 1) & 0x0f
		room := tsPacketSize - 4
		n := min(len(payload), room)
		body := pkt[4:]
		if n < room && pes {
			// Adaptation field of room-n bytes (its length byte included).
			pkt[3] = 0x30 | cc
			af := room - n
			body[0] = byte(af - 1)
			if af > 1 {
				body[1] = 0x00
				for i := 2; i < af; i++ {
					body[i] = 0xff
				}
			}
			copy(body[af:], payload[:n])
		} else {
			pkt[3] = 0x10 | cc
			copy(body, payload[:n])
			for i := n; i < room; i++ {
				body[i] = 0xff
			}
		}
		if _, err := t.w.Write(pkt[:]); err != nil {
			return err
		}
		payload = payload[n:]
		first = false
	}
	return nil
}
