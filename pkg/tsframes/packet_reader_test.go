package tsframes

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
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
	bytes     int
}

func readAll(t *testing.T, r io.Reader) (readerLog, error) {
	t.Helper()
	var log readerLog
	pr := newPacketReader(r)
	pr.onResync = func(n int) { log.resyncs = append(log.resyncs, n) }
	pr.onTruncated = func(b []byte) { log.truncated = append(log.truncated, len(b)) }
	pr.onSuspect = func([]byte) { log.suspect++ }
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
			for _, shape := range []struct {
				name string
				r    func([]byte) io.Reader
			}{
				{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
				{"one byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
			} {
				log, err := readAll(t, shape.r(tc.in))
				if err != io.EOF {
					t.Fatalf("%s: err = %v, want io.EOF", shape.name, err)
				}
				if !equalInts(log.pkts, tc.pkts) || !equalInts(log.resyncs, tc.resyncs) ||
					!equalInts(log.truncated, tc.truncated) || log.suspect != tc.suspect || log.bytes != len(tc.in) {
					t.Errorf("%s: got %+v\nwant pkts %v resyncs %v truncated %v suspect %d bytes %d",
						shape.name, log, tc.pkts, tc.resyncs, tc.truncated, tc.suspect, len(tc.in))
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
