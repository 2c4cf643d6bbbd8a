package whip

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

type handed struct {
	seq  uint16
	lost bool
}

func pushAll(r *reorder, now time.Time, seqs ...uint16) []handed {
	var out []handed
	for _, s := range seqs {
		r.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: s}}, now, func(p *rtp.Packet, lost bool) {
			out = append(out, handed{p.SequenceNumber, lost})
		})
	}
	return out
}

func equalHanded(a, b []handed) bool {
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

func TestReorderHandsOverInOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		name string
		seqs []uint16
		want []handed
	}{
		{"in order across the wrap", []uint16{65534, 65535, 0, 1}, []handed{{65534, false}, {65535, false}, {0, false}, {1, false}}},
		{"swapped", []uint16{10, 12, 11, 13}, []handed{{10, false}, {11, false}, {12, false}, {13, false}}},
		{"duplicate and late dropped", []uint16{10, 11, 11, 10, 12}, []handed{{10, false}, {11, false}, {12, false}}},
		{"gap beyond the window given up", []uint16{10, 12, 13, 14, 15, 16}, []handed{{10, false}, {12, true}, {13, false}, {14, false}, {15, false}, {16, false}}},
		{"jump far ahead", []uint16{10, 30000, 30001}, []handed{{10, false}, {30000, true}, {30001, false}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReorder(4, time.Second)
			if got := pushAll(r, now, c.seqs...); !equalHanded(got, c.want) {
				t.Fatalf("handed over %v, want %v", got, c.want)
			}
		})
	}
}

func TestReorderGivesUpAfterMaxDelay(t *testing.T) {
	r := newReorder(64, 100*time.Millisecond)
	now := time.Unix(1000, 0)
	if got := pushAll(r, now, 1, 3); !equalHanded(got, []handed{{1, false}}) {
		t.Fatalf("handed over %v", got)
	}
	var got []handed
	emit := func(p *rtp.Packet, lost bool) { got = append(got, handed{p.SequenceNumber, lost}) }
	r.expire(now.Add(99*time.Millisecond), emit)
	if len(got) != 0 {
		t.Fatalf("gave up before the delay: %v", got)
	}
	r.expire(now.Add(100*time.Millisecond), emit)
	if !equalHanded(got, []handed{{3, true}}) {
		t.Fatalf("handed over %v, want 3 after a loss", got)
	}
	if r.gaps != 1 {
		t.Fatalf("%d gaps, want 1", r.gaps)
	}
}
