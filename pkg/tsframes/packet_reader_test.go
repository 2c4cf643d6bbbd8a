package tsframes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
	"time"
)

// testPackets returns n packets whose byte 4 is their index.
func testPackets(n int) []byte {
	var b []byte
	for i := range n {
		pkt := bytes.Repeat([]byte{0xFF}, packetSize)
		pkt[0], pkt[1], pkt[2], pkt[3], pkt[4] = syncByte, 0x01, 0x00, 0x10, byte(i)
		b = append(b, pkt...)
	}
	return b
}

type readerLog struct {
	pkts      []int // byte 4 of each packet
	resyncs   []int // bytes skipped
	truncated []int
	suspect   int
	retracted int
	bytes     int
}

func readAll(t *testing.T, r io.Reader) (readerLog, error) {
	t.Helper()
	var log readerLog
	pr := newPacketReader(r)
	pr.onResync = func(n int) { log.resyncs = append(log.resyncs, n) }
	pr.onTruncated = func(b []byte) { log.truncated = append(log.truncated, len(b)) }
	pr.onSuspect = func([]byte) { log.suspect++ }
	pr.onRetract = func(b []byte) {
		// The packet retracted is the one returned last.
		if len(log.pkts) == 0 || int(b[4]) != log.pkts[len(log.pkts)-1] {
			t.Fatalf("retracted packet %d is not the last one returned (%v)", b[4], log.pkts)
		}
		log.pkts = log.pkts[:len(log.pkts)-1]
		log.retracted++
	}
	pr.onBytes = func(n int) { log.bytes += n }
	for range 10000 {
		pkt, err := pr.next()
		if err != nil {
			return log, err
		}
		if len(pkt) != packetSize || pkt[0] != syncByte {
			t.Fatalf("bad packet % x", pkt[:8])
		}
		log.pkts = append(log.pkts, int(pkt[4]))
	}
	t.Fatal("packet reader does not end")
	return log, nil
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPacketReader(t *testing.T) {
	pk := testPackets(10)
	junk := []byte{1, 2, 3, syncByte, 5} // one stray sync byte
	for _, tc := range []struct {
		name      string
		in        []byte
		pkts      []int
		resyncs   []int
		truncated []int
		suspect   int
	}{
		{"aligned", pk, seq(0, 10), nil, nil, 0},
		{"garbage first", append(append([]byte(nil), junk...), pk...), seq(0, 10), []int{5}, nil, 0},
		{
			// The packet before the garbage is dropped as suspect, and the
			// search restarts from its second byte.
			"garbage between",
			append(append(append([]byte(nil), pk[:3*packetSize]...), junk...), pk[3*packetSize:]...),
			append(seq(0, 2), seq(3, 10)...), []int{packetSize + 5}, nil, 1,
		},
		{
			// 10 bytes lost inside packet 3: no sync byte follows it, so it
			// is dropped; packet 4 is found 178 bytes after its start.
			"bytes lost",
			append(append([]byte(nil), pk[:3*packetSize+50]...), pk[3*packetSize+60:]...),
			append(seq(0, 3), seq(4, 10)...), []int{packetSize - 10}, nil, 1,
		},
		{"partial packet at the end", pk[:3*packetSize+100], seq(0, 3), nil, []int{100}, 0},
		{"garbage at the end", append(append([]byte(nil), pk...), junk...), seq(0, 9), []int{packetSize + 5}, nil, 1},
		{"only garbage", bytes.Repeat(junk, 100), nil, []int{500}, nil, 0},
		{"empty", nil, nil, nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A suspect packet is dropped before it is returned when the
			// byte after it is read with it ("whole"); read on its own, it is
			// returned as soon as its 188 bytes are in (the reader is
			// locked) and retracted when that byte comes ("one byte"). pkts
			// lists the packets returned and not retracted.
			for _, shape := range []struct {
				name  string
				r     func([]byte) io.Reader
				early bool
			}{
				{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }, false},
				{"one byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }, true},
			} {
				suspect, retracted := tc.suspect, 0
				if shape.early {
					suspect, retracted = 0, tc.suspect
				}
				log, err := readAll(t, shape.r(tc.in))
				if err != io.EOF {
					t.Fatalf("%s: err = %v, want io.EOF", shape.name, err)
				}
				if !equalInts(log.pkts, tc.pkts) || !equalInts(log.resyncs, tc.resyncs) ||
					!equalInts(log.truncated, tc.truncated) || log.suspect != suspect || log.retracted != retracted || log.bytes != len(tc.in) {
					t.Errorf("%s: got %+v\nwant pkts %v resyncs %v truncated %v suspect %d retracted %d bytes %d",
						shape.name, log, tc.pkts, tc.resyncs, tc.truncated, suspect, retracted, len(tc.in))
				}
			}
		})
	}
}

func TestPacketReaderStop(t *testing.T) {
	stop := errors.New("stop")
	pr := newPacketReader(bytes.NewReader(testPackets(3)))
	pr.stop = func() error { return stop }
	if _, err := pr.next(); err != stop {
		t.Fatalf("err = %v, want the stop error before any read", err)
	}
}

func TestPacketReaderError(t *testing.T) {
	boom := errors.New("boom")
	pr := newPacketReader(io.MultiReader(bytes.NewReader(testPackets(3)), iotest.ErrReader(boom)))
	for i := range 3 {
		if _, err := pr.next(); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if _, err := pr.next(); err != boom {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := pr.next(); err != boom {
		t.Fatalf("err = %v, want boom again", err)
	}
}

// chunkReader returns one chunk per Read and counts the reads; reading past
// the chunks fails the test (the packet reader must not need more).
type chunkReader struct {
	t      *testing.T
	chunks [][]byte
	reads  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.reads == len(r.chunks) {
		r.t.Fatal("read past the data the packet reader needs")
	}
	r.reads++
	return copy(p, r.chunks[r.reads-1]), nil
}

// TestPacketReaderLocked: the first packet waits for the sync byte after it;
// once locked, a packet is returned as soon as its 188 bytes are read.
func TestPacketReaderLocked(t *testing.T) {
	pk := testPackets(3)
	r := &chunkReader{t: t, chunks: [][]byte{pk[:packetSize], pk[packetSize : 2*packetSize], pk[2*packetSize:]}}
	pr := newPacketReader(r)
	for i, reads := range []int{2, 2, 3} {
		pkt, err := pr.next()
		if err != nil || int(pkt[4]) != i || r.reads != reads {
			t.Fatalf("packet %d: got packet %d, %v after %d reads, want after %d", i, pkt[4], err, r.reads, reads)
		}
	}
}

// TestLiveInput: on an input written packet by packet that then waits (a
// live encoder between frames), a PES with a PES_packet_length comes out as
// soon as its last packet is written, and a video PES without one as soon
// as the first packet of the next PES of its PID is written (MPEG-TS gives
// it no earlier end). When the byte after a packet already passed on turns
// out not to be a sync byte, the PES in progress of that packet's PID is
// dropped.
func TestLiveInput(t *testing.T) {
	const vPID, aPID = 256, 257
	ccs := map[uint16]*byte{vPID: new(byte), aPID: new(byte)}
	pkts := func(p uint16, pes []byte) [][]byte { return tsPackets(p, ccs[p], pes) }
	video := func(pts int64, nalus ...[]byte) []byte {
		pes := pesWithPTS(0xE0, pts, -1, annexB(nalus...))
		setPESLength(pes, 0)
		return bytes.Join(pkts(vPID, pes), nil)
	}
	audio := func(pts int64, au []byte) [][]byte { return pkts(aPID, pesWithPTS(0xC0, pts, -1, au)) }
	opus20 := opusAU(opusPacket20ms)

	rd, wr := io.Pipe()
	defer rd.Close()
	events := make(chan any, 16) // Announcement or Frame, in order
	errs := make(chan error, 16)
	c := &collector{t: t}
	c.onAnn = func(a Announcement) error { events <- a; return nil }
	c.onFrame = func(f *Frame) error { events <- *f; return nil }
	d := NewDemuxer(rd, Options{OnDecodeError: func(err error) { errs <- err }})
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, c) }()

	write := func(b ...[]byte) {
		t.Helper()
		if _, err := wr.Write(bytes.Join(b, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// expect waits for the next events: a frame per (PID, PTS), or an
	// announcement for PID 0; then checks that nothing else came out.
	expect := func(step string, want ...frameKey) {
		t.Helper()
		for _, w := range want {
			select {
			case ev := <-events:
				var got frameKey
				if f, ok := ev.(Frame); ok {
					got = frameKey{f.PID, f.PTS}
				}
				if got != w {
					t.Fatalf("%s: got %+v, want %+v", step, ev, w)
				}
			case <-time.After(testDeadline):
				t.Fatalf("%s: %+v did not come out while the input waited", step, w)
			}
		}
		select {
		case ev := <-events:
			t.Fatalf("%s: unexpected %+v", step, ev)
		default:
		}
	}

	// The IDR comes out when the next video PES starts.
	write(bytes.Join(sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0)), nil),
		bytes.Join(sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus)), nil),
		video(90000, testSPS, testPPS, testIDR), video(93000, testP))
	expect("IDR", frameKey{}, frameKey{vPID, 90000})
	// An Opus PES comes out at its length; the P frame still waits.
	write(audio(90000, append(append([]byte(nil), opus20...), opus20...))...)
	expect("Opus", frameKey{aPID, 90000}, frameKey{aPID, 91800})
	write(video(96000, testP))
	expect("P frame", frameKey{vPID, 93000})

	// The first packet of a two-packet Opus PES is passed on at once; the
	// garbage written after it makes it suspect, so that PES is dropped
	// (its second packet is ignored after the resync).
	long := append(opusAU(randomNALU(0xf8, 150, 1)), opusAU(randomNALU(0xf8, 150, 2))...)
	two := audio(93600, long)
	if len(two) != 2 {
		t.Fatalf("%d packets", len(two))
	}
	write(two[0])
	expect("first half")
	write(garbage(rand.New(rand.NewSource(1)), 20), two[1], bytes.Join(audio(95400, opus20), nil),
		video(99000, testP), bytes.Join(audio(97200, opus20), nil))
	expect("after the garbage", frameKey{aPID, 95400}, frameKey{vPID, 96000}, frameKey{aPID, 97200})

	// The last video PES comes out at the end of the input.
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Run did not return")
	}
	expect("end", frameKey{vPID, 99000})
	close(errs)
	var corrupt, sync int
	for err := range errs {
		switch {
		case errors.Is(err, ErrCorruptPacket):
			corrupt++
		case errors.Is(err, ErrSync):
			sync++
		default:
			t.Errorf("decode error %v", err)
		}
	}
	if st := d.Stats(); corrupt != 1 || sync != 1 || st.Resyncs != 1 || st.DecodeErrors != 1 {
		t.Errorf("ErrCorruptPacket %d, ErrSync %d, stats %+v; want one of each", corrupt, sync, st)
	}
}
