package whepbench

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

func extended(t *testing.T, payload []byte) rtp.Packet {
	p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 2, Timestamp: 9, SSRC: 7}, Payload: payload}
	if err := p.SetExtension(1, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseRTP(t *testing.T) {
	payload := []byte{0x65, 1, 2, 3, 4}
	cases := []struct {
		name string
		pkt  rtp.Packet
	}{
		{"plain", rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 96, SequenceNumber: 65535, Timestamp: 0xfffffff0, SSRC: 7}, Payload: payload}},
		{"csrc", rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 9, SSRC: 7, CSRC: []uint32{1, 2, 3}}, Payload: payload}},
		{"extension", extended(t, payload)},
		{"padding", rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, SequenceNumber: 3, Timestamp: 9, SSRC: 7}, Payload: payload, PaddingSize: 3}},
	}
	for _, c := range cases {
		b, err := c.pkt.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h, ok := parseRTP(b)
		if !ok || h.marker != c.pkt.Marker || h.seq != c.pkt.SequenceNumber || h.timestamp != c.pkt.Timestamp || !bytes.Equal(h.payload, payload) {
			t.Errorf("%s: parseRTP = %+v, %v; want marker %v seq %d ts %d payload %x", c.name, h, ok,
				c.pkt.Marker, c.pkt.SequenceNumber, c.pkt.Timestamp, payload)
		}
	}
	bad := map[string][]byte{
		"short":           {0x80, 0x60, 0, 1},
		"version 1":       {0x40, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0x65},
		"csrc beyond end": {0x83, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1},
		"extension cut":   {0x90, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0xBE, 0xDE},
		"extension long":  {0x90, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0xBE, 0xDE, 0, 9, 0, 0, 0, 0},
		"padding too big": {0xA0, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0x65, 200},
	}
	for name, b := range bad {
		if h, ok := parseRTP(b); ok {
			t.Errorf("%s: parseRTP = %+v, ok", name, h)
		}
	}
}
