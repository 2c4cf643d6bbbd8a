package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
)

// rtpPacket is what an rtpViewer keeps of each RTP packet.
type rtpPacket struct {
	at     time.Time
	ssrc   uint32
	seq    uint16
	ts     uint32
	marker bool
	idr    bool // carries (part of) an IDR picture
}

// rtpViewer is a whepClient (video and audio) that keeps every RTP packet
// it receives, so that a test can check continuity across a fault, and the
// arrival of every complete keyframe.
type rtpViewer struct {
	*whepClient
	wg sync.WaitGroup

	mu        sync.Mutex
	pkts      map[string][]rtpPacket // by MIME type
	keyframes []time.Time            // arrival of the last packet of each IDR access unit
	au        struct {
		ts      uint32
		started bool
		idr     bool
	}
}

// newRTPViewer returns a viewer; it replaces the whepClient's track
// handler with one that records packets (and still counts them, so that
// waitPackets works). The cleanup closes the PeerConnection and waits for
// the readers.
func newRTPViewer(t *testing.T) *rtpViewer {
	t.Helper()
	return newRTPViewerWith(t, nil)
}

// newRTPViewerWith is newRTPViewer with tune applied to the client's
// SettingEngine (see newWHEPClientWith).
func newRTPViewerWith(t *testing.T, tune func(*webrtc.SettingEngine)) *rtpViewer {
	t.Helper()
	c := newWHEPClientWith(t, tune, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	v := &rtpViewer{whepClient: c, pkts: map[string][]rtpPacket{}}
	t.Cleanup(func() {
		_ = c.pc.Close()
		v.wg.Wait()
	})
	piontest.ReadRTP(c.pc, &v.wg, func(tr *webrtc.TrackRemote, p *rtp.Packet, at time.Time) {
		mime := tr.Codec().MimeType
		c.mu.Lock()
		c.tracks[mime] = true
		c.mu.Unlock()
		v.add(mime, p, at)
	})
	return v
}

func (v *rtpViewer) add(mime string, p *rtp.Packet, now time.Time) {
	r := rtpPacket{at: now, ssrc: p.SSRC, seq: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker}
	v.mu.Lock()
	if mime == mimeH264 {
		r.idr = isIDR(p.Payload)
		if !v.au.started || p.Timestamp != v.au.ts {
			v.au.started, v.au.ts, v.au.idr = true, p.Timestamp, false
		}
		v.au.idr = v.au.idr || r.idr
		if p.Marker && v.au.idr {
			v.keyframes = append(v.keyframes, now)
		}
	}
	v.pkts[mime] = append(v.pkts[mime], r)
	v.mu.Unlock()
	v.whepClient.mu.Lock()
	v.whepClient.packets[mime]++
	v.whepClient.mu.Unlock()
}

// isIDR reports whether an H.264 RTP payload (packetization-mode 1)
// carries an IDR slice: a single NAL unit of type 5, a STAP-A holding one,
// or a FU-A fragment of one.
func isIDR(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	switch payload[0] & 0x1f {
	case 5:
		return true
	case 24: // STAP-A: 16-bit size, NAL unit, ...
		for b := payload[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || 2+n > len(b) {
				return false
			}
			if b[2]&0x1f == 5 {
				return true
			}
			b = b[2+n:]
		}
	case 28: // FU-A
		return len(payload) > 1 && payload[1]&0x1f == 5
	}
	return false
}

// unitHasIDR reports whether the access unit that starts pkts[0] (the
// packets up to the next timestamp) carries an IDR picture.
func unitHasIDR(pkts []rtpPacket) bool {
	for _, p := range pkts {
		if p.ts != pkts[0].ts {
			return false
		}
		if p.idr {
			return true
		}
	}
	return false
}

// packets returns a copy of the packets of mime received so far.
func (v *rtpViewer) packets(mime string) []rtpPacket {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]rtpPacket(nil), v.pkts[mime]...)
}

// waitKeyframe waits for a complete keyframe that arrives after since and
// returns its arrival time.
func (v *rtpViewer) waitKeyframe(t *testing.T, ctx context.Context, since time.Time) time.Time {
	t.Helper()
	var at time.Time
	whepWait(t, ctx, "a keyframe", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, k := range v.keyframes {
			if k.After(since) {
				at = k
				return true
			}
		}
		return false
	})
	return at
}

// waitPacketsAfter waits until n packets of mime arrived after since and
// returns the arrival of the first of them.
func (v *rtpViewer) waitPacketsAfter(t *testing.T, ctx context.Context, mime string, since time.Time, n int) time.Time {
	t.Helper()
	var first time.Time
	whepWait(t, ctx, fmt.Sprintf("%d %s packets", n, mime), func() bool {
		select {
		case <-v.closed:
			t.Fatalf("the PeerConnection closed while waiting for %s packets", mime)
		default:
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		got := 0
		for _, p := range v.pkts[mime] {
			if p.at.After(since) {
				if got == 0 {
					first = p.at
				}
				got++
			}
		}
		return got >= n
	})
	return first
}

// continuity describes the packets of one track.
type continuity struct {
	packets int
	lost    int // packets missing (sequence numbers skipped, never retransmitted)
	// recovered counts the packets that came late, retransmitted after the
	// viewer NACKed them (lossy tracks only: a gap, then its packets).
	recovered int
	// resent counts the packets that came again with a sequence number
	// already received (lossy tracks only): the node answered a NACK for a
	// packet that was late, not lost. Only a retransmission reuses a
	// sequence number; a frame sent twice would have new ones and fail the
	// timestamp checks.
	resent  int
	units   int    // access units (video) or packets (audio): timestamp changes + 1
	maxStep uint32 // largest timestamp step between consecutive units
	// irregular counts the steps other than the track's nominal one.
	irregular int
	maxPause  time.Duration // longest time between two consecutive packets
	pauseEnd  time.Time     // arrival of the packet that ended the longest pause
}

// track tells checkContinuity what to expect of a track.
type track struct {
	name  string
	audio bool // every packet is a unit of its own; video units end with the marker bit
	// maxStep bounds the timestamp step between consecutive units.
	maxStep uint32
	// nominal is the usual step (0: none): 960 for 20 ms Opus packets.
	nominal uint32
	// lossy allows packets to be missing (sequence numbers skipped, as when
	// a burst overflows a loopback socket) and a missing packet to arrive
	// late, once (the node retransmits what the viewer NACKs, on the media
	// SSRC when the viewer did not negotiate RTX); never repeated, and no
	// other packet out of order.
	lossy bool
}

// checkContinuity fails the test unless pkts (one track, in arrival order)
// come from one SSRC with sequence numbers that each add exactly 1 (no
// loss, duplicate or reordering; with tr.lossy, skipped numbers are
// counted as losses, and a skipped packet that arrives late, once, as
// recovered by retransmission) and timestamps that never go back, each new one (a new
// unit) strictly greater than the last and at most tr.maxStep ahead: a
// duplicate or out-of-order frame breaks one of these.
func checkContinuity(t *testing.T, tr track, pkts []rtpPacket) continuity {
	t.Helper()
	var c continuity
	if len(pkts) == 0 {
		t.Fatalf("%s: no packets", tr.name)
	}
	c.packets, c.units = len(pkts), 1
	missing := map[uint16]bool{}               // lossy: sequence numbers skipped so far
	seen := map[uint16]bool{pkts[0].seq: true} // lossy: sequence numbers received
	prev := 0                                  // index of the last packet in sequence
	for i := 1; i < len(pkts); i++ {
		p, q := pkts[prev], pkts[i]
		if q.ssrc != p.ssrc {
			t.Fatalf("%s: packet %d: SSRC %08x after %08x", tr.name, i, q.ssrc, p.ssrc)
		}
		gap := q.seq - p.seq // modulo 2^16
		if tr.lossy && gap != 1 && seen[q.seq] && !missing[q.seq] {
			c.resent++
			continue
		}
		if tr.lossy {
			seen[q.seq] = true
		}
		switch {
		case gap == 1:
		case tr.lossy && gap > 1 && gap < 1<<15:
			c.lost += int(gap - 1)
			for s := p.seq + 1; s != q.seq; s++ {
				missing[s] = true
			}
		case missing[q.seq]:
			// A retransmission of a packet counted lost: it fills its
			// gap, out of the sequence.
			delete(missing, q.seq)
			c.lost--
			c.recovered++
			continue
		default:
			t.Fatalf("%s: packet %d: sequence number %d after %d\n%s", tr.name, i, q.seq, p.seq, around(pkts, i))
		}
		prev = i
		if d := q.at.Sub(p.at); d > c.maxPause {
			c.maxPause, c.pauseEnd = d, q.at
		}
		if q.ts == p.ts {
			if tr.audio || p.marker {
				t.Fatalf("%s: packet %d: timestamp %d again after the end of its unit (a duplicate)", tr.name, i, q.ts)
			}
			continue
		}
		if !tr.audio && !p.marker && gap == 1 {
			t.Fatalf("%s: packet %d: new timestamp %d before the marker of the unit at %d", tr.name, i, q.ts, p.ts)
		}
		step := q.ts - p.ts // modulo 2^32
		if step > 1<<31 {
			t.Fatalf("%s: packet %d: timestamp %d after %d goes back", tr.name, i, q.ts, p.ts)
		}
		if step > tr.maxStep {
			t.Fatalf("%s: packet %d: timestamp %d after %d steps %d, more than %d", tr.name, i, q.ts, p.ts, step, tr.maxStep)
		}
		c.maxStep = max(c.maxStep, step)
		if tr.nominal > 0 && step != tr.nominal {
			c.irregular++
		}
		c.units++
	}
	return c
}

// around describes the packets around pkts[i], for failure messages.
func around(pkts []rtpPacket, i int) string {
	var b strings.Builder
	for j := max(0, i-4); j < min(len(pkts), i+4); j++ {
		p := pkts[j]
		fmt.Fprintf(&b, "  #%d seq %d ts %d marker %v idr %v at +%v\n", j, p.seq, p.ts, p.marker, p.idr, p.at.Sub(pkts[0].at).Round(time.Microsecond))
	}
	return b.String()
}
