package whep

import (
	"sync"
	"time"
)

// reasonDrainTimeout closes the sessions still open Config.DrainTimeout
// after Shutdown began.
const reasonDrainTimeout = "drain_timeout"

// drainState follows a server's drain: Shutdown starts it; it is over once
// no session is left. Close ends it too.
type drainState struct {
	mu       sync.Mutex
	started  bool
	closed   bool          // Close was called
	stop     chan struct{} // closed by Close: the drain timer gives up
	drained  chan struct{} // closed once draining or closed with no session left
	isClosed bool          // drained is closed
}

func (d *drainState) init() {
	d.stop = make(chan struct{})
	d.drained = make(chan struct{})
}

// startDrain tells the players of every session to reconnect (the
// server-sent events extension) and, with a DrainTimeout, starts the timer
// that closes the sessions left when it passes. Only the first call does
// anything; none after Close.
func (s *Server) startDrain() {
	d := &s.drain
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return
	}
	d.started = true
	if s.cfg.DrainTimeout > 0 {
		s.wg.Add(1)
		go s.drainTimer(s.cfg.DrainTimeout)
	}
	d.mu.Unlock()
	told := s.events.reconnectAll()
	sessions, _ := s.sessions.counts()
	s.logger.Info("draining", "sessions", sessions, "told_to_reconnect", told, "drain_timeout", s.cfg.DrainTimeout)
	s.checkDrained()
}

// drainTimer closes the sessions still open when timeout passes, unless
// the drain ends first or the server closes.
func (s *Server) drainTimer(timeout time.Duration) {
	defer s.wg.Done()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.drain.drained:
		return
	case <-s.drain.stop:
		return
	}
	list := s.sessions.list()
	s.logger.Info("drain timeout: closing the sessions left", "sessions", len(list), "after", timeout)
	var wg sync.WaitGroup
	for _, ss := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss.close(reasonDrainTimeout)
		}()
	}
	wg.Wait()
}

// checkDrained closes drain.drained when draining or closed with no
// session left.
func (s *Server) checkDrained() {
	d := &s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started && !d.closed || d.isClosed {
		return
	}
	if n, _ := s.sessions.counts(); n == 0 {
		d.isClosed = true
		close(d.drained)
	}
}

// stopDrain is called by Close: the drain timer stops and no drain starts;
// drain.drained closes once Close has closed the sessions.
func (s *Server) stopDrain() {
	d := &s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.stop)
	}
}
