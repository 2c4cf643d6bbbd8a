package whep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// maxForwardWorkers bounds the forwarded requests a node serves at once.
const maxForwardWorkers = 64

// forwarder carries session requests between nodes: it serves this node's
// subject and sends requests for other nodes' sessions to theirs.
type forwarder struct {
	conn    *nats.Conn
	timeout time.Duration // bounds a forwarded request, here and at the owner
	logger  *slog.Logger
	// op performs a request on a session of this node.
	op  func(context.Context, sessionRequest) response
	sub *nats.Subscription
	sem chan struct{}

	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// nodeSubject is the subject the node id serves.
func nodeSubject(node string) string {
	return forwardSubjectPrefix + node + ".session"
}

// newForwarder serves the subject of node on conn with op, each request
// bounded by timeout, which also bounds the requests it sends.
func newForwarder(conn *nats.Conn, node string, timeout time.Duration, logger *slog.Logger,
	op func(context.Context, sessionRequest) response) (*forwarder, error) {
	f := &forwarder{conn: conn, timeout: timeout, logger: logger, op: op, sem: make(chan struct{}, maxForwardWorkers)}
	sub, err := conn.Subscribe(nodeSubject(node), f.serve)
	if err != nil {
		return nil, fmt.Errorf("whep: subscribe %s: %w", nodeSubject(node), err)
	}
	if err := conn.FlushTimeout(timeout); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("whep: subscribe %s: %w", nodeSubject(node), err)
	}
	f.sub = sub
	return f, nil
}

// serve handles one forwarded request in a worker, so that a slow request
// (an ICE restart gathering candidates) does not hold up the others.
func (f *forwarder) serve(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		f.reply(msg, errorResponse(fmt.Errorf("%w: %w", errSessionNotFound, ErrClosed)))
		return
	}
	select {
	case f.sem <- struct{}{}:
	default:
		f.reply(msg, errorResponse(fmt.Errorf("%w: too many forwarded requests", errOwnerUnavailable)))
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.sem }()
		var req sessionRequest
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			f.reply(msg, errorResponse(fmt.Errorf("%w: forwarded request: %w", errBadRequest, err)))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		f.reply(msg, f.op(ctx, req))
	}()
}

func (f *forwarder) reply(msg *nats.Msg, resp response) {
	data, err := json.Marshal(resp)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		f.logger.Warn("cannot answer a forwarded request", "err", err)
	}
}

// forward sends req to the node owning the session and returns its answer.
// A node that does not answer has no sessions: 404.
func (f *forwarder) forward(ctx context.Context, node string, req sessionRequest) response {
	data, err := json.Marshal(req)
	if err != nil {
		return errorResponse(err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	msg, err := f.conn.RequestWithContext(ctx, nodeSubject(node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return errorResponse(fmt.Errorf("%w: %q (node %q is gone)", errSessionNotFound, req.Session, node))
	case err != nil:
		return errorResponse(fmt.Errorf("%w: node %q: %w", errOwnerUnavailable, node, err))
	}
	var resp response
	if err := json.Unmarshal(msg.Data, &resp); err != nil || resp.Status < 100 || resp.Status > 599 {
		return errorResponse(fmt.Errorf("%w: node %q sent a bad answer", errOwnerUnavailable, node))
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	f.logger.Debug("forwarded", "method", req.Method, "session", req.Session, "owner", node, "status", resp.Status)
	return resp
}

// stop stops serving forwarded requests and waits for those in progress.
func (f *forwarder) stop() {
	if err := f.sub.Unsubscribe(); err != nil {
		f.logger.Debug("unsubscribe", "err", err)
	}
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.wg.Wait()
}
