// Package tstest gives tests their MPEG-TS inputs: the fixtures of the
// repository's testdata (made by testdata/gen.sh), what pkg/tsframes makes
// of them (the reference a test compares its output with), and a UDP
// sender with flow control.
package tstest

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Path returns the absolute path of testdata/name.
func Path(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("tstest: cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", name)
}

// Read returns the bytes of testdata/name.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Demuxed is what tsframes delivered, in order; it is a tsframes.Sink.
type Demuxed struct {
	Announcements []tsframes.Announcement
	Frames        []tsframes.Frame
	// Events are both, interleaved as they came.
	Events []Event
}

// Event is one call of a tsframes.Sink: an announcement or a frame.
type Event struct {
	Announcement *tsframes.Announcement
	Frame        *tsframes.Frame
}

// Tracks keeps a.
func (d *Demuxed) Tracks(a tsframes.Announcement) error {
	d.Announcements = append(d.Announcements, a)
	d.Events = append(d.Events, Event{Announcement: &a})
	return nil
}

// Frame keeps f.
func (d *Demuxed) Frame(f tsframes.Frame) error {
	d.Frames = append(d.Frames, f)
	d.Events = append(d.Events, Event{Frame: &f})
	return nil
}

// Kind returns the frames of kind k, in order.
func (d *Demuxed) Kind(k tsframes.Kind) []tsframes.Frame {
	var out []tsframes.Frame
	for _, f := range d.Frames {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// demuxTimeout bounds Demux.
const demuxTimeout = 20 * time.Second

// Demux returns what tsframes makes of data directly; the test fails when
// that is no frame or no announcement.
func Demux(t testing.TB, data []byte) *Demuxed {
	t.Helper()
	return DemuxWith(t, data, tsframes.Options{})
}

// DemuxWith is Demux with the demuxer's options opts (SourceAudio: the
// audio WebRTC cannot carry too, as the ingest reads it).
func DemuxWith(t testing.TB, data []byte, opts tsframes.Options) *Demuxed {
	t.Helper()
	var d Demuxed
	ctx, cancel := context.WithTimeout(t.Context(), demuxTimeout)
	defer cancel()
	if err := tsframes.NewDemuxer(bytes.NewReader(data), opts).Run(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Frames) == 0 || len(d.Announcements) == 0 {
		t.Fatalf("demuxed %d frames, %d announcements", len(d.Frames), len(d.Announcements))
	}
	return &d
}

// sendWindow is how many datagrams SendDatagrams has in flight at most.
const sendWindow = 32

// SendDatagrams sends data to addr in datagrams of 7 TS packets, with at
// most sendWindow in flight: read is the receiver's count of datagrams
// read, and SendDatagrams waits for it, so that a busy machine does not
// overflow the loopback socket buffer. It fails the test when the receiver
// stops reading for timeout.
func SendDatagrams(t testing.TB, addr string, read func() uint64, data []byte, timeout time.Duration) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	base := read()
	deadline := time.Now().Add(timeout)
	for sent := uint64(0); len(data) > 0; sent++ {
		for base+sent > read()+sendWindow {
			if time.Now().After(deadline) {
				t.Fatalf("receiver read %d of %d datagrams", read()-base, sent)
			}
			time.Sleep(100 * time.Microsecond) // flow control: polling the read count
		}
		n := min(len(data), 7*188)
		if _, err := conn.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// SameFramesPerTrack fails unless got holds the frames of want, each track
// (PID) in the same order: the ingest publishes an MPEG-TS source's video
// after the audio of its PTS, so the tracks are interleaved otherwise than
// in the file.
func SameFramesPerTrack(t testing.TB, got, want []tsframes.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	g, w := ByPID(got), ByPID(want)
	for pid, wf := range w {
		gf := g[pid]
		if len(gf) != len(wf) {
			t.Fatalf("PID %d: got %d frames, want %d", pid, len(gf), len(wf))
		}
		for i := range wf {
			a, b := gf[i], wf[i]
			if a.PTS != b.PTS || a.DTS != b.DTS || a.Key != b.Key || a.Duration != b.Duration || a.Codec != b.Codec || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("PID %d frame %d differs: got pts %d key %v %d bytes, want pts %d key %v %d bytes",
					pid, i, a.PTS, a.Key, len(a.Data), b.PTS, b.Key, len(b.Data))
			}
		}
	}
}

// ByPID splits frames by track (PID), each in its order.
func ByPID(frames []tsframes.Frame) map[uint16][]tsframes.Frame {
	m := make(map[uint16][]tsframes.Frame)
	for _, f := range frames {
		m[f.PID] = append(m[f.PID], f)
	}
	return m
}
