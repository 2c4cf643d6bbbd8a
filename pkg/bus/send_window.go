package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errAbandoned is the error of a message given up by sendWindow.abandon.
var errAbandoned = errors.New("abandoned in flight: JetStream acknowledged nothing within the stall timeout")

// ackCheck is how often the ack reader checks the oldest message in
// flight against AckTimeout.
const ackCheck = time.Second

// sendWindow is one publisher's asynchronous send window: at most a fixed
// number of messages await their acknowledgement; one goroutine reports
// each message once, in publishing order, as acknowledged or failed (a
// JetStream error, no stream, AckTimeout, abandon, or the connection lost:
// like nats.go's, the messages in flight when it starts reconnecting fail
// with nats.ErrDisconnected).
//
// It does JetStream's asynchronous publish itself, leaner than nats.go's
// (a future with two channels and a timer per message, a JSON decode per
// acknowledgement: about a tenth of the broker's CPU at 50 ingests): each
// message carries a reply subject of the window's own inbox ending in its
// number, one subscription reads the acknowledgements, a PubAck's JSON is
// decoded only when it reports an error, and one ticker checks the oldest
// message against AckTimeout.
type sendWindow struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	prefix  string           // the reply subjects' prefix: the window's inbox and "."
	slots   chan struct{}    // one per message in flight
	pending chan *pendingMsg // to the ack reader, in publishing order
	onAck   func(m *nats.Msg)
	onErr   func(m *nats.Msg, err error)
	timeout time.Duration // AckTimeout (lowered by tests)
	done    chan struct{} // the ack reader ended
	status  chan nats.Status
	watched chan struct{} // the status watcher ended

	mu   sync.Mutex
	cut  *cutPoint              // cut for the messages sent before it
	byID map[uint64]*pendingMsg // the messages awaiting their acknowledgement
	next uint64                 // the number of the next message
}

// pendingMsg is a message awaiting its acknowledgement, or abandon's marker.
type pendingMsg struct {
	msg  *nats.Msg
	id   uint64
	sent time.Time
	res  chan error // its acknowledgement: nil, or why it failed (1 buffered)
	cut  *cutPoint
	// reached, on a marker instead of a message, is closed when the ack
	// reader has reported every message before it.
	reached chan struct{}
}

// cutPoint fails the messages sent before it: done is closed, after err is
// set, by abandon or when the connection is lost.
type cutPoint struct {
	done chan struct{}
	err  error
}

func newCutPoint() *cutPoint { return &cutPoint{done: make(chan struct{})} }

// newSendWindow subscribes to the window's inbox and starts the ack reader
// of a window of size messages; close ends both.
func newSendWindow(nc *nats.Conn, size int, onAck func(*nats.Msg), onErr func(*nats.Msg, error)) (*sendWindow, error) {
	return newSendWindowTimeout(nc, size, onAck, onErr, AckTimeout, ackCheck)
}

// newSendWindowTimeout is newSendWindow with the ack timeout, checked every
// check.
func newSendWindowTimeout(nc *nats.Conn, size int, onAck func(*nats.Msg), onErr func(*nats.Msg, error),
	timeout, check time.Duration,
) (*sendWindow, error) {
	w := &sendWindow{
		nc:      nc,
		prefix:  nc.NewInbox() + ".",
		slots:   make(chan struct{}, size),
		pending: make(chan *pendingMsg, size+1), // + abandon's marker
		onAck:   onAck,
		onErr:   onErr,
		timeout: timeout,
		done:    make(chan struct{}),
		watched: make(chan struct{}),
		cut:     newCutPoint(),
		byID:    make(map[uint64]*pendingMsg, size),
	}
	sub, err := nc.Subscribe(w.prefix+"*", w.onReply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the acknowledgements: %w", err)
	}
	w.sub = sub
	w.status = nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go w.watch()
	go w.readAcks(check)
	return w, nil
}

// watch fails the messages in flight when the connection starts
// reconnecting: their acknowledgements may never come. It ends when the
// connection closes or close removes the listener.
func (w *sendWindow) watch() {
	defer close(w.watched)
	for s := range w.status {
		if s == nats.CLOSED {
			return
		}
		w.cutInFlight(nats.ErrDisconnected)
	}
}

// publish hands m to NATS once the window has room, waiting at most until
// deadline (then an error wrapping jetstream.ErrTooManyStalledMsgs). It
// sets m.Reply. Calls are serialized by the caller, and never follow close.
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
	f := &pendingMsg{msg: m, res: make(chan error, 1), sent: time.Now()}
	w.mu.Lock()
	f.id, f.cut = w.next, w.cut
	w.next++
	w.byID[f.id] = f
	w.mu.Unlock()
	m.Reply = w.prefix + strconv.FormatUint(f.id, 36)
	if err := w.nc.PublishMsg(m); err != nil {
		w.forget(f.id)
		<-w.slots
		return err
	}
	// Never blocks: pending has room for as many messages as slots.
	w.pending <- f
	return nil
}

// forget drops message id from the messages awaiting acknowledgement: a
// late one is then ignored.
func (w *sendWindow) forget(id uint64) {
	w.mu.Lock()
	delete(w.byID, id)
	w.mu.Unlock()
}

// onReply takes an acknowledgement (the subscription's handler).
func (w *sendWindow) onReply(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 36, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	f := w.byID[id]
	w.mu.Unlock()
	if f == nil {
		return // abandoned, timed out, or not ours
	}
	select {
	case f.res <- pubAckError(m):
	default: // a second reply to one message
	}
}

// pubAckError is the error a JetStream reply reports; nil for a PubAck.
// Only a reply that is not one is decoded.
func pubAckError(m *nats.Msg) error {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return jetstream.ErrNoStreamResponse
		}
		return fmt.Errorf("empty reply to a publish (status %q)", m.Header.Get("Status"))
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) {
		return nil
	}
	var r struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("read a publish reply: %w", err)
	}
	if r.Error == nil {
		return nil
	}
	return r.Error
}

// inFlight is the number of messages awaiting their acknowledgement.
func (w *sendWindow) inFlight() int { return len(w.slots) }

// abandon fails every message in flight (errAbandoned) and frees the
// window before it returns; their acknowledgements, if they still come, are
// ignored. Serialized with publish by the caller, and never after close.
func (w *sendWindow) abandon() {
	w.cutInFlight(errAbandoned)
	reached := make(chan struct{})
	w.pending <- &pendingMsg{reached: reached}
	<-reached
}

// cutInFlight fails the messages sent so far with err.
func (w *sendWindow) cutInFlight(err error) {
	w.mu.Lock()
	w.cut.err = err
	close(w.cut.done)
	w.cut = newCutPoint()
	w.mu.Unlock()
}

// close waits for the acknowledgements of the messages in flight (bounded
// by ctx: then they are abandoned), ends the ack reader and unsubscribes.
// No publish may follow.
func (w *sendWindow) close(ctx context.Context) error {
	close(w.pending)
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		n := w.inFlight()
		w.cutInFlight(errAbandoned)
		<-w.done
		err = fmt.Errorf("flush %d in-flight messages: %w", n, ctx.Err())
	}
	_ = w.sub.Unsubscribe() // fails only when the connection is closed
	w.nc.RemoveStatusListener(w.status)
	<-w.watched
	return err
}

// readAcks reports the messages in publishing order as their
// acknowledgements come, they time out (checked every check), or they are
// cut.
func (w *sendWindow) readAcks(check time.Duration) {
	defer close(w.done)
	tick := time.NewTicker(check)
	defer tick.Stop()
	for f := range w.pending {
		if f.reached != nil {
			close(f.reached)
			continue
		}
		err := w.wait(f, tick.C)
		w.forget(f.id)
		if err != nil {
			w.onErr(f.msg, err)
		} else {
			w.onAck(f.msg)
		}
		<-w.slots
	}
}

// wait returns f's outcome: nil when acknowledged.
func (w *sendWindow) wait(f *pendingMsg, tick <-chan time.Time) error {
	for {
		select {
		case err := <-f.res:
			return err
		case <-f.cut.done:
			return f.cut.err
		case <-tick:
			if time.Since(f.sent) >= w.timeout {
				return fmt.Errorf("no acknowledgement within %v: %w", w.timeout, nats.ErrTimeout)
			}
		}
	}
}
