package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDeadline bounds every wait of a test.
const testDeadline = 20 * time.Second

// fakePub records what a publication publishes.
type fakePub struct {
	f      *fakeFactory
	stream string
	epoch  uint64
	onAck  func(time.Duration, error)

	mu     sync.Mutex
	anns   []tsframes.Announcement
	frames []tsframes.Frame
	stats  []bus.IngestStats
	closed bool

	publishErr error
	got        chan struct{} // receives (non-blocking) after every frame
	closedCh   chan struct{} // closed by Shutdown
}

func (p *fakePub) Announce(_ context.Context, a tsframes.Announcement) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return bus.ErrClosed
	}
	p.anns = append(p.anns, a)
	return nil
}

func (p *fakePub) Publish(ctx context.Context, f tsframes.Frame) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return bus.ErrClosed
	}
	if p.publishErr != nil {
		p.mu.Unlock()
		return p.publishErr
	}
	p.frames = append(p.frames, f)
	p.mu.Unlock()
	p.onAck(time.Millisecond, nil)
	select {
	case p.got <- struct{}{}:
	default:
	}
	return ctx.Err()
}

func (p *fakePub) PublishCue(context.Context, tsframes.Cue) error { return nil }

func (p *fakePub) SetIngestStats(s bus.IngestStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = append(p.stats, s)
}

func (p *fakePub) Shutdown(context.Context) error {
	p.mu.Lock()
	if !p.closed {
		close(p.closedCh)
	}
	p.closed = true
	p.mu.Unlock()
	p.f.event(fmt.Sprintf("close %s %d", p.stream, p.epoch))
	return nil
}

func (p *fakePub) snapshot() ([]tsframes.Announcement, []tsframes.Frame, []bus.IngestStats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tsframes.Announcement(nil), p.anns...), append([]tsframes.Frame(nil), p.frames...), append([]bus.IngestStats(nil), p.stats...), p.closed
}

type fakeFactory struct {
	mu         sync.Mutex
	pubs       []*fakePub
	events     []string
	openErr    error
	publishErr error
	opened     chan *fakePub // receives every opened publisher (buffered)
}

func newFakeFactory() *fakeFactory { return &fakeFactory{opened: make(chan *fakePub, 16)} }

func (f *fakeFactory) event(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeFactory) open(_ context.Context, stream string, epoch uint64, onAck func(time.Duration, error)) (Publisher, error) {
	f.mu.Lock()
	if f.openErr != nil {
		f.mu.Unlock()
		return nil, f.openErr
	}
	p := &fakePub{f: f, stream: stream, epoch: epoch, onAck: onAck, publishErr: f.publishErr, got: make(chan struct{}, 1), closedCh: make(chan struct{})}
	f.pubs = append(f.pubs, p)
	f.events = append(f.events, fmt.Sprintf("open %s %d", stream, epoch))
	f.mu.Unlock()
	f.opened <- p
	return p, nil
}

func (f *fakeFactory) snapshot() ([]*fakePub, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakePub(nil), f.pubs...), append([]string(nil), f.events...)
}

func (f *fakeFactory) nextPub(t *testing.T) *fakePub {
	t.Helper()
	select {
	case p := <-f.opened:
		return p
	case <-time.After(testDeadline):
		t.Fatal("no publisher opened")
		return nil
	}
}

func newTestPublications(t *testing.T, f *fakeFactory) (*Publications, *Metrics) {
	t.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewPublications(Config{NewPublisher: f.open, Metrics: m, StatsInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := ps.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return ps, m
}

// blockingSource is a Body that serves data, then blocks until interrupted
// or ended.
type blockingSource struct {
	data        []byte
	more        chan []byte // feed
	stop        chan struct{}
	eof         chan struct{}
	stopOnce    sync.Once
	drained     chan struct{} // closed when a Read finds no data left
	drainedOnce sync.Once
}

func newBlockingSource(data []byte) *blockingSource {
	return &blockingSource{data: data, more: make(chan []byte), stop: make(chan struct{}), eof: make(chan struct{}), drained: make(chan struct{})}
}

func (b *blockingSource) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	b.drainedOnce.Do(func() { close(b.drained) })
	select {
	case b.data = <-b.more:
		return b.Read(p)
	case <-b.stop:
		return 0, errors.New("interrupted")
	case <-b.eof:
		return 0, errors.New("unexpected")
	}
}

func (b *blockingSource) interrupt() { b.stopOnce.Do(func() { close(b.stop) }) }

// feed hands data to a Read blocked for more.
func (b *blockingSource) feed(t *testing.T, data []byte) {
	t.Helper()
	select {
	case b.more <- data:
	case <-time.After(testDeadline):
		t.Fatal("the source was not read")
	}
}
