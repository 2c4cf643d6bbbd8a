package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// closeGrace bounds the catalog update of Publisher.Shutdown when its context
// ended during the flush, so that the entry is still marked ended.
const closeGrace = 2 * time.Second

// catalogRefresher keeps the catalog entry of one epoch: live from the
// first announcement, refreshed every period while live, ended at the end.
// It never overwrites an entry of a later epoch (a takeover): once it sees
// one, it leaves the entry alone for good.
type catalogRefresher struct {
	catalog *Catalog
	stream  string
	epoch   uint64
	started time.Time
	period  time.Duration
	// publishErrs returns the publisher's errors and drops, shown as
	// IngestStats.PublishErrs.
	publishErrs func() uint64
	logger      *slog.Logger
	errLog      *logLimiter // shared with the publisher's error log

	// mu guards the entry state shared with the refresh goroutine.
	mu         sync.Mutex
	announced  bool
	superseded bool
	tracks     Announcement
	ingest     IngestStats

	cancel context.CancelFunc
	done   chan struct{}
}

// start starts the refresh goroutine; close stops it.
func (r *catalogRefresher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(ctx)
}

// close stops the refresh goroutine and waits for it.
func (r *catalogRefresher) close() {
	r.cancel()
	<-r.done
}

// live records the tracks of a new announcement and puts the entry live
// (bounded by ctx). It returns nil when a later epoch took the entry over.
func (r *catalogRefresher) live(ctx context.Context, tracks Announcement) error {
	r.mu.Lock()
	r.announced, r.tracks = true, tracks
	superseded := r.superseded
	entry := r.entryLocked(StateLive)
	r.mu.Unlock()
	if superseded {
		return nil
	}
	err := r.catalog.put(ctx, entry)
	if errors.Is(err, errSuperseded) {
		r.markSuperseded()
		return nil
	}
	return err
}

// setIngest sets the ingest counters of the entry from the next update on.
func (r *catalogRefresher) setIngest(s IngestStats) {
	r.mu.Lock()
	r.ingest = s
	r.mu.Unlock()
}

// end marks the entry ended, if it was announced and not taken over. When
// ctx has already ended, it still tries for up to closeGrace.
func (r *catalogRefresher) end(ctx context.Context) error {
	r.mu.Lock()
	mark := r.announced && !r.superseded
	entry := r.entryLocked(StateEnded)
	r.mu.Unlock()
	if !mark {
		return nil
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
		defer cancel()
	}
	if err := r.catalog.put(ctx, entry); err != nil && !errors.Is(err, errSuperseded) {
		return err
	}
	return nil
}

// entryLocked builds the entry; mu must be held.
func (r *catalogRefresher) entryLocked(state string) CatalogEntry {
	st := r.ingest
	st.PublishErrs = r.publishErrs()
	return CatalogEntry{
		Stream:  r.stream,
		Epoch:   r.epoch,
		State:   state,
		Started: r.started,
		Updated: time.Now().UTC(),
		Tracks:  r.tracks,
		Stats:   st,
	}
}

func (r *catalogRefresher) markSuperseded() {
	r.mu.Lock()
	already := r.superseded
	r.superseded = true
	r.mu.Unlock()
	if !already {
		r.logger.Warn("catalog entry taken over by a later epoch; no longer refreshing it")
	}
}

func (r *catalogRefresher) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		skip := !r.announced || r.superseded
		entry := r.entryLocked(StateLive)
		r.mu.Unlock()
		if skip {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, max(r.period, time.Second))
		err := r.catalog.put(pctx, entry)
		cancel()
		switch {
		case errors.Is(err, errSuperseded):
			r.markSuperseded()
		case err != nil && ctx.Err() == nil:
			if r.errLog.allow(time.Now()) {
				r.logger.Warn("catalog refresh failed", "err", err)
			}
		}
	}
}
