package relay

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// audioGroup returns frames of one group of Opus packets of the given sizes
// (each filled with its index), linked and padded as the hub does.
func audioGroup(sizes ...int) []*frame {
	g := make([]*frame, len(sizes))
	for i, n := range sizes {
		g[i] = newFrame(false, false, uint32(960*i), 0, uint64(i), [][]byte{bytes.Repeat([]byte{byte(i + 1)}, n)}, false)
	}
	padGroup(g)
	return g
}

func TestPadGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
		// want is each packet's size on the wire (payload + padding).
		want []int
	}{
		{"five", []int{160, 170, 150, 165, 120}, []int{170, 170, 170, 170, 120}},
		{"last largest", []int{150, 152, 190}, []int{190, 190, 190}},
		{"one size", []int{160, 160}, []int{160, 160}},
		{"spread over 255", []int{10, 300, 290}, []int{10, 300, 290}},
		{"alone", []int{200}, []int{200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := audioGroup(tc.sizes...)
			for i, f := range g {
				p := f.pkts[0]
				if len(p.payload) != tc.want[i] || f.bytes != tc.want[i] {
					t.Fatalf("packet %d: %d bytes (frame says %d), want %d", i, len(p.payload), f.bytes, tc.want[i])
				}
				if p.padding != (tc.want[i] != tc.sizes[i]) {
					t.Fatalf("packet %d: padding %v", i, p.padding)
				}
				// What a receiver reads: the packet as sent, parsed.
				h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Padding: p.padding}
				wire, err := h.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var got rtp.Packet
				if err := got.Unmarshal(append(wire, p.payload...)); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if want := bytes.Repeat([]byte{byte(i + 1)}, tc.sizes[i]); !bytes.Equal(got.Payload, want) {
					t.Fatalf("packet %d: receiver reads %d bytes, want the %d sent", i, len(got.Payload), len(want))
				}
			}
		})
	}
}

// groupedAudio returns the messages of a stream with only Opus audio (each
// bus message's packets, More on all but its last, as Message.Frames
// splits them): groups of the given packet counts, packet sizes varying.
func groupedAudio(t testing.TB, name string, counts ...int) ([]bus.Message, [][]byte) {
	t.Helper()
	ann := tsframes.Announcement{Tracks: []tsframes.Track{{PID: 257, Codec: tsframes.CodecOpus, Kind: tsframes.KindAudio, WebRTC: true, SampleRate: 48000, Channels: 2}}}
	a := bus.NewAnnouncement(name, 1, ann)
	msgs := []bus.Message{{Seq: 1, Epoch: 1, Tracks: &a}}
	var payloads [][]byte
	pts := int64(90000)
	for _, n := range counts {
		for i := range n {
			data := bytes.Repeat([]byte{byte(len(payloads))}, 100+(len(payloads)*37)%90)
			payloads = append(payloads, data)
			msgs = append(msgs, bus.Message{Seq: uint64(len(msgs) + 1), Epoch: 1, Frame: tsframes.Frame{
				PID: 257, Codec: tsframes.CodecOpus, Kind: tsframes.KindAudio, PTS: pts, DTS: pts, Duration: 1800,
				Data: data, More: i < n-1,
			}})
			pts += 1800
		}
	}
	return msgs, payloads
}

func TestViewerSendsAudioGroupInOneBatch(t *testing.T) {
	checkLeaks(t)
	msgs, payloads := groupedAudio(t, "s1", 5, 1, 3, 5)
	r, b := newTestRelay(t, Config{AudioGroupPadding: true}, nil)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	sb := &spanBatcher{rec: rec}
	v.SetBatcher(sb)
	v.Start()
	b.send("s1", msgs...)
	pkts := rec.waitCount(t, len(payloads))
	v.Close() // the writer is done with the batcher
	if sb.bad != "" || sb.open {
		t.Fatalf("batcher misused: %q, open %v", sb.bad, sb.open)
	}
	if want := []int{5, 3, 5}; !slices.Equal(sb.spans, want) {
		t.Fatalf("batches of %v packets, want one per group of several: %v", sb.spans, want)
	}
	// Every packet as the source had it, in order, 20 ms apart; within a
	// group all but the last of one size on the wire.
	checkUnpadded(t, pkts, payloads)
	for i, p := range pkts {
		if i > 0 {
			if d := p.hdr.Timestamp - pkts[i-1].hdr.Timestamp; d != 960 {
				t.Fatalf("packet %d: timestamp step %d, want 960", i, d)
			}
			if d := p.hdr.SequenceNumber - pkts[i-1].hdr.SequenceNumber; d != 1 {
				t.Fatalf("packet %d: sequence step %d", i, d)
			}
		}
	}
	for _, g := range [][2]int{{0, 5}, {6, 9}, {9, 14}} {
		group := pkts[g[0]:g[1]]
		size := len(group[0].payload)
		for i, p := range group[:len(group)-1] {
			if len(p.payload) != size {
				t.Fatalf("group at %d: packet %d is %d bytes on the wire, the first %d", g[0], i, len(p.payload), size)
			}
		}
		if last := group[len(group)-1]; len(last.payload) > size {
			t.Fatalf("group at %d: last packet %d bytes, more than the run's %d", g[0], len(last.payload), size)
		}
	}
	if st := v.Stats().Audio; st.Packets != uint64(len(payloads)) || st.Frames != uint64(len(payloads)) {
		t.Fatalf("audio stats %+v, want %d packets and frames", st, len(payloads))
	}
}

// TestPaddedAudioGroupsReachPionIntact sends grouped audio over a real
// PeerConnection and the node's send path (one UDP socket, udpbatch with
// GSO): the client's pion reads every Opus packet as the source had it (the
// padding removed), and each group of several packets left in one GSO
// send.
func TestPaddedAudioGroupsReachPionIntact(t *testing.T) {
	checkLeaks(t)
	counts := []int{5, 5, 1, 3, 5, 2}
	msgs, payloads := groupedAudio(t, "s1", counts...)
	r, b := newTestRelay(t, Config{AudioGroupPadding: true}, nil)
	ann := firstAnnouncement(t, msgs)
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	mux := newLoopbackMux(t)
	p := connectPeerWith(t, v, ann, peerOptions{server: &mux.settings})
	v.SetBatcher(newPairBatch(t, mux.group, p.server))
	v.Start()
	before := mux.group.Stats()
	b.send("s1", msgs...)
	got := p.audio.waitCount(t, len(payloads))
	for i, pkt := range got {
		if !bytes.Equal(pkt.payload, payloads[i]) {
			t.Fatalf("packet %d: client read %d bytes, want the source's %d", i, len(pkt.payload), len(payloads[i]))
		}
	}
	after := mux.group.Stats()
	groups, grouped := 0, 0
	for _, n := range counts {
		if n > 1 {
			groups++
			grouped += n
		}
	}
	// Only batches count here (not the RTCP, nor a lone packet): one
	// GSO send per group of several packets, each with all of them.
	sends, gso, datagrams := after.Sends-before.Sends, after.GSOSends-before.GSOSends, after.Datagrams-before.Datagrams
	if sends != uint64(groups) || gso != uint64(groups) || datagrams != uint64(grouped) || after.SendErrors != before.SendErrors {
		t.Fatalf("%d sends, %d with GSO, %d datagrams (stats %+v): want %d GSO sends of %d datagrams in all",
			sends, gso, datagrams, after, groups, grouped)
	}
}

// TestAudioGroupWithoutItsLastPacket: a group whose last packet the hub
// does not forward (empty) still goes out at once, not with the next group.
func TestAudioGroupWithoutItsLastPacket(t *testing.T) {
	checkLeaks(t)
	msgs, payloads := groupedAudio(t, "s1", 3, 3)
	msgs[3].Frame.Data = nil // the first group's last packet
	r, b := newTestRelay(t, Config{AudioGroupPadding: true}, nil)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	v.Start()
	b.send("s1", msgs[:4]...) // the first group only
	checkUnpadded(t, rec.waitCount(t, 2), payloads[:2])
	b.send("s1", msgs[4:]...)
	if got := rec.waitCount(t, 5); len(got) != 5 {
		t.Fatalf("%d packets, want 5", len(got))
	}
}

// checkUnpadded checks that the payloads of pkts, without their RTP
// padding, are want, in order.
func checkUnpadded(t *testing.T, pkts []sent, want [][]byte) {
	t.Helper()
	for i, p := range pkts[:len(want)] {
		payload := p.payload
		if p.hdr.Padding {
			payload = payload[:len(payload)-int(payload[len(payload)-1])]
		}
		if !bytes.Equal(payload, want[i]) {
			t.Fatalf("packet %d: %d bytes without the padding, want the source's %d", i, len(payload), len(want[i]))
		}
	}
}
