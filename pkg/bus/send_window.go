package bus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// One JetStream context per connection carries every publisher's
// asynchronous publishes. A context starts, on its first asynchronous
// publish, a reply subscription and a goroutine that lives until the
// connection closes; a context per publisher (one per stream and epoch)
// would start one of each per publication, and nats.go's CleanupPublisher,
// which ends them, can miss the goroutine when it runs right after the
// first publish: one goroutine kept per short publication. Sharing one
// context per connection makes that one goroutine per connection, ended
// with it; each publisher keeps its own window (sendWindow) and reads its
// acknowledgements from the futures of its own messages.
var asyncContexts = struct {
	mu sync.Mutex
	m  map[*nats.Conn]jetstream.JetStream
}{m: map[*nats.Conn]jetstream.JetStream{}}

// asyncJetStream returns the connection's shared JetStream context, created
// on first use and forgotten when the connection closes.
func asyncJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	asyncContexts.mu.Lock()
	defer asyncContexts.mu.Unlock()
	if js, ok := asyncContexts.m[nc]; ok {
		return js, nil
	}
	if nc.IsClosed() {
		return nil, nats.ErrConnectionClosed
	}
	js, err := jetstream.New(nc,
		// Each publisher bounds its own window (PublisherConfig.MaxInFlight);
		// the shared context must never stall one stream for another's.
		jetstream.WithPublishAsyncMaxPending(math.MaxInt32),
		jetstream.WithPublishAsyncTimeout(AckTimeout),
	)
	if err != nil {
		return nil, err
	}
	closed := nc.StatusChanged(nats.CLOSED)
	asyncContexts.m[nc] = js
	go func() {
		// Ends when the connection closes (CLOSED, or the listener closed).
		<-closed
		asyncContexts.mu.Lock()
		delete(asyncContexts.m, nc)
		asyncContexts.mu.Unlock()
		nc.RemoveStatusListener(closed)
	}()
	if nc.IsClosed() {
		// Closed before the listener was registered: it will hear nothing.
		nc.RemoveStatusListener(closed)
	}
	return js, nil
}

// errAbandoned is the error of a message given up by sendWindow.abandon.
var errAbandoned = errors.New("abandoned in flight: JetStream acknowledged nothing within the stall timeout")

// sendWindow is one publisher's asynchronous send window: at most a fixed
// number of messages await their acknowledgement; one goroutine reads the
// acknowledgements in publishing order and reports each message once, as
// acknowledged or failed (a NATS error, the ack timeout, or abandon).
type sendWindow struct {
	js      jetstream.JetStream
	slots   chan struct{}   // one per message in flight
	pending chan pendingAck // to the ack reader, in publishing order
	onAck   func(m *nats.Msg)
	onErr   func(m *nats.Msg, err error)
	done    chan struct{} // the ack reader ended

	mu  sync.Mutex
	cut chan struct{} // closed by abandon for the messages sent before it
}

// pendingAck is a message awaiting its acknowledgement, or abandon's marker.
type pendingAck struct {
	msg *nats.Msg
	ack jetstream.PubAckFuture
	cut <-chan struct{}
	// reached, on a marker instead of a message, is closed when the ack
	// reader has reported every message before it.
	reached chan struct{}
}

// newSendWindow starts the ack reader of a window of size messages; close
// ends it.
func newSendWindow(js jetstream.JetStream, size int, onAck func(*nats.Msg), onErr func(*nats.Msg, error)) *sendWindow {
	w := &sendWindow{
		js:      js,
		slots:   make(chan struct{}, size),
		pending: make(chan pendingAck, size+1), // + abandon's marker
		onAck:   onAck,
		onErr:   onErr,
		done:    make(chan struct{}),
		cut:     make(chan struct{}),
	}
	go w.readAcks()
	return w
}

// publish hands m to JetStream once the window has room, waiting at most
// until deadline (then an error wrapping jetstream.ErrTooManyStalledMsgs).
// Calls are serialized by the caller, and never follow close.
func (w *sendWindow) publish(m *nats.Msg, deadline time.Time) error {
	select {
	case w.slots <- struct{}{}:
	default:
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("no room in the in-flight window: %w", jetstream.ErrTooManyStalledMsgs)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case w.slots <- struct{}{}:
		case <-t.C:
			return fmt.Errorf("no room in the in-flight window for %v: %w", wait.Round(time.Millisecond), jetstream.ErrTooManyStalledMsgs)
		}
	}
	ack, err := w.js.PublishMsgAsync(m)
	if err != nil {
		<-w.slots
		return err
	}
	w.mu.Lock()
	cut := w.cut
	w.mu.Unlock()
	// Never blocks: pending has room for as many messages as slots.
	w.pending <- pendingAck{msg: m, ack: ack, cut: cut}
	return nil
}

// inFlight is the number of messages awaiting their acknowledgement.
func (w *sendWindow) inFlight() int { return len(w.slots) }

// abandon fails every message in flight (errAbandoned) and frees the
// window before it returns; their acknowledgements, if they still come, are
// ignored. Serialized with publish by the caller, and never after close.
func (w *sendWindow) abandon() {
	w.cutInFlight()
	reached := make(chan struct{})
	w.pending <- pendingAck{reached: reached}
	<-reached
}

func (w *sendWindow) cutInFlight() {
	w.mu.Lock()
	close(w.cut)
	w.cut = make(chan struct{})
	w.mu.Unlock()
}

// close waits for the acknowledgements of the messages in flight (bounded
// by ctx: then they are abandoned) and ends the ack reader. No publish may
// follow.
func (w *sendWindow) close(ctx context.Context) error {
	close(w.pending)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	n := w.inFlight()
	w.cutInFlight()
	<-w.done
	return fmt.Errorf("flush %d in-flight messages: %w", n, ctx.Err())
}

func (w *sendWindow) readAcks() {
	defer close(w.done)
	for f := range w.pending {
		if f.reached != nil {
			close(f.reached)
			continue
		}
		select {
		case <-f.ack.Ok():
			w.onAck(f.msg)
		case err := <-f.ack.Err():
			w.onErr(f.msg, err)
		case <-f.cut:
			w.onErr(f.msg, errAbandoned)
		}
		<-w.slots
	}
}
