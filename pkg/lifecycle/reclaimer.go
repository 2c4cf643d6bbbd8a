package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Reclaimer limits.
const (
	// MinInterval is the shortest sweep period accepted.
	MinInterval = 10 * time.Millisecond
	// MaxInterval bounds the default sweep period.
	MaxInterval = 30 * time.Second
	// sweepTimeout bounds one sweep of Run.
	sweepTimeout = time.Minute
)

// ReclaimerConfig configures a Reclaimer.
type ReclaimerConfig struct {
	// Retention is how long a stream is kept after it ended (the
	// broker's --max-age, its DVR window); required, at least
	// bus.MinMaxAge.
	Retention time.Duration
	// Interval is the period of Run's sweeps (default a quarter of
	// Retention, at most MaxInterval).
	Interval time.Duration
	// Live, when set, reports whether the owner has a live publication of
	// a stream (possibly not in the catalog yet); such a stream is kept.
	Live func(name string) bool
	// OnRemove, when set, is called with the name of each removed stream,
	// after its removal, so that the owner drops what it keeps per stream
	// (metrics series).
	OnRemove func(name string)
	// CatalogReplicas is the replica count the catalog bucket is created
	// with if it is missing (bus.OpenCatalog; 0 means 1).
	CatalogReplicas int
	// Logger receives a line per removed stream and the errors of the
	// sweeps (default: discarded).
	Logger *slog.Logger
}

// Validate reports the first invalid field of c.
func (c ReclaimerConfig) Validate() error {
	switch {
	case c.Retention < bus.MinMaxAge:
		return fmt.Errorf("lifecycle: retention %v: want at least %v", c.Retention, bus.MinMaxAge)
	case c.Interval != 0 && c.Interval < MinInterval:
		return fmt.Errorf("lifecycle: reclaim interval %v: want at least %v", c.Interval, MinInterval)
	}
	return nil
}

// Reclaimer removes the streams that have ended once their retention has
// run out (see the package doc). Several Reclaimers (several brokers) may
// sweep the same NATS account.
type Reclaimer struct {
	js  jetstream.JetStream
	cfg ReclaimerConfig
	log *slog.Logger
	now func() time.Time

	// catalog is opened by the first sweep that finds a media stream (a
	// broker that never ingests creates nothing); only Sweep's caller
	// touches it, one sweep at a time.
	catalog *bus.Catalog
}

// NewReclaimer validates cfg and returns a Reclaimer of the media streams of
// js. It does no I/O.
func NewReclaimer(js jetstream.JetStream, cfg ReclaimerConfig) (*Reclaimer, error) {
	if js == nil {
		return nil, errors.New("lifecycle: new reclaimer: nil JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = min(max(cfg.Retention/4, MinInterval), MaxInterval)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reclaimer{js: js, cfg: cfg, log: log, now: time.Now}, nil
}

// Run sweeps every Interval until ctx is done; it returns nil then. A
// failed sweep is logged and the next one tries again.
func (r *Reclaimer) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
		_, err := r.Sweep(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.log.Warn("reclaiming ended streams failed", "err", err)
		}
	}
}

// Sweep removes, once, every media stream whose retention has run out: not
// live in the catalog nor for the owner (Live), and without a catalog
// update, a stored message or a creation for Retention. It returns the
// names removed. A stream that went live again meanwhile is skipped; the
// error joins the failures of the others. Sweeps must not overlap.
func (r *Reclaimer) Sweep(ctx context.Context) ([]string, error) {
	streams, err := bus.MediaStreams(ctx, r.js)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: sweep: %w", err)
	}
	if len(streams) == 0 {
		return nil, nil
	}
	if r.catalog == nil {
		if r.catalog, err = bus.OpenCatalog(ctx, r.js, r.cfg.CatalogReplicas); err != nil {
			return nil, fmt.Errorf("lifecycle: sweep: %w", err)
		}
	}
	var removed []string
	var errs []error
	for _, s := range streams {
		ok, err := r.reclaim(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, s.Name)
		}
	}
	return removed, errors.Join(errs...)
}

// reclaim removes s if its retention has run out.
func (r *Reclaimer) reclaim(ctx context.Context, s bus.MediaStream) (bool, error) {
	if r.live(s.Name) {
		return false, nil
	}
	last := later(s.Created, s.LastMessage)
	var rec *bus.CatalogRecord
	switch got, err := r.catalog.Lookup(ctx, s.Name); {
	case err == nil:
		if got.State == bus.StateLive {
			return false, nil // live here or on another broker
		}
		last = later(last, got.Updated)
		rec = &got
	case errors.Is(err, bus.ErrNotFound):
		// Ended longer ago than the catalog keeps entries, or never
		// announced.
	default:
		return false, fmt.Errorf("lifecycle: stream %s: %w", s.Name, err)
	}
	if r.now().Sub(last) < r.cfg.Retention || r.live(s.Name) {
		return false, nil
	}
	err := bus.RemoveStream(ctx, r.js, r.catalog, s.Name, rec)
	if errors.Is(err, bus.ErrChanged) {
		return false, nil // went live again
	}
	if err != nil {
		return false, fmt.Errorf("lifecycle: %w", err)
	}
	r.log.Info("ended stream removed: its retention ran out", "stream", s.Name,
		"ended_for", r.now().Sub(last).Round(time.Millisecond), "bytes", s.Bytes)
	if r.cfg.OnRemove != nil {
		r.cfg.OnRemove(s.Name)
	}
	return true, nil
}

func (r *Reclaimer) live(name string) bool { return r.cfg.Live != nil && r.cfg.Live(name) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// StreamExists returns an AdmissionConfig.Exists that looks the media
// stream's JetStream stream up in js.
func StreamExists(js jetstream.JetStream) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, name string) (bool, error) {
		subj, err := bus.SubjectsFor(name)
		if err != nil {
			return false, err
		}
		_, err = js.Stream(ctx, subj.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return false, nil
		}
		return err == nil, err
	}
}

// StorageUsage returns an AdmissionConfig.Usage that measures the JetStream
// storage of the account of js in use (file and memory stores together).
func StorageUsage(js jetstream.JetStream) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		info, err := js.AccountInfo(ctx)
		if err != nil {
			return 0, fmt.Errorf("JetStream account info: %w", err)
		}
		return int64(info.Store + info.Memory), nil
	}
}
