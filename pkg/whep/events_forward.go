package whep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// Operations of an events request.
const (
	eventsOpCreate = "create"
	eventsOpDelete = "delete"
	eventsOpPoll   = "poll"
)

// eventsSubject is the NATS subject on which node serves the event streams
// of its sessions to the other nodes: whepcast.node.NODE.events.
func eventsSubject(node string) string {
	return forwardSubjectPrefix + node + ".events"
}

// eventsRequest is an operation on an event stream sent to the node that
// owns its session.
type eventsRequest struct {
	Op     string    `json:"op"`
	Ref    eventsRef `json:"ref"`
	Want   eventMask `json:"want,omitempty"`    // create
	Reader uint64    `json:"reader,omitempty"`  // poll: 0 attaches a new reader
	WaitMS int64     `json:"wait_ms,omitempty"` // poll: at most the owner's keep-alive
}

// eventsReply is the owner's answer: an HTTP response (create: 201 and the
// new id; delete: 200; poll: 200 and the events), or its error.
type eventsReply struct {
	response
	ID     string     `json:"id,omitempty"`
	Reader uint64     `json:"reader,omitempty"`
	Events []sseEvent `json:"events,omitempty"`
	End    bool       `json:"end,omitempty"`
}

// subscribe serves this node's events subject. The handler never blocks:
// a poll with nothing pending is answered later, from the event that ends
// it or from its timer.
func (h *eventHub) subscribe() error {
	subject := eventsSubject(h.nodeID)
	sub, err := h.conn.Subscribe(subject, h.serveNATS)
	if err != nil {
		return fmt.Errorf("whep: subscribe %s: %w", subject, err)
	}
	if err := h.conn.FlushTimeout(h.forwardTimeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("whep: subscribe %s: %w", subject, err)
	}
	h.sub = sub
	return nil
}

func (h *eventHub) serveNATS(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	var req eventsRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		h.reply(msg, eventsReply{response: errorResponse(fmt.Errorf("%w: events request: %w", errBadRequest, err))})
		return
	}
	local := &localEvents{h: h}
	switch req.Op {
	case eventsOpCreate:
		id, err := local.create(context.Background(), req.Ref, req.Want)
		if err != nil {
			h.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		h.reply(msg, eventsReply{response: response{Status: http.StatusCreated}, ID: id})
	case eventsOpDelete:
		if err := local.remove(context.Background(), req.Ref); err != nil {
			h.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		h.reply(msg, eventsReply{response: response{Status: http.StatusOK}})
	case eventsOpPoll:
		es, err := local.stream(req.Ref)
		if err != nil {
			h.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		reader := req.Reader
		if reader == 0 {
			reader = h.attach(es)
		}
		wait := min(time.Duration(req.WaitMS)*time.Millisecond, h.keepAlive)
		if wait <= 0 {
			evs, end := h.take(es, reader)
			h.reply(msg, eventsReply{response: response{Status: http.StatusOK}, Reader: reader, Events: evs, End: end})
			return
		}
		h.wait(es, reader, wait, func(evs []sseEvent, end bool) {
			h.reply(msg, eventsReply{response: response{Status: http.StatusOK}, Reader: reader, Events: evs, End: end})
		})
	default:
		h.reply(msg, eventsReply{response: errorResponse(fmt.Errorf("%w: events operation %q", errBadRequest, req.Op))})
	}
}

func (h *eventHub) reply(msg *nats.Msg, r eventsReply) {
	data, err := json.Marshal(r)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		h.logger.Debug("cannot answer an events request", "err", err)
	}
}

// remoteEvents are the operations on the sessions of another node, sent
// over NATS.
type remoteEvents struct {
	h    *eventHub
	node string
}

// request sends req to the owner and returns its answer; a node that does
// not answer has no sessions (errSessionNotFound).
func (o remoteEvents) request(ctx context.Context, req eventsRequest, timeout time.Duration) (eventsReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return eventsReply{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := o.h.conn.RequestWithContext(ctx, eventsSubject(o.node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return eventsReply{}, fmt.Errorf("%w: %q (node %q is gone)", errSessionNotFound, req.Ref.Session, o.node)
	case err != nil:
		return eventsReply{}, fmt.Errorf("%w: node %q: %w", errOwnerUnavailable, o.node, err)
	}
	var r eventsReply
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.Status < 100 || r.Status > 599 {
		return eventsReply{}, fmt.Errorf("%w: node %q sent a bad answer", errOwnerUnavailable, o.node)
	}
	return r, nil
}

func (o remoteEvents) create(ctx context.Context, ref eventsRef, want eventMask) (string, error) {
	r, err := o.request(ctx, eventsRequest{Op: eventsOpCreate, Ref: ref, Want: want}, o.h.forwardTimeout)
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusCreated || !validEventStreamID(r.ID) {
		return "", &remoteError{r.response}
	}
	return r.ID, nil
}

func (o remoteEvents) remove(ctx context.Context, ref eventsRef) error {
	r, err := o.request(ctx, eventsRequest{Op: eventsOpDelete, Ref: ref}, o.h.forwardTimeout)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return &remoteError{r.response}
	}
	return nil
}

// poll asks the owner for the events of ref; the owner holds the request
// until it has some or wait passes.
func (o remoteEvents) poll(ctx context.Context, ref eventsRef, reader uint64, wait time.Duration) ([]sseEvent, bool, uint64, error) {
	req := eventsRequest{Op: eventsOpPoll, Ref: ref, Reader: reader, WaitMS: wait.Milliseconds()}
	r, err := o.request(ctx, req, wait+o.h.forwardTimeout)
	if err != nil {
		return nil, true, reader, err
	}
	if r.Status != http.StatusOK {
		return nil, true, reader, &remoteError{r.response}
	}
	return r.Events, r.End, r.Reader, nil
}
