package tsframes

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scte35Cases are whole splice_info_sections and what ParseSpliceInfo reads
// of them; they also seed FuzzSCTE35.
var scte35Cases = []struct {
	name string
	sec  func(testing.TB) []byte
	want SpliceInfo
}{
	{
		// A time_signal with a segmentation descriptor, as encoders send it
		// (the example of the comcast/scte35-js decoder).
		name: "time_signal with a segmentation descriptor",
		sec: func(t testing.TB) []byte {
			return mustBase64(t, "/DA0AAAAAAAAAAAABQb+ADAQ6QAeAhxDVUVJQAAAO3/PAAEUrEoICAAAAAAg+2UBNAAANvrtoQ==")
		},
		want: SpliceInfo{Command: TimeSignal, Timed: true, SpliceTime: 3150057},
	},
	{
		// splice_insert, program mode, out of network, 30 s break with
		// auto_return; pts_time 0x123456689 plus pts_adjustment 0x100.
		name: "splice_insert with a break duration and a pts_adjustment",
		sec: func(t testing.TB) []byte {
			return mustHex(t, "fc3025000000000100fffff014054800008f7fefff23456689fe002932e000000000000071d4460e")
		},
		want: SpliceInfo{Command: SpliceInsert, Timed: true, SpliceTime: 0x123456789, PTSAdjustment: 0x100,
			EventID: 0x4800008f, OutOfNetwork: true, Duration: 2700000, AutoReturn: true},
	},
	{
		name: "splice_insert immediate, back to the network",
		sec: func(t testing.TB) []byte {
			return mustHex(t, "fc301b000000000000fffff00a05000000077f5f0000000000008f477231")
		},
		want: SpliceInfo{Command: SpliceInsert, EventID: 7},
	},
	{
		name: "splice_insert cancel",
		sec:  func(t testing.TB) []byte { return mustHex(t, "fc3016000000000000fffff0050500000007ff0000d3897f26") },
		want: SpliceInfo{Command: SpliceInsert, EventID: 7, Cancel: true},
	},
	{
		name: "splice_null",
		sec:  func(t testing.TB) []byte { return mustHex(t, "fc3011000000000000fffff000000000761dd3b6") },
		want: SpliceInfo{Command: SpliceNull},
	},
	{
		// pts_time + pts_adjustment wraps at 2^33.
		name: "time_signal whose adjusted time wraps",
		sec: func(testing.TB) []byte {
			return AppendSpliceInfo(nil, SpliceInfo{Command: TimeSignal, Timed: true, SpliceTime: 5, PTSAdjustment: 1 << 32})
		},
		want: SpliceInfo{Command: TimeSignal, Timed: true, SpliceTime: 5, PTSAdjustment: 1 << 32},
	},
}

func TestParseSpliceInfo(t *testing.T) {
	for _, c := range scte35Cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSpliceInfo(c.sec(t))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestAppendSpliceInfo: the encoder writes what the parser reads, byte for
// byte the sections of the table for the commands it writes.
func TestAppendSpliceInfo(t *testing.T) {
	for _, c := range scte35Cases[1:] {
		t.Run(c.name, func(t *testing.T) {
			sec := c.sec(t)
			if got := AppendSpliceInfo(nil, c.want); hex.EncodeToString(got) != hex.EncodeToString(sec) {
				t.Fatalf("encoded %x\nwant    %x", got, sec)
			}
		})
	}
}

func TestParseSpliceInfoRefuses(t *testing.T) {
	good := mustHex(t, "fc3025000000000100fffff014054800008f7fefff23456689fe002932e000000000000071d4460e")
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	for name, sec := range map[string][]byte{
		"empty":             nil,
		"too short":         good[:12],
		"bad CRC":           mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"flipped payload":   mod(func(b []byte) []byte { b[20] ^= 0x40; return b }),
		"wrong table_id":    mod(func(b []byte) []byte { b[0] = 0xFD; return b }),
		"length too long":   mod(func(b []byte) []byte { b[2]++; return b }),
		"cut":               good[:len(good)-1],
		"encrypted":         recrc(mod(func(b []byte) []byte { b[4] |= 0x80; return b })),
		"command too long":  recrc(mod(func(b []byte) []byte { b[12] = 0x30; return b })),
		"truncated command": recrc(AppendSpliceInfo(nil, SpliceInfo{Command: SpliceInsert})[:0]),
		"insert cut short": func() []byte {
			// splice_insert of 5 bytes: no flags byte.
			b := mustHex(t, "fc3016000000000000fffff0050500000007ff0000d3897f26")
			b[18] = 0x7F // not cancelled: the flags byte is missing
			return recrc(b)
		}(),
	} {
		_, err := ParseSpliceInfo(sec)
		if !errors.Is(err, ErrSCTE35) {
			t.Errorf("%s: err %v, want ErrSCTE35", name, err)
		}
	}
}

// recrc recomputes the CRC of a section (which must be at least 4 bytes).
func recrc(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	c := CRC32MPEG(b[:len(b)-4])
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return b
}

// FuzzSCTE35 feeds arbitrary bytes to ParseSpliceInfo: it never panics, and
// what it reads of a splice_insert or a time_signal is written back by
// AppendSpliceInfo into a section that reads the same.
func FuzzSCTE35(f *testing.F) {
	for _, c := range scte35Cases {
		f.Add(c.sec(f))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		si, err := ParseSpliceInfo(b)
		if err != nil {
			if !errors.Is(err, ErrSCTE35) {
				t.Fatalf("error %v does not wrap ErrSCTE35", err)
			}
			return
		}
		if si.Command != SpliceInsert && si.Command != TimeSignal {
			return
		}
		if si.Duration == 0 {
			si.AutoReturn = false // written only with a break_duration
		}
		again, err := ParseSpliceInfo(AppendSpliceInfo(nil, si))
		if err != nil || again != si {
			t.Fatalf("read %+v, written and read again %+v (%v)", si, again, err)
		}
	})
}

// TestRetimeSpliceInfo: the copy's splice time is the one asked for, the
// rest is the same; a section without a time is returned as it is.
func TestRetimeSpliceInfo(t *testing.T) {
	for _, c := range scte35Cases {
		sec := c.sec(t)
		out := RetimeSpliceInfo(sec, 1<<33+500)
		got, err := ParseSpliceInfo(out)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := c.want
		if want.Timed {
			want.SpliceTime = 500
			want.PTSAdjustment = got.PTSAdjustment
		} else if &out[0] != &sec[0] {
			t.Errorf("%s: a section without a time was copied", c.name)
		}
		if got != want || len(out) != len(sec) {
			t.Errorf("%s: %+v, want %+v", c.name, got, want)
		}
	}
}
