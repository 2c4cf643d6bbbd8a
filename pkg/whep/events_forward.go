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
// owns its session. Token is the caller's credential (see credential): the
// owner checks it with its own tokens for create and delete; a poll names
// an event stream, whose id is its credential.
type eventsRequest struct {
	Op     string    `json:"op"`
	Ref    eventsRef `json:"ref"`
	Token  string    `json:"token,omitempty"`   // create, delete
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
func (en *eventNotifier) subscribe() error {
	subject := eventsSubject(en.nodeID)
	sub, err := en.conn.Subscribe(subject, en.serveNATS)
	if err != nil {
		return fmt.Errorf("whep: subscribe %s: %w", subject, err)
	}
	if err := en.conn.FlushTimeout(en.forwardTimeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("whep: subscribe %s: %w", subject, err)
	}
	en.sub = sub
	return nil
}

func (en *eventNotifier) serveNATS(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	var req eventsRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		en.reply(msg, eventsReply{response: errorResponse(fmt.Errorf("%w: events request: %w", errBadRequest, err))})
		return
	}
	if req.Op == eventsOpCreate || req.Op == eventsOpDelete {
		if err := en.tokens.checkCredential(req.Token); err != nil {
			en.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
	}
	local := &localEvents{en: en}
	switch req.Op {
	case eventsOpCreate:
		id, err := local.create(context.Background(), req.Ref, req.Want)
		if err != nil {
			en.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		en.reply(msg, eventsReply{response: response{Status: http.StatusCreated}, ID: id})
	case eventsOpDelete:
		if err := local.remove(context.Background(), req.Ref); err != nil {
			en.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		en.reply(msg, eventsReply{response: response{Status: http.StatusOK}})
	case eventsOpPoll:
		es, err := local.stream(req.Ref)
		if err != nil {
			en.reply(msg, eventsReply{response: errorResponse(err)})
			return
		}
		reader := req.Reader
		if reader == 0 {
			reader = en.attach(es)
		}
		wait := min(time.Duration(req.WaitMS)*time.Millisecond, en.keepAlive)
		if wait <= 0 {
			evs, end := en.take(es, reader)
			en.reply(msg, eventsReply{response: response{Status: http.StatusOK}, Reader: reader, Events: evs, End: end})
			return
		}
		en.wait(es, reader, wait, func(evs []sseEvent, end bool) {
			en.reply(msg, eventsReply{response: response{Status: http.StatusOK}, Reader: reader, Events: evs, End: end})
		})
	default:
		en.reply(msg, eventsReply{response: errorResponse(fmt.Errorf("%w: events operation %q", errBadRequest, req.Op))})
	}
}

func (en *eventNotifier) reply(msg *nats.Msg, r eventsReply) {
	data, err := json.Marshal(r)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		en.logger.Debug("cannot answer an events request", "err", err)
	}
}

// remoteEvents are the operations on the sessions of another node, sent
// over NATS with the caller's token.
type remoteEvents struct {
	en    *eventNotifier
	node  string
	token string
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
	msg, err := o.en.conn.RequestWithContext(ctx, eventsSubject(o.node), data)
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
	r, err := o.request(ctx, eventsRequest{Op: eventsOpCreate, Ref: ref, Token: o.token, Want: want}, o.en.forwardTimeout)
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusCreated || !validEventStreamID(r.ID) {
		return "", &remoteError{r.response}
	}
	return r.ID, nil
}

func (o remoteEvents) remove(ctx context.Context, ref eventsRef) error {
	r, err := o.request(ctx, eventsRequest{Op: eventsOpDelete, Ref: ref, Token: o.token}, o.en.forwardTimeout)
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
	r, err := o.request(ctx, req, wait+o.en.forwardTimeout)
	if err != nil {
		return nil, true, reader, err
	}
	if r.Status != http.StatusOK {
		return nil, true, reader, &remoteError{r.response}
	}
	return r.Events, r.End, r.Reader, nil
}
