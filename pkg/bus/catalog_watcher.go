package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WatcherBuffer is the capacity of a Watcher.Subscribe channel; when the
// reader falls behind, the oldest change is dropped and counted.
const WatcherBuffer = 64

// Watcher keeps an in-memory view of the catalog, fed by a KV watch (pushed
// by NATS, no polling). One per node is enough: lookups are local. On every
// reconnect it reloads the whole catalog, so entries that changed or expired
// while it was disconnected are caught up.
type Watcher struct {
	nc     *nats.Conn
	kv     jetstream.KeyValue
	logger *slog.Logger

	mu      sync.RWMutex
	view    map[string]CatalogEntry
	changed chan struct{} // closed and replaced on every change
	stopped bool
	subs    map[*watchSub]struct{}

	dropped atomic.Uint64
	loads   atomic.Uint64 // KV watches started: 1, plus one per reload

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type watchSub struct {
	ch chan CatalogEntry
}

// WaitCatalog is WatchCatalog retried with backoff (retryMin to retryMax)
// until it succeeds or ctx ends, when it returns the last error: a
// JetStream cluster electing its meta leader, or a server whose JetStream is
// not enabled yet, answers no API request for seconds, and a process started
// then waits for it rather than fail.
func WaitCatalog(ctx context.Context, nc *nats.Conn, logger *slog.Logger) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	backoff := retryMin
	for {
		w, err := WatchCatalog(ctx, nc, logger)
		if err == nil || nc == nil {
			return w, err
		}
		logger.Warn("catalog not available; retrying", "err", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return nil, err
		}
		backoff = min(2*backoff, retryMax)
	}
}

// WatchCatalog opens the catalog (creating the bucket with one replica if it
// is missing), loads it and keeps watching it until Close. ctx bounds the
// initial load.
func WatchCatalog(ctx context.Context, nc *nats.Conn, logger *slog.Logger) (*Watcher, error) {
	if nc == nil {
		return nil, errors.New("bus: watch catalog: nil connection")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: watch catalog: %w", err)
	}
	cat, err := OpenCatalog(ctx, js, 1)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		nc:      nc,
		kv:      cat.kv,
		logger:  logger.With("bucket", CatalogBucket),
		changed: make(chan struct{}),
		subs:    make(map[*watchSub]struct{}),
		done:    make(chan struct{}),
	}
	// Listen for reconnects before the first load so none is missed.
	status := nc.StatusChanged(nats.CONNECTED)
	// The KV watch lives as long as the Watcher (nats.go ends a watch
	// when the context it was created with ends); ctx only bounds the
	// wait for the initial values.
	rctx, cancel := context.WithCancel(context.Background())
	kw, view, err := w.load(rctx, ctx)
	if err != nil {
		cancel()
		nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("bus: watch catalog: %w", err)
	}
	w.view = view
	w.cancel = cancel
	go w.run(rctx, kw, status)
	return w, nil
}

// load starts a KV watch that lasts until watchCtx ends and reads the
// current values, up to the watch's end-of-initial-values marker, waiting
// at most until ctx ends.
func (w *Watcher) load(watchCtx, ctx context.Context) (jetstream.KeyWatcher, map[string]CatalogEntry, error) {
	w.loads.Add(1)
	kw, err := w.kv.WatchAll(watchCtx)
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: %w", CatalogBucket, err)
	}
	view := make(map[string]CatalogEntry)
	for {
		select {
		case kve, ok := <-kw.Updates():
			if !ok {
				return nil, nil, fmt.Errorf("watch %s: closed during load", CatalogBucket)
			}
			if kve == nil {
				return kw, view, nil
			}
			if e, ok := w.decode(kve); ok {
				view[kve.Key()] = e
			} else {
				delete(view, kve.Key())
			}
		case <-ctx.Done():
			stopKeyWatcher(kw)
			return nil, nil, ctx.Err()
		}
	}
}

// decode returns the entry of a put, false for a delete, purge, expiry
// marker or an undecodable value.
func (w *Watcher) decode(kve jetstream.KeyValueEntry) (CatalogEntry, bool) {
	if kve.Operation() != jetstream.KeyValuePut {
		return CatalogEntry{}, false
	}
	e, err := decodeEntry(kve.Value())
	if err != nil {
		w.logger.Warn("ignoring catalog entry", "key", kve.Key(), "err", err)
		return CatalogEntry{}, false
	}
	if e.Stream != kve.Key() {
		w.logger.Warn("ignoring catalog entry stored under another key", "key", kve.Key(), "stream", e.Stream)
		return CatalogEntry{}, false
	}
	return e, true
}

func (w *Watcher) run(ctx context.Context, kw jetstream.KeyWatcher, status chan nats.Status) {
	defer close(w.done)
	defer w.nc.RemoveStatusListener(status)
	defer func() {
		if kw != nil {
			stopKeyWatcher(kw)
		}
	}()
	var updates <-chan jetstream.KeyValueEntry
	if kw != nil {
		updates = kw.Updates()
	}
	resync := func() {
		if kw != nil {
			stopKeyWatcher(kw)
			kw, updates = nil, nil
		}
		backoff := retryMin
		for ctx.Err() == nil && !w.nc.IsClosed() {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			nkw, view, err := w.load(ctx, lctx)
			cancel()
			if err == nil {
				kw, updates = nkw, nkw.Updates()
				w.replace(view)
				return
			}
			if ctx.Err() != nil {
				return
			}
			w.logger.Warn("catalog reload failed, retrying", "err", err, "retry_in", backoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, retryMax)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-status:
			if !ok {
				return
			}
			if st == nats.CONNECTED {
				w.logger.Info("reconnected, reloading catalog")
				resync()
			}
		case kve, ok := <-updates:
			if !ok {
				if w.nc.IsClosed() {
					return
				}
				w.logger.Warn("catalog watch closed, reloading")
				kw, updates = nil, nil
				resync()
				continue
			}
			if kve == nil { // end of initial values
				continue
			}
			if e, ok := w.decode(kve); ok {
				w.apply(kve.Key(), e, true)
			} else {
				w.apply(kve.Key(), CatalogEntry{}, false)
			}
		}
	}
}

// apply records one change and notifies waiters and subscribers.
func (w *Watcher) apply(key string, e CatalogEntry, present bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old, had := w.view[key]
	if present {
		w.view[key] = e
		w.notifyLocked(e)
		return
	}
	if had {
		delete(w.view, key)
		old.State = StateDeleted
		w.notifyLocked(old)
	}
}

// replace swaps in a freshly loaded view and reports the differences.
func (w *Watcher) replace(view map[string]CatalogEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.view
	w.view = view
	for k, e := range view {
		if o, ok := old[k]; !ok || o.Epoch != e.Epoch || o.State != e.State || !o.Updated.Equal(e.Updated) {
			w.notifyLocked(e)
		}
	}
	for k, o := range old {
		if _, ok := view[k]; !ok {
			o.State = StateDeleted
			w.notifyLocked(o)
		}
	}
}

// notifyLocked wakes waiters and sends e to subscribers; w.mu is held.
func (w *Watcher) notifyLocked(e CatalogEntry) {
	close(w.changed)
	w.changed = make(chan struct{})
	for s := range w.subs {
		for {
			select {
			case s.ch <- e:
			default:
				// Full: drop the oldest change and try again.
				select {
				case <-s.ch:
					w.dropped.Add(1)
				default:
				}
				continue
			}
			break
		}
	}
}

// Get returns the entry of name as last seen (live or ended).
func (w *Watcher) Get(name string) (CatalogEntry, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.view[name]
	return e, ok
}

// Live returns the live entries, sorted by stream name.
func (w *Watcher) Live() []CatalogEntry {
	w.mu.RLock()
	out := make([]CatalogEntry, 0, len(w.view))
	for _, e := range w.view {
		if e.State == StateLive {
			out = append(out, e)
		}
	}
	w.mu.RUnlock()
	sortEntries(out)
	return out
}

// Wait returns the entry of name as soon as it is live with a non-empty
// announcement (at once when it already is). It returns ctx's error when ctx
// ends first, ErrClosed after Close and ErrInvalidName for a bad name.
func (w *Watcher) Wait(ctx context.Context, name string) (CatalogEntry, error) {
	if err := ValidateName(name); err != nil {
		return CatalogEntry{}, err
	}
	for {
		w.mu.RLock()
		e, ok := w.view[name]
		changed, stopped := w.changed, w.stopped
		w.mu.RUnlock()
		if ok && e.Playable() {
			return e, nil
		}
		if stopped {
			return CatalogEntry{}, fmt.Errorf("bus: wait for %s: %w", name, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return CatalogEntry{}, ctx.Err()
		}
	}
}

// Subscribe returns a channel that receives every change of the catalog:
// entries put (live, updated, ended) and entries removed (State
// StateDeleted). The channel holds WatcherBuffer changes; when the reader
// falls behind, the oldest is dropped (see Dropped). cancel releases it and
// closes the channel; Close closes every channel.
func (w *Watcher) Subscribe() (ch <-chan CatalogEntry, cancel func()) {
	s := &watchSub{ch: make(chan CatalogEntry, WatcherBuffer)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		close(s.ch)
		return s.ch, func() {}
	}
	w.subs[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if _, ok := w.subs[s]; ok {
				delete(w.subs, s)
				close(s.ch)
			}
		})
	}
}

// Dropped is the number of changes dropped from slow Subscribe readers.
func (w *Watcher) Dropped() uint64 { return w.dropped.Load() }

// Close ends the watch, wakes every Wait (with ErrClosed) and closes every
// Subscribe channel. It may be called more than once.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
		w.mu.Lock()
		w.stopped = true
		close(w.changed)
		w.changed = make(chan struct{})
		for s := range w.subs {
			close(s.ch)
		}
		clear(w.subs)
		w.mu.Unlock()
	})
	<-w.done
}
