package tsframes

import (
	"bytes"
	"errors"
	"testing"
)

func TestNextOpusAccessUnit(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 300)
	cases := []struct {
		name   string
		in     []byte
		packet []byte
		n      int
	}{
		{"plain", []byte{0x7f, 0xe0, 0x02, 0xf8, 0x01, 0x99}, []byte{0xf8, 0x01}, 5},
		{"empty packet", []byte{0x7f, 0xe0, 0x00, 0x7f}, []byte{}, 3},
		{"size over 255", append([]byte{0x7f, 0xe0, 0xff, 0x2d}, long...), long, 304},
		{"start and end trim", []byte{0x7f, 0xf8, 0x01, 0x00, 0x10, 0x00, 0x20, 0x42}, []byte{0x42}, 8},
		{"control extension", []byte{0x7f, 0xe4, 0x01, 0x02, 0xee, 0xee, 0x42}, []byte{0x42}, 7},
	}
	for _, c := range cases {
		packet, n, err := nextOpusAccessUnit(c.in)
		if err != nil || n != c.n || !bytes.Equal(packet, c.packet) {
			t.Errorf("%s: got %x, %d, %v; want %x, %d, nil", c.name, packet, n, err, c.packet, c.n)
		}
	}
	bad := map[string][]byte{
		"too short":            {0x7f, 0xe0},
		"wrong prefix":         {0x7f, 0x00, 0x01, 0x42},
		"size cut short":       {0x7f, 0xe0, 0xff},
		"payload cut short":    {0x7f, 0xe0, 0x05, 0x01},
		"extension cut short":  {0x7f, 0xe4, 0x01},
		"extension past input": {0x7f, 0xe4, 0x01, 0x09, 0x42},
	}
	for name, in := range bad {
		if _, _, err := nextOpusAccessUnit(in); !errors.Is(err, errOpusAccessUnit) {
			t.Errorf("%s: err %v, want errOpusAccessUnit", name, err)
		}
	}
}
