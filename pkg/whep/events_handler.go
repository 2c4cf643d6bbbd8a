package whep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Header values of the extension's resources.
const (
	allowEventsEntry     = "OPTIONS, GET, POST"
	allowEventStream     = "OPTIONS, GET, DELETE"
	mediaTypeJSON        = "application/json"
	mediaTypeEventStream = "text/event-stream"
)

// eventsRef names the entry point of a session's events (ID empty) or one
// of its event streams.
type eventsRef struct {
	Stream  string `json:"stream"`
	Session string `json:"session"`
	ID      string `json:"id,omitempty"`
}

// location is the path of the event stream ref.
func (ref eventsRef) location() string {
	return locationOf(ref.Stream, ref.Session) + "/" + eventsSegment + "/" + ref.ID
}

// eventOps are the operations on a session's event streams: done here for
// this node's sessions, over NATS for another node's.
type eventOps interface {
	// create makes an event stream of the events of want and returns its
	// id.
	create(ctx context.Context, ref eventsRef, want eventMask) (string, error)
	// remove ends the event stream ref.
	remove(ctx context.Context, ref eventsRef) error
	// poll returns the pending events of ref for reader, waiting for some
	// at most wait; end means the reader is done (the stream is over, or
	// another reader took it over). Reader 0 attaches a new reader, the
	// stream's only one from then on, and returns its id.
	poll(ctx context.Context, ref eventsRef, reader uint64, wait time.Duration) (events []sseEvent, end bool, id uint64, err error)
}

// remoteError is the error answer of the node owning a session, relayed as
// it is.
type remoteError struct{ resp response }

func (e *remoteError) Error() string {
	return fmt.Sprintf("owner answered %d: %s", e.resp.Status, bytes.TrimSpace(e.resp.Body))
}

// answerOf is the response for err: the owner's own answer for a
// remoteError.
func answerOf(err error) response {
	var re *remoteError
	if errors.As(err, &re) {
		resp := re.resp
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		return resp
	}
	return errorResponse(err)
}

// serve serves the resources of the server-sent events extension
// and returns the status sent:
//
//	POST   /whep/{stream}/{session}/events       201, Location of a new event stream
//	GET    /whep/{stream}/{session}/events       an event stream of every event, for this request only
//	GET    /whep/{stream}/{session}/events/{id}  the event stream (text/event-stream)
//	DELETE /whep/{stream}/{session}/events/{id}  200; the event stream is gone
func (en *eventNotifier) serve(w http.ResponseWriter, r *http.Request, ref eventsRef) int {
	entry := ref.ID == ""
	allow := allowEventStream
	if entry {
		allow = allowEventsEntry
	}
	write := func(resp response) int {
		resp.write(w)
		return resp.Status
	}
	switch {
	case r.Method == http.MethodOptions:
		return write(eventsOptions(w, r, allow))
	case r.Method == http.MethodGet, entry && r.Method == http.MethodPost, !entry && r.Method == http.MethodDelete:
	default:
		return write(methodNotAllowed(r.Method, allow))
	}
	// The URL of an event stream is its own credential (128 random bits,
	// given only to a client that showed the token): EventSource cannot
	// send an Authorization header. The node owning the session checks the
	// token: a request for another node's session carries it there.
	node, ok := sessionNode(ref.Session)
	remote := ok && node != en.nodeID && en.conn != nil
	if (entry || r.Method != http.MethodGet) && !remote {
		if err := en.tokens.check(r); err != nil {
			return write(errorResponse(err))
		}
	}
	var want eventMask
	if r.Method == http.MethodPost {
		var err error
		if want, err = readWant(w, r); err != nil {
			return write(errorResponse(err))
		}
	}
	if !ok || bus.ValidateName(ref.Stream) != nil || !entry && !validEventStreamID(ref.ID) {
		return write(errorResponse(fmt.Errorf("%w: no events at %q", errSessionNotFound, r.URL.Path)))
	}
	var ops eventOps = &localEvents{en: en}
	if node != en.nodeID {
		if en.conn == nil {
			return write(errorResponse(fmt.Errorf("%w: %q belongs to node %q and this node has no bus", errSessionNotFound, ref.Session, node)))
		}
		ops = remoteEvents{en: en, node: node, token: credential(r)}
	}
	switch {
	case r.Method == http.MethodPost:
		id, err := ops.create(r.Context(), ref, want)
		if err != nil {
			return write(answerOf(err))
		}
		ref.ID = id
		hdr := http.Header{}
		hdr.Set("Location", ref.location())
		hdr.Set("Cache-Control", "no-store")
		return write(response{Status: http.StatusCreated, Header: hdr})
	case r.Method == http.MethodDelete:
		if err := ops.remove(r.Context(), ref); err != nil {
			return write(answerOf(err))
		}
		return write(response{Status: http.StatusOK})
	case entry: // GET of the entry point: a stream of every event for this request
		id, err := ops.create(r.Context(), ref, maskAll)
		if err != nil {
			return write(answerOf(err))
		}
		ref.ID = id
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), en.forwardTimeout)
			defer cancel()
			_ = ops.remove(ctx, ref)
		}()
	}
	return en.streamEvents(w, r, ops, ref)
}

// eventsOptions answers OPTIONS on the extension's resources, CORS
// preflight or not.
func eventsOptions(w http.ResponseWriter, r *http.Request, allow string) response {
	hdr := http.Header{}
	hdr.Set("Allow", allow)
	if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" &&
		w.Header().Get("Access-Control-Allow-Origin") != "" {
		hdr.Set("Access-Control-Allow-Methods", corsMethods)
		hdr.Set("Access-Control-Allow-Headers", corsHeaders)
		hdr.Set("Access-Control-Max-Age", corsMaxAge)
	}
	return response{Status: http.StatusNoContent, Header: hdr}
}

// readWant reads the body of a POST to the entry point: none, or a JSON
// array of event names (application/json). No body and [] ask for every
// event; names this server does not send are ignored.
func readWant(w http.ResponseWriter, r *http.Request) (eventMask, error) {
	if r.ContentLength > maxEventsBody {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, r.ContentLength, maxEventsBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventsBody))
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return 0, fmt.Errorf("%w: limit %d bytes", errTooLarge, maxEventsBody)
	case err != nil:
		return 0, fmt.Errorf("%w: reading body: %w", errBadRequest, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return maskAll, nil
	}
	if err := checkContentType(r, mediaTypeJSON); err != nil {
		return 0, err
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		return 0, fmt.Errorf("%w: want a JSON array of event names: %w", errBadRequest, err)
	}
	if len(names) == 0 {
		return maskAll, nil
	}
	return maskOf(names), nil
}

// streamEvents sends the event stream ref as text/event-stream until it
// ends, the client goes away, the owner cannot be reached or the server
// closes. A comment line is sent after KeepAlive without events.
func (en *eventNotifier) streamEvents(w http.ResponseWriter, r *http.Request, ops eventOps, ref eventsRef) int {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-en.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	evs, end, reader, err := ops.poll(ctx, ref, 0, 0)
	if err != nil {
		resp := answerOf(err)
		resp.write(w)
		return resp.Status
	}
	hdr := w.Header()
	hdr.Set("Content-Type", mediaTypeEventStream)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	var buf []byte
	for {
		buf = appendEvents(buf[:0], evs)
		if len(evs) == 0 && !end {
			buf = append(buf, ": keep-alive\n\n"...)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return http.StatusOK
		}
		if err := rc.Flush(); err != nil || end {
			return http.StatusOK
		}
		if evs, end, _, err = ops.poll(ctx, ref, reader, en.keepAlive); err != nil {
			en.logger.Debug("event stream ended", "stream", ref.Stream, "session", ref.Session, "events", ref.ID, "err", err)
			return http.StatusOK
		}
	}
}

// appendEvents appends evs in the text/event-stream format: an event line
// and one data line (JSON) each.
func appendEvents(b []byte, evs []sseEvent) []byte {
	for _, e := range evs {
		b = append(b, "event: "...)
		b = append(b, e.Name...)
		b = append(b, "\ndata: "...)
		b = append(b, e.Data...)
		b = append(b, "\n\n"...)
	}
	return b
}

// localEvents are the operations on this node's sessions. A GET keeps the
// stream it reads (es), so that it gets the last events of a session that
// closes between two polls.
type localEvents struct {
	en *eventNotifier
	es *eventStream
}

func (o *localEvents) session(ref eventsRef) (*session, error) {
	ss := o.en.sessions.get(ref.Stream, ref.Session)
	if ss == nil {
		return nil, fmt.Errorf("%w: %q", errSessionNotFound, ref.Session)
	}
	return ss, nil
}

func (o *localEvents) stream(ref eventsRef) (*eventStream, error) {
	ss, err := o.session(ref)
	if err != nil {
		return nil, err
	}
	es := o.en.find(ss.id, ref.ID)
	if es == nil {
		return nil, fmt.Errorf("%w: event stream %q of session %q", errSessionNotFound, ref.ID, ref.Session)
	}
	return es, nil
}

func (o *localEvents) create(_ context.Context, ref eventsRef, want eventMask) (string, error) {
	ss, err := o.session(ref)
	if err != nil {
		return "", err
	}
	id, err := o.en.create(ss, want)
	if errors.Is(err, errSessionNotFound) {
		return "", fmt.Errorf("%w: %q", errSessionNotFound, ref.Session)
	}
	return id, err
}

func (o *localEvents) remove(_ context.Context, ref eventsRef) error {
	ss, err := o.session(ref)
	if err != nil {
		return err
	}
	if !o.en.remove(ss.id, ref.ID) {
		return fmt.Errorf("%w: event stream %q of session %q", errSessionNotFound, ref.ID, ref.Session)
	}
	return nil
}

func (o *localEvents) poll(ctx context.Context, ref eventsRef, reader uint64, wait time.Duration) ([]sseEvent, bool, uint64, error) {
	es := o.es
	if reader == 0 || es == nil {
		var err error
		if es, err = o.stream(ref); err != nil {
			return nil, true, reader, err
		}
		reader, o.es = o.en.attach(es), es
	}
	if wait <= 0 {
		evs, end := o.en.take(es, reader)
		return evs, end, reader, nil
	}
	type result struct {
		evs []sseEvent
		end bool
	}
	ch := make(chan result, 1)
	cancel := o.en.wait(es, reader, wait, func(evs []sseEvent, end bool) { ch <- result{evs, end} })
	select {
	case res := <-ch:
		return res.evs, res.end, reader, nil
	case <-ctx.Done():
		cancel()
		return nil, true, reader, ctx.Err()
	}
}
