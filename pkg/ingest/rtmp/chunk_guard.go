package rtmp

import (
	"encoding/binary"
	"fmt"
)

// Limits the chunk guard enforces on a publisher's chunk stream, before
// gortmplib parses it.
const (
	// MaxAMFMessage bounds an AMF command or data message (connect,
	// publish, @setDataFrame, onCuePoint...). gortmplib decodes AMF
	// recursively and accepts messages of 10 MiB: a message of nested
	// arrays that long overflows the goroutine stack, a fatal error of the
	// whole process that no recover catches.
	MaxAMFMessage = 64 << 10
	// maxChunkSize is the largest chunk size a publisher may set (RTMP's
	// 31 bits would let one chunk hold any message; gortmplib takes 10 MiB
	// at most).
	maxChunkSize = 1 << 24
	// handshakeBytes is what a client sends before its chunk stream: C0,
	// C1 and C2.
	handshakeBytes = 1 + 1536 + 1536
	// maxChunkStreams bounds the chunk streams a connection may open.
	maxChunkStreams = 64
)

// RTMP message types the guard looks at.
const (
	msgSetChunkSize = 1
	msgAbort        = 2
)

// isAMF reports whether messages of type typ carry AMF0 or AMF3 (data,
// shared object, command).
func isAMF(typ byte) bool { return typ >= 15 && typ <= 20 }

// chunkGuard follows the chunk stream a publisher sends (after the
// handshake) as gortmplib reads it, byte for byte and without copying,
// and fails on what gortmplib would take but must not: an AMF message
// longer than MaxAMFMessage, a chunk size of 0 or above maxChunkSize, more
// than maxChunkStreams chunk streams.
type chunkGuard struct {
	skip      int // handshake bytes still to pass
	chunkSize uint32
	streams   map[byte]*guardStream

	hdr        [16]byte // the chunk header being read
	have, need int      // bytes of hdr read, and needed
	extChecked bool     // need includes the extended timestamp, if any
	cur        *guardStream
	chunkLen   uint32 // payload bytes of the current chunk
	body       uint32 // of which still to pass
}

// guardStream is what the guard knows of one chunk stream.
type guardStream struct {
	id      byte
	typ     byte
	msgLen  uint32
	left    uint32 // bytes of the current message still to come (0: none started)
	extTS   bool   // its last timestamp field was 0xFFFFFF
	ctl     [4]byte
	ctlHave int
}

func newChunkGuard() *chunkGuard {
	return &chunkGuard{skip: handshakeBytes, chunkSize: 128, streams: make(map[byte]*guardStream)}
}

// check follows p, the next bytes the publisher sent; it returns an error
// wrapping errHostile at the first violation.
func (g *chunkGuard) check(p []byte) error {
	if g.skip > 0 {
		n := min(g.skip, len(p))
		g.skip -= n
		p = p[n:]
	}
	for len(p) > 0 {
		if g.body > 0 {
			n := min(uint32(len(p)), g.body)
			g.payload(p[:n])
			g.body -= n
			p = p[n:]
			if g.body == 0 {
				if err := g.chunkDone(); err != nil {
					return err
				}
			}
			continue
		}
		g.hdr[g.have] = p[0]
		g.have++
		p = p[1:]
		if g.have == 1 {
			if g.hdr[0]&0x3f < 2 {
				// gortmplib refuses them too.
				return fmt.Errorf("%w: extended chunk stream id", errHostile)
			}
			g.need, g.extChecked = 1+[4]int{11, 7, 3, 0}[g.hdr[0]>>6], false
		}
		if g.have < g.need {
			continue
		}
		if !g.extChecked {
			g.extChecked = true
			if g.extended() {
				g.need += 4
				continue
			}
		}
		if err := g.headerDone(); err != nil {
			return err
		}
	}
	return nil
}

// extended reports whether the chunk header read so far (without its
// extended timestamp) is followed by one.
func (g *chunkGuard) extended() bool {
	if g.hdr[0]>>6 == 3 {
		s := g.streams[g.hdr[0]&0x3f]
		return s != nil && s.extTS
	}
	return g.hdr[1] == 0xff && g.hdr[2] == 0xff && g.hdr[3] == 0xff
}

// headerDone applies a whole chunk header: a new message starts, or the
// chunk continues one.
func (g *chunkGuard) headerDone() error {
	fmtType, id := g.hdr[0]>>6, g.hdr[0]&0x3f
	g.have, g.need = 0, 0
	s := g.streams[id]
	if s == nil {
		if len(g.streams) >= maxChunkStreams {
			return fmt.Errorf("%w: more than %d chunk streams", errHostile, maxChunkStreams)
		}
		s = &guardStream{id: id}
		g.streams[id] = s
	}
	g.cur = s
	switch fmtType {
	case 0, 1:
		s.msgLen = uint32(g.hdr[4])<<16 | uint32(g.hdr[5])<<8 | uint32(g.hdr[6])
		s.typ = g.hdr[7]
		s.extTS = g.hdr[1] == 0xff && g.hdr[2] == 0xff && g.hdr[3] == 0xff
		s.left = 0
	case 2:
		s.extTS = g.hdr[1] == 0xff && g.hdr[2] == 0xff && g.hdr[3] == 0xff
		s.left = 0
	}
	if s.left == 0 { // a new message, with this header's length and type
		if isAMF(s.typ) && s.msgLen > MaxAMFMessage {
			return fmt.Errorf("%w: AMF message (type %d) of %d bytes, limit %d", errHostile, s.typ, s.msgLen, MaxAMFMessage)
		}
		s.left, s.ctlHave = s.msgLen, 0
	}
	if g.chunkSize == 0 {
		return fmt.Errorf("%w: chunk size 0", errHostile)
	}
	g.chunkLen = min(s.left, g.chunkSize)
	g.body = g.chunkLen
	if g.body == 0 {
		return g.chunkDone()
	}
	return nil
}

// payload passes payload bytes of the current chunk, keeping those of a
// protocol control message.
func (g *chunkGuard) payload(p []byte) {
	s := g.cur
	if s.typ == msgSetChunkSize || s.typ == msgAbort {
		for _, b := range p {
			if s.ctlHave < len(s.ctl) {
				s.ctl[s.ctlHave] = b
				s.ctlHave++
			}
		}
	}
}

// chunkDone ends the current chunk, and its message when it was the last.
func (g *chunkGuard) chunkDone() error {
	s := g.cur
	s.left -= g.chunkLen
	if s.left > 0 {
		return nil
	}
	switch {
	case s.typ == msgSetChunkSize && s.ctlHave == 4:
		size := binary.BigEndian.Uint32(s.ctl[:])
		if size == 0 || size > maxChunkSize {
			return fmt.Errorf("%w: chunk size %d (allowed 1 to %d)", errHostile, size, maxChunkSize)
		}
		g.chunkSize = size
	case s.typ == msgAbort && s.ctlHave == 4:
		if a := g.streams[byte(binary.BigEndian.Uint32(s.ctl[:])&0x3f)]; a != nil && a != s {
			a.left = 0
		}
	}
	return nil
}
