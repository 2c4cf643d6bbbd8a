package tsframes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestFrameDataOwned: the receiver may keep and overwrite Data; later frames
// are unaffected and kept Data is never changed by the Demuxer.
func TestFrameDataOwned(t *testing.T) {
	data := readFixture(t, "av")
	clean := demuxBytes(t, data)

	var copies [][]byte
	c := &collector{t: t}
	c.onFrame = func(f *Frame) error {
		copies = append(copies, append([]byte(nil), f.Data...))
		return nil
	}
	kept := demuxWith(t, bytes.NewReader(data), c)

	var scribbled [][]byte
	s := &collector{t: t}
	s.onFrame = func(f *Frame) error {
		scribbled = append(scribbled, append([]byte(nil), f.Data...))
		for i := range f.Data {
			f.Data[i] = 0xAA
		}
		f.Data = append(f.Data, 1, 2, 3) // must not reach another frame
		return nil
	}
	demuxWith(t, bytes.NewReader(data), s)

	if len(kept.frames) != len(clean.frames) || len(scribbled) != len(clean.frames) {
		t.Fatalf("frame counts %d %d %d", len(kept.frames), len(scribbled), len(clean.frames))
	}
	for i := range clean.frames {
		if !bytes.Equal(kept.frames[i].Data, copies[i]) {
			t.Fatalf("frame %d: Data changed after delivery", i)
		}
		if !bytes.Equal(scribbled[i], clean.frames[i].Data) {
			t.Fatalf("frame %d: overwriting earlier frames changed it", i)
		}
	}
}

// blockingReader serves data, then blocks until closed.
type blockingReader struct {
	data   []byte
	closed chan struct{}
	once   sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.closed
	return 0, io.ErrClosedPipe
}

func (r *blockingReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

func TestRunStopsOnContext(t *testing.T) {
	data := readFixture(t, "av")
	r := &blockingReader{data: data[:len(data)/2], closed: make(chan struct{})}
	d := NewDemuxer(r, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	gotFrame := make(chan struct{})
	var once sync.Once
	c := &collector{t: t}
	c.onFrame = func(*Frame) error {
		once.Do(func() { close(gotFrame) })
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, c) }()

	select {
	case <-gotFrame:
	case <-time.After(testDeadline):
		t.Fatal("no frame")
	}
	cancel()
	_ = r.Close() // unblock the pending Read, as the contract asks
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Run did not return after cancel + close")
	}
	if d.Stats().Frames == 0 {
		t.Error("no frames counted")
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := NewDemuxer(bytes.NewReader(readFixture(t, "av")), Options{})
	if err := d.Run(ctx, &collector{t: t}); err != context.Canceled {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if st := d.Stats(); st.Frames != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v after a canceled start", st)
	}
	if err := d.Run(t.Context(), &collector{t: t}); err == nil {
		t.Error("second Run accepted")
	}
}

// failingReader serves data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestRunReadError(t *testing.T) {
	boom := errors.New("boom")
	data := readFixture(t, "av")
	for _, readErr := range []error{boom, io.ErrUnexpectedEOF} {
		res := demux(t, &failingReader{data: data[:len(data)/2], err: readErr})
		if !errors.Is(res.err, readErr) {
			t.Errorf("Run = %v, want it to wrap %v", res.err, readErr)
		}
		if len(res.frames) == 0 {
			t.Errorf("%v: no frames before the error", readErr)
		}
	}
}

func TestRunHandlerError(t *testing.T) {
	boom := errors.New("handler says no")
	data := readFixture(t, "av")

	c := &collector{t: t}
	c.onAnn = func(Announcement) error { return boom }
	res := demuxWith(t, bytes.NewReader(data), c)
	if !errors.Is(res.err, boom) || len(res.frames) != 0 {
		t.Errorf("Tracks error: Run = %v, %d frames after it", res.err, len(res.frames))
	}

	c = &collector{t: t}
	c.onFrame = func(*Frame) error {
		if len(c.frames) == 10 {
			return boom
		}
		return nil
	}
	res = demuxWith(t, bytes.NewReader(data), c)
	if !errors.Is(res.err, boom) || len(res.frames) != 10 || res.stats.Frames != 9 {
		t.Errorf("Frame error: Run = %v, %d frames, %d counted", res.err, len(res.frames), res.stats.Frames)
	}
}

// TestStatsConcurrent reads Stats while Run works (go test -race).
func TestStatsConcurrent(t *testing.T) {
	data := readFixture(t, "gop4")
	d := NewDemuxer(bytes.NewReader(data), Options{})
	stop := make(chan struct{})
	type poll struct {
		last     uint64
		wentBack bool
	}
	polled := make(chan poll)
	go func() {
		var p poll
		for {
			select {
			case <-stop:
				polled <- p
				return
			default:
				st := d.Stats()
				p.wentBack = p.wentBack || st.Bytes < p.last
				p.last = st.Bytes
				runtime.Gosched()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	err := d.Run(ctx, &collector{t: t})
	close(stop)
	p := <-polled
	if err != nil {
		t.Fatal(err)
	}
	if p.wentBack {
		t.Error("Stats().Bytes went back")
	}
	last := p.last
	if st := d.Stats(); st.Bytes != uint64(len(data)) || last > st.Bytes {
		t.Errorf("stats %+v, polled %d", st, last)
	}
}

func BenchmarkDemux(b *testing.B) {
	data := readFixture(b, "av")
	h := &countingHandler{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d := NewDemuxer(bytes.NewReader(data), Options{})
		if err := d.Run(b.Context(), h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(h.frames)/b.Elapsed().Seconds(), "frames/s")
}

type countingHandler struct{ frames int }

func (h *countingHandler) Tracks(Announcement) error { return nil }
func (h *countingHandler) Frame(Frame) error         { h.frames++; return nil }

// BenchmarkDemuxLargeAU: a stream whose keyframe is a 6 MiB access unit (see
// TestLargeAccessUnit); the cost is linear in the PES size.
func BenchmarkDemuxLargeAU(b *testing.B) {
	data, _ := largeAUStream(b, 6<<20)
	h := &countingHandler{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d := NewDemuxer(bytes.NewReader(data), Options{})
		if err := d.Run(b.Context(), h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(h.frames)/b.Elapsed().Seconds(), "frames/s")
}
