package tsframes

import (
	"bytes"
	"errors"
	"testing"
)

// buildSection builds a long-form PSI section with a valid CRC.
func buildSection(tableID byte, idExt uint16, version byte, body []byte) []byte {
	l := 5 + len(body) + 4
	s := []byte{tableID, 0xB0 | byte(l>>8), byte(l), byte(idExt >> 8), byte(idExt), 0xC1 | version<<1, 0, 0}
	s = append(s, body...)
	crc := CRC32MPEG(s)
	return append(s, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

func patSection(program, pmtPID uint16, version byte) []byte {
	return buildSection(tableIDPAT, 1, version, []byte{
		0, 0, 0xE0, 0x10, // network PID entry, skipped
		byte(program >> 8), byte(program), 0xE0 | byte(pmtPID>>8), byte(pmtPID),
	})
}

type esEntry struct {
	streamType byte
	pid        uint16
	desc       []byte
}

func pmtSection(program uint16, version byte, es ...esEntry) []byte {
	body := []byte{0xE1, 0x00, 0xF0, 0x00}
	for _, e := range es {
		body = append(body, e.streamType, 0xE0|byte(e.pid>>8), byte(e.pid), 0xF0|byte(len(e.desc)>>8), byte(len(e.desc)))
		body = append(body, e.desc...)
	}
	return buildSection(tableIDPMT, program, version, body)
}

// sectionPackets carries a section in packets of pid (pointer_field 0, 0xFF
// stuffing).
func sectionPackets(pid uint16, cc byte, sec []byte) [][]byte {
	var out [][]byte
	payload := append([]byte{0}, sec...)
	for first := true; first || len(payload) > 0; first = false {
		pkt := bytes.Repeat([]byte{0xFF}, packetSize)
		pkt[0] = syncByte
		pkt[1] = byte(pid>>8) & 0x1F
		if first {
			pkt[1] |= 0x40
		}
		pkt[2] = byte(pid)
		pkt[3] = 0x10 | cc&0x0F
		cc++
		n := copy(pkt[4:], payload)
		payload = payload[n:]
		out = append(out, pkt)
	}
	return out
}

var (
	esVideo = esEntry{0x1B, 256, nil}
	esOpus  = esEntry{0x06, 257, []byte{0x05, 0x04, 'O', 'p', 'u', 's', 0x7f, 0x02, 0x80, 0x02}}
)

func TestCRC32MPEG(t *testing.T) {
	if got := CRC32MPEG([]byte("123456789")); got != 0x0376E6E7 {
		t.Errorf("CRC-32/MPEG-2 check value = %08x, want 0376e6e7", got)
	}
	// A section from ffmpeg, CRC included, gives 0.
	pat, _ := psiPackets(t, readFixture(t, "av"))
	l := 3 + (int(pat[6]&0x0F)<<8 | int(pat[7]))
	if err := checkSection(pat[5:5+l], tableIDPAT); err != nil {
		t.Errorf("ffmpeg's PAT: %v", err)
	}
}

func TestPSITracker(t *testing.T) {
	tr := newPSITracker()
	push := func(pkts [][]byte) error {
		t.Helper()
		var errs []error
		for _, p := range pkts {
			if !tr.wants(pid(p)) {
				t.Fatalf("tracker does not want PID %d", pid(p))
			}
			if err := tr.push(p); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if tr.wants(0x1000) {
		t.Fatal("PMT PID wanted before the PAT")
	}
	patPkts := sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))
	pmtPkts := sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo))
	if err := push(patPkts); err != nil {
		t.Fatal(err)
	}
	if err := push(pmtPkts); err != nil {
		t.Fatal(err)
	}
	if !tr.changed || tr.changes != 0 || len(tr.es) != 1 || tr.es[0] != (esInfo{256, 0x1B}) || !tr.esSet.has(256) || tr.esSet.has(257) {
		t.Fatalf("after the first PMT: changed=%v changes=%d es=%v", tr.changed, tr.changes, tr.es)
	}
	if want := append(append([]byte(nil), patPkts[0]...), pmtPkts[0]...); !bytes.Equal(tr.preamble(), want) {
		t.Error("preamble is not the PAT and PMT packets")
	}
	tr.changed = false

	// The same content with another version number: no change.
	if err := push(sectionPackets(0x1000, 1, pmtSection(1, 5, esVideo))); err != nil || tr.changed {
		t.Fatalf("version bump: err %v, changed %v", err, tr.changed)
	}
	// Another program's PMT on the same PID: ignored.
	if err := push(sectionPackets(0x1000, 2, pmtSection(2, 0, esVideo, esOpus))); err != nil || tr.changed {
		t.Fatalf("other program: err %v, changed %v", err, tr.changed)
	}
	// A bad CRC: rejected.
	bad := pmtSection(1, 0, esVideo, esOpus)
	bad[len(bad)-1] ^= 1
	if err := push(sectionPackets(0x1000, 3, bad)); !errors.Is(err, ErrPSI) || tr.changed {
		t.Fatalf("bad CRC: err %v, changed %v", err, tr.changed)
	}
	// New content (a stream added), version unchanged: a change.
	if err := push(sectionPackets(0x1000, 4, pmtSection(1, 0, esVideo, esOpus))); err != nil || !tr.changed || tr.changes != 1 {
		t.Fatalf("stream added: err %v, changed %v, changes %d", err, tr.changed, tr.changes)
	}
	if !tr.esSet.has(257) || len(tr.es) != 2 {
		t.Errorf("es %v", tr.es)
	}
	tr.changed = false
	// Only a descriptor changes: a change.
	opus2 := esOpus
	opus2.desc = append([]byte(nil), esOpus.desc...)
	opus2.desc[len(opus2.desc)-1] = 0x01
	if err := push(sectionPackets(0x1000, 5, pmtSection(1, 0, esVideo, opus2))); err != nil || !tr.changed || tr.changes != 2 {
		t.Fatalf("descriptor change: err %v, changed %v, changes %d", err, tr.changed, tr.changes)
	}
	tr.changed = false

	// A PMT spread over two packets.
	long := esEntry{0x06, 300, bytes.Repeat([]byte{0x0A, 0x04, 'e', 'n', 'g', 0}, 40)}
	pkts := sectionPackets(0x1000, 6, pmtSection(1, 0, esVideo, long))
	if len(pkts) != 2 {
		t.Fatalf("%d packets for the long PMT", len(pkts))
	}
	if err := push(pkts); err != nil || !tr.changed || !tr.esSet.has(300) {
		t.Fatalf("two-packet PMT: err %v, changed %v", err, tr.changed)
	}
	if want := append(append(append([]byte(nil), patPkts[0]...), pkts[0]...), pkts[1]...); !bytes.Equal(tr.preamble(), want) {
		t.Error("preamble lacks the two PMT packets")
	}
	tr.changed = false
	// The same, with its second packet lost: dropped.
	long.pid = 301
	pkts = sectionPackets(0x1000, 8, pmtSection(1, 0, esVideo, long))
	if err := push(pkts[:1]); err != nil || tr.changed {
		t.Fatalf("one packet of two: err %v, changed %v", err, tr.changed)
	}

	// Its second packet with a continuity gap: dropped, reported.
	pkts = sectionPackets(0x1000, 10, pmtSection(1, 0, esVideo, long))
	pkts[1][3] = 0x10 | 15
	if err := push(pkts); !errors.Is(err, ErrPSI) || tr.changed {
		t.Fatalf("gap inside a section: err %v, changed %v", err, tr.changed)
	}

	// The PAT moves the PMT: the old PID is no longer followed.
	if err := push(sectionPackets(pidPAT, 1, patSection(1, 0x1100, 1))); err != nil {
		t.Fatal(err)
	}
	if tr.wants(0x1000) || !tr.wants(0x1100) {
		t.Fatal("PMT PID not updated")
	}
	if err := push(sectionPackets(0x1100, 0, pmtSection(1, 0, esVideo))); err != nil || !tr.changed {
		t.Fatalf("PMT on the new PID: err %v, changed %v", err, tr.changed)
	}
}

func TestPSIMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  func() []byte
	}{
		{"pointer beyond the packet", func() []byte {
			p := sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))[0]
			p[4] = 200
			return p
		}},
		{"section too long", func() []byte {
			p := sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))[0]
			p[6] = 0xBF
			p[7] = 0xFF
			return p
		}},
		{"wrong table", func() []byte {
			return sectionPackets(pidPAT, 0, buildSection(0x42, 1, 0, []byte{0, 1, 0xE0, 0x10}))[0]
		}},
		{"no program", func() []byte {
			return sectionPackets(pidPAT, 0, buildSection(tableIDPAT, 1, 0, []byte{0, 0, 0xE0, 0x10}))[0]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newPSITracker()
			if err := tr.push(tc.pkt()); !errors.Is(err, ErrPSI) {
				t.Fatalf("err = %v, want ErrPSI", err)
			}
			if tr.hasPMTPID {
				t.Error("PMT PID taken from a bad PAT")
			}
		})
	}
}
