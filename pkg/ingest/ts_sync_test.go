package ingest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
)

func TestCheckSync(t *testing.T) {
	ts := tstest.Read(t, "av.ts")
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	packets := func(n int) []byte { return bytes.Repeat(append([]byte{0x47}, make([]byte, 187)...), n) }
	for _, c := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"ts", ts, true},
		{"one packet", ts[:188], true},
		{"two packets", packets(2), true},
		{"garbage before the first packet", append([]byte("junk"), packets(3)...), true},
		{"random", random, false},
		{"shorter than a packet", ts[:187], false},
		{"text", bytes.Repeat([]byte("G not MPEG-TS "), 100), false},
		{"second sync byte missing", append(packets(1), make([]byte, 376)...), false},
		{"sync too late", append(make([]byte, 188), packets(3)...), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := checkSync(bytes.NewReader(c.body))
			if !c.ok {
				if !errors.Is(err, ErrNotTS) || StatusCode(err) != 400 {
					t.Fatalf("err = %v, want ErrNotTS (400)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, c.body) {
				t.Fatalf("read back %d bytes (%v), want the %d bytes of the body", len(got), err, len(c.body))
			}
		})
	}
}
