package rtmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// chunked returns msgs as gortmplib's writer chunks them, after a
// handshake's worth of bytes; a message of type 1 (Set Chunk Size) changes
// the chunk size of the next ones, as it does for the reader.
func chunked(t testing.TB, msgs []*rawmessage.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.Write(make([]byte, handshakeBytes))
	w := rawmessage.NewWriter(&buf, bytecounter.NewWriter(&buf), false)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
		// A size the guard refuses is not applied (gortmplib's writer
		// would loop on 0).
		if m.Type != msgSetChunkSize {
			continue
		}
		if size := binary.BigEndian.Uint32(m.Body); size > 0 && size <= maxChunkSize {
			w.SetChunkSize(size)
		}
	}
	return buf.Bytes()
}

func setChunkSize(size uint32) *rawmessage.Message {
	return &rawmessage.Message{ChunkStreamID: 2, Type: msgSetChunkSize, Body: binary.BigEndian.AppendUint32(nil, size)}
}

func message(csid, typ byte, ts time.Duration, size int) *rawmessage.Message {
	return &rawmessage.Message{ChunkStreamID: csid, Type: typ, Timestamp: ts, MessageStreamID: 1, Body: bytes.Repeat([]byte{typ}, size)}
}

// feed gives data to a new guard in random slices and returns its error.
func feed(data []byte, seed uint64) error {
	g := newChunkGuard()
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(3000))
		if err := g.check(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// guardCases: chunk streams a publisher may send, and hostile ones with
// the limit they break.
var guardCases = []struct {
	name string
	msgs []*rawmessage.Message
	says string // "" when the stream is accepted
}{
	{"commands and media at the default chunk size", []*rawmessage.Message{
		message(3, 20, 0, 300), message(6, 9, 0, 7), message(6, 9, 40*time.Millisecond, 200_000),
		message(4, 8, 20*time.Millisecond, 400), message(4, 8, 40*time.Millisecond, 400), message(3, 18, 0, 2000),
	}, ""},
	{"a larger chunk size set first", []*rawmessage.Message{
		setChunkSize(60000), message(3, 20, 0, 300), message(6, 9, 0, 300_000), message(4, 8, 0, 100),
		message(6, 9, 33*time.Millisecond, 70_000), setChunkSize(1), message(4, 8, 20*time.Millisecond, 300),
	}, ""},
	{"extended timestamps", []*rawmessage.Message{
		message(6, 9, 0xFFFFFF*time.Millisecond, 5000), message(6, 9, (0xFFFFFF+33)*time.Millisecond, 5000),
		message(4, 8, 0x1000000*time.Millisecond, 300),
	}, ""},
	{"an empty message", []*rawmessage.Message{message(3, 20, 0, 0), message(3, 20, 0, 10)}, ""},
	{"an AMF message at the limit", []*rawmessage.Message{message(3, 18, 0, MaxAMFMessage)}, ""},
	{"chunk size 0", []*rawmessage.Message{message(3, 20, 0, 100), setChunkSize(0), message(3, 20, 0, 100)}, "chunk size 0"},
	{"chunk size 2^31", []*rawmessage.Message{setChunkSize(1 << 31)}, "chunk size 2147483648"},
	{"an AMF0 command bomb", []*rawmessage.Message{setChunkSize(65536), message(3, 20, 0, 10<<20)}, "AMF message (type 20) of 10485760 bytes"},
	{"an AMF0 data message over the limit", []*rawmessage.Message{message(5, 18, 0, MaxAMFMessage+1)}, "AMF message (type 18)"},
	{"an AMF3 command", []*rawmessage.Message{message(3, 17, 0, 1<<20)}, "AMF message (type 17)"},
}

func TestChunkGuard(t *testing.T) {
	for _, c := range guardCases {
		t.Run(c.name, func(t *testing.T) {
			data := chunked(t, c.msgs)
			for seed := range uint64(8) {
				err := feed(data, seed)
				switch {
				case c.says == "" && err != nil:
					t.Fatalf("seed %d: %v, want the stream accepted", seed, err)
				case c.says != "" && (!errors.Is(err, errHostile) || !bytes.Contains([]byte(err.Error()), []byte(c.says))):
					t.Fatalf("seed %d: %v, want errHostile saying %q", seed, err, c.says)
				}
			}
			if c.says != "" {
				return
			}
			// gortmplib reads the same stream back, message for message.
			r := rawmessage.NewReader(bytes.NewReader(data[handshakeBytes:]), bytecounter.NewReader(bytes.NewReader(nil)), func(uint32) error { return nil })
			for i, m := range c.msgs {
				got, err := r.Read()
				if err != nil || got.Type != m.Type || !bytes.Equal(got.Body, m.Body) {
					t.Fatalf("gortmplib reads message %d as %v (err %v)", i, got, err)
				}
				if m.Type == msgSetChunkSize {
					if err := r.SetChunkSize(binary.BigEndian.Uint32(m.Body)); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func TestChunkGuardBoundsChunkStreams(t *testing.T) {
	var msgs []*rawmessage.Message
	for id := range byte(maxChunkStreams + 1) {
		msgs = append(msgs, message(2+id%62, 8, 0, 10))
	}
	if err := feed(chunked(t, msgs), 1); err != nil {
		t.Fatalf("%d messages on 62 chunk streams: %v", len(msgs), err)
	}
	data := chunked(t, nil)
	data = append(data, 0x01) // chunk stream id 1: a 3-byte basic header
	if err := feed(data, 1); !errors.Is(err, errHostile) {
		t.Fatalf("an extended chunk stream id: %v, want errHostile", err)
	}
}

// FuzzChunkGuard: the guard takes any input without panicking, and
// accepts every stream of guardCases that it accepts whole.
func FuzzChunkGuard(f *testing.F) {
	for _, c := range guardCases {
		if data := chunked(f, c.msgs); len(data) < 1<<16 {
			f.Add(data[handshakeBytes:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := append(make([]byte, handshakeBytes), data...)
		err := newChunkGuard().check(whole)
		if err != nil && !errors.Is(err, errHostile) {
			t.Fatalf("error %v does not wrap errHostile", err)
		}
		if err == nil {
			if err2 := feed(whole, uint64(len(data))); err2 != nil {
				t.Fatalf("accepted whole, refused in slices: %v", err2)
			}
		}
	})
}
