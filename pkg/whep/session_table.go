package whep

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// sessionTable holds a node's sessions, their slots and the held POSTs.
type sessionTable struct {
	maxSessions, maxPerStream, maxWaiting int

	mu        sync.Mutex
	sessions  map[string]*session
	total     int            // reserved slots, node-wide
	perStream map[string]int // reserved slots per stream
	holds     map[*hold]struct{}
	draining  bool
	closed    bool
}

// slot is one reserved session place; release is idempotent.
type slot struct {
	table  *sessionTable
	stream string
	once   sync.Once
}

// hold is one POST waiting for its stream.
type hold struct {
	cancel context.CancelCauseFunc
}

func newSessionTable(cfg Config) *sessionTable {
	return &sessionTable{
		maxSessions:  cfg.MaxSessions,
		maxPerStream: cfg.MaxSessionsPerStream,
		maxWaiting:   cfg.MaxWaiting,
		sessions:     make(map[string]*session),
		perStream:    make(map[string]int),
		holds:        make(map[*hold]struct{}),
	}
}

// reserve takes a session slot on stream: errTooManySessions when the node
// or the stream is full, errDraining or ErrClosed when no more sessions are
// taken.
func (r *sessionTable) reserve(stream string) (*slot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.draining:
		return nil, errDraining
	case r.maxSessions > 0 && r.total >= r.maxSessions:
		return nil, fmt.Errorf("%w: %d sessions on this node", errTooManySessions, r.total)
	case r.maxPerStream > 0 && r.perStream[stream] >= r.maxPerStream:
		return nil, fmt.Errorf("%w: %d sessions of stream %q on this node", errTooManySessions, r.perStream[stream], stream)
	}
	r.total++
	r.perStream[stream]++
	return &slot{table: r, stream: stream}, nil
}

func (s *slot) release() {
	s.once.Do(func() {
		r := s.table
		r.mu.Lock()
		defer r.mu.Unlock()
		r.total--
		if r.perStream[s.stream]--; r.perStream[s.stream] <= 0 {
			delete(r.perStream, s.stream)
		}
	})
}

// add registers a negotiated session and calls started under the lock (so
// that it happens before close lists the sessions); ErrClosed after close.
func (r *sessionTable) add(ss *session, started func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.sessions[ss.id] = ss
	started()
	return nil
}

// remove unregisters a session.
func (r *sessionTable) remove(id string) {
	r.mu.Lock()
	delete(r.sessions, id)
	r.mu.Unlock()
}

// get returns the session id of stream, or nil.
func (r *sessionTable) get(stream, id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.sessions[id]
	if ss == nil || ss.stream != stream {
		return nil
	}
	return ss
}

// list returns the sessions, oldest first.
func (r *sessionTable) list() []*session {
	r.mu.Lock()
	out := make([]*session, 0, len(r.sessions))
	for _, ss := range r.sessions {
		out = append(out, ss)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

// counts returns the number of sessions and of held POSTs.
func (r *sessionTable) counts() (sessions, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions), len(r.holds)
}

// streamCounts returns the number of sessions of each stream, and the ids
// of the sessions.
func (r *sessionTable) streamCounts() (counts map[string]int, ids map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts, ids = make(map[string]int), make(map[string]bool, len(r.sessions))
	for id, ss := range r.sessions {
		counts[ss.stream]++
		ids[id] = true
	}
	return counts, ids
}

// hold admits a POST to wait for its stream, with cancel to wake it on
// drain: errNotLive when nothing may wait (MaxWaiting 0),
// errTooManyWaiting beyond MaxWaiting, errDraining or ErrClosed. release
// ends the hold.
func (r *sessionTable) hold(cancel context.CancelCauseFunc) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.draining:
		return nil, errDraining
	case r.maxWaiting == 0:
		return nil, errNotLive
	case len(r.holds) >= r.maxWaiting:
		return nil, fmt.Errorf("%w (%d)", errTooManyWaiting, len(r.holds))
	}
	h := &hold{cancel: cancel}
	r.holds[h] = struct{}{}
	return func() {
		r.mu.Lock()
		delete(r.holds, h)
		r.mu.Unlock()
	}, nil
}

// drain stops new sessions and holds and wakes the held POSTs with cause.
func (r *sessionTable) drain(cause error) {
	r.mu.Lock()
	r.draining = true
	if errors.Is(cause, ErrClosed) {
		r.closed = true
	}
	holds := make([]*hold, 0, len(r.holds))
	for h := range r.holds {
		holds = append(holds, h)
	}
	r.mu.Unlock()
	for _, h := range holds {
		h.cancel(cause)
	}
}

// isDraining reports whether POSTs are refused.
func (r *sessionTable) isDraining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}
