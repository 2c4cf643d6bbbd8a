package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/whepcast/whepcast/pkg/ingest"
)

// Admission defaults.
const (
	// DefaultRetryAfter is the Retry-After of a refusal by MaxStreams.
	DefaultRetryAfter = 5 * time.Second
	// HandoverGrace is how long a stream keeps its place after its
	// publisher ended while a successor waits (AdmissionConfig.Successor):
	// the publisher taking a stream over opens its own only after the
	// previous one has ended, and is admitted as the stream's.
	HandoverGrace = 5 * time.Second
	// usageTimeout bounds the storage query of an admission when the
	// caller set no deadline.
	usageTimeout = 5 * time.Second
)

// AdmissionConfig configures an Admission. The zero value admits every
// stream.
type AdmissionConfig struct {
	// MaxStreams bounds the streams live at once (0: no limit).
	MaxStreams int
	// StorageBudget bounds the JetStream storage in use, in bytes, beyond
	// which new streams are refused (0: no budget).
	StorageBudget int64
	// Usage returns the JetStream storage in use in bytes (required with
	// a StorageBudget; see StorageUsage).
	Usage func(ctx context.Context) (int64, error)
	// RetryAfter is the Retry-After of a refusal by StorageBudget: about
	// when ended streams free their storage (their retention). 0 means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Exists, when set, reports whether the JetStream stream of a stream
	// exists: an existing stream is admitted over the storage budget (its
	// bytes are counted already), so that lowering the budget, a restart
	// included, never stops a stream from ingesting again.
	Exists func(ctx context.Context, name string) (bool, error)
	// Successor, when set, reports whether a publication of the stream is
	// waiting to take it over: when its publisher ends, the stream keeps
	// its place for the successor (at most HandoverGrace).
	Successor func(name string) bool
}

// Validate reports the first invalid field of c.
func (c AdmissionConfig) Validate() error {
	switch {
	case c.MaxStreams < 0:
		return fmt.Errorf("lifecycle: max streams %d: want 0 (no limit) or more", c.MaxStreams)
	case c.StorageBudget < 0:
		return fmt.Errorf("lifecycle: storage budget %d: want 0 (no budget) or more", c.StorageBudget)
	case c.StorageBudget > 0 && c.Usage == nil:
		return fmt.Errorf("lifecycle: a storage budget needs AdmissionConfig.Usage")
	case c.RetryAfter < 0:
		return fmt.Errorf("lifecycle: retry after %v: want 0 or more", c.RetryAfter)
	}
	return nil
}

// Admission admits the publishers of streams (see the package doc). It is
// safe for concurrent use.
type Admission struct {
	cfg AdmissionConfig

	mu sync.Mutex
	// live counts the admitted publishers of each stream not yet
	// released: a takeover holds the stream's place while the publisher
	// it replaces ends.
	live map[string]int
	// ended holds when the last publisher of a stream ended while a
	// successor waited, for HandoverGrace.
	ended map[string]time.Time
	now   func() time.Time
}

// NewAdmission validates cfg and returns an Admission.
func NewAdmission(cfg AdmissionConfig) (*Admission, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	return &Admission{cfg: cfg, live: make(map[string]int), ended: make(map[string]time.Time), now: time.Now}, nil
}

// Admit admits a publisher of stream name and returns the function that
// releases its place when it ends (call it once). A stream that already
// has an admitted publisher, or had one that ended for a successor less
// than HandoverGrace ago, is always admitted. A new stream is refused
// with a *LimitError when MaxStreams streams are live, or when the storage
// in use has reached StorageBudget and its JetStream stream does not exist
// (Exists); an error says when the storage cannot be measured.
func (a *Admission) Admit(ctx context.Context, name string) (release func(), err error) {
	a.mu.Lock()
	if a.holdsLocked(name) {
		return a.admitLocked(name), nil
	}
	if n := a.occupiedLocked(); a.cfg.MaxStreams > 0 && n >= a.cfg.MaxStreams {
		a.mu.Unlock()
		return nil, &LimitError{Limit: "max-streams", Detail: fmt.Sprintf("%d of %d live", n, a.cfg.MaxStreams),
			Wait: DefaultRetryAfter, err: ErrMaxStreams}
	}
	a.mu.Unlock()

	if a.cfg.StorageBudget > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, usageTimeout)
			defer cancel()
		}
		used, err := a.cfg.Usage(ctx)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: admitting stream %s: measuring the storage in use: %w", name, err)
		}
		if used >= a.cfg.StorageBudget && !a.exists(ctx, name) {
			return nil, &LimitError{Limit: "storage-budget", Detail: fmt.Sprintf("%d of %d bytes in use", used, a.cfg.StorageBudget),
				Wait: a.cfg.RetryAfter, err: ErrStorageBudget}
		}
	}

	a.mu.Lock()
	if n := a.occupiedLocked(); !a.holdsLocked(name) && a.cfg.MaxStreams > 0 && n >= a.cfg.MaxStreams {
		// Others were admitted while the storage was measured.
		a.mu.Unlock()
		return nil, &LimitError{Limit: "max-streams", Detail: fmt.Sprintf("%d of %d live", n, a.cfg.MaxStreams),
			Wait: DefaultRetryAfter, err: ErrMaxStreams}
	}
	return a.admitLocked(name), nil
}

// holdsLocked reports whether name has a place: a publisher, or one that
// ended for a successor less than HandoverGrace ago.
func (a *Admission) holdsLocked(name string) bool {
	if a.live[name] > 0 {
		return true
	}
	t, ok := a.ended[name]
	return ok && a.now().Sub(t) < HandoverGrace
}

// occupiedLocked is the number of places taken, forgetting the ended
// streams whose grace ran out.
func (a *Admission) occupiedLocked() int {
	now := a.now()
	for name, t := range a.ended {
		if now.Sub(t) >= HandoverGrace {
			delete(a.ended, name)
		}
	}
	return len(a.live) + len(a.ended)
}

// exists reports whether name's JetStream stream exists (false when it
// cannot tell).
func (a *Admission) exists(ctx context.Context, name string) bool {
	if a.cfg.Exists == nil {
		return false
	}
	ok, err := a.cfg.Exists(ctx, name)
	return err == nil && ok
}

// admitLocked records a publisher of name and unlocks mu.
func (a *Admission) admitLocked(name string) func() {
	a.live[name]++
	delete(a.ended, name)
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			handover := a.cfg.Successor != nil && a.cfg.Successor(name)
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.live[name]--; a.live[name] <= 0 {
				delete(a.live, name)
				if handover {
					a.ended[name] = a.now()
				}
			}
		})
	}
}

// Live reports whether stream name has an admitted publisher.
func (a *Admission) Live(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live[name] > 0
}

// LiveStreams is the number of places taken: streams with an admitted
// publisher, or one that ended for a successor less than HandoverGrace
// ago.
func (a *Admission) LiveStreams() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.occupiedLocked()
}

// Publishers returns next with admission: a publisher is opened only once
// Admit admitted it, and its place is released when its Shutdown returns
// (or when it could not be opened).
func (a *Admission) Publishers(next ingest.NewPublisherFunc) ingest.NewPublisherFunc {
	return func(ctx context.Context, stream string, epoch uint64, onAck func(time.Duration, error)) (ingest.Publisher, error) {
		release, err := a.Admit(ctx, stream)
		if err != nil {
			return nil, err
		}
		p, err := next(ctx, stream, epoch, onAck)
		if err != nil {
			release()
			return nil, err
		}
		return &admittedPublisher{Publisher: p, release: release}, nil
	}
}

// admittedPublisher releases its place in the Admission when it shuts down.
type admittedPublisher struct {
	ingest.Publisher
	release func()
}

func (p *admittedPublisher) Shutdown(ctx context.Context) error {
	defer p.release()
	return p.Publisher.Shutdown(ctx)
}
