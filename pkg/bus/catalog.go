package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Catalog entry states.
const (
	StateLive  = "live"
	StateEnded = "ended"
	// StateDeleted is never stored: Watcher.Subscribe reports a removed key
	// (expired by the bucket TTL, or deleted) as an entry in this state.
	StateDeleted = "deleted"
)

// Catalog bucket settings. Both sides create the bucket with exactly this
// configuration when it is missing, so either may start first.
const (
	// CatalogTTL is how long an entry lives without a refresh.
	CatalogTTL = 30 * time.Second
	// CatalogMarkerTTL is how long the marker left by an expired entry is
	// kept, so that watchers see the removal.
	CatalogMarkerTTL = 30 * time.Second
)

// IngestStats are the counters of a publication shown in the catalog.
type IngestStats struct {
	Bytes        uint64 `json:"bytes"`
	Frames       uint64 `json:"frames"`
	Keyframes    uint64 `json:"keyframes"`
	DecodeErrors uint64 `json:"decode_errors"`
	// PublishErrs is filled in by the Publisher: frames it dropped plus
	// NATS errors it saw.
	PublishErrs uint64 `json:"publish_errors"`
	// Protocol is the ingest protocol of the publication (http, udp, srt,
	// rtmp; empty when not told).
	Protocol string `json:"protocol,omitempty"`
	// Publisher is the publisher's address (host:port as the ingest saw
	// it), for operators; empty when not told.
	Publisher string `json:"publisher,omitempty"`
}

// CatalogEntry is the value of a stream's key in CatalogBucket.
type CatalogEntry struct {
	Stream  string       `json:"stream"`
	Epoch   uint64       `json:"epoch"`
	State   string       `json:"state"`
	Started time.Time    `json:"started"`
	Updated time.Time    `json:"updated"`
	Tracks  Announcement `json:"tracks"`
	Stats   IngestStats  `json:"stats"`
}

// Playable reports whether the entry is live with at least one announced
// track: what Watcher.Wait waits for.
func (e CatalogEntry) Playable() bool {
	return e.State == StateLive && len(e.Tracks.Tracks) > 0
}

// Catalog reads and writes the catalog bucket.
type Catalog struct {
	kv jetstream.KeyValue
}

func catalogConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         CatalogBucket,
		Description:    "whepcast live streams",
		History:        1,
		TTL:            CatalogTTL,
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		LimitMarkerTTL: CatalogMarkerTTL,
	}
}

// OpenCatalog creates the catalog bucket if it is missing (with replicas
// replicas, 0 meaning 1) or binds to the existing one. An existing bucket
// with fewer replicas is scaled up to replicas (never down): a node, which
// opens the catalog with 1, may have created it before the broker, which
// opens it with its --replicas. Scaling up fails without a cluster large
// enough.
func OpenCatalog(ctx context.Context, js jetstream.JetStream, replicas int) (*Catalog, error) {
	if replicas == 0 {
		replicas = 1
	}
	if replicas < 1 || replicas > MaxReplicas {
		return nil, fmt.Errorf("bus: catalog replicas %d: want 1 to %d", replicas, MaxReplicas)
	}
	// An existing bucket is looked up, not created again: JetStream checks
	// a creation against its store before it finds the bucket exists, and
	// refuses it when the store shrank (a restart with less free disk).
	kv, err := js.KeyValue(ctx, CatalogBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, catalogConfig(replicas))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, CatalogBucket)
		}
	}
	if err == nil {
		err = raiseReplicas(ctx, js, kv, replicas)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: open catalog bucket %s: %w", CatalogBucket, err)
	}
	return &Catalog{kv: kv}, nil
}

// scaleUpWait bounds the wait for the new replicas of a scaled-up catalog
// bucket to catch up; scalePoll is how often they are checked.
const (
	scaleUpWait = 10 * time.Second
	scalePoll   = 50 * time.Millisecond
)

// raiseReplicas scales the bucket's stream up to replicas when it has
// fewer, keeping the rest of its configuration, and waits (at most
// scaleUpWait, bounded by ctx) until the new replicas are current: a write
// made while the peers change is dropped without an answer, which would
// cost the first catalog update a timeout.
func raiseReplicas(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, replicas int) error {
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return nil
	}
	cfg := bs.StreamInfo().Config
	if cfg.Replicas >= replicas {
		return nil
	}
	have := cfg.Replicas
	cfg.Replicas = replicas
	stream, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("scaling from %d to %d replicas: %w", have, replicas, err)
	}
	wctx, cancel := context.WithTimeout(ctx, scaleUpWait)
	defer cancel()
	t := time.NewTicker(scalePoll)
	defer t.Stop()
	for {
		if info, err := stream.Info(wctx); err == nil && replicasCurrent(info, replicas) {
			return nil
		}
		select {
		case <-wctx.Done():
			// Scaled, still catching up: writes are retried by the
			// refresher, so go on.
			return nil
		case <-t.C:
		}
	}
}

// replicasCurrent reports whether the stream has a leader and replicas-1
// followers that are all current.
func replicasCurrent(info *jetstream.StreamInfo, replicas int) bool {
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1 {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// Get returns the entry of stream name: ErrNotFound when there is none (never
// announced, or expired), ErrInvalidName for a bad name.
func (c *Catalog) Get(ctx context.Context, name string) (CatalogEntry, error) {
	if err := ValidateName(name); err != nil {
		return CatalogEntry{}, err
	}
	kve, err := c.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return CatalogEntry{}, fmt.Errorf("bus: catalog entry %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return CatalogEntry{}, fmt.Errorf("bus: catalog get %q: %w", name, err)
	}
	e, err := decodeEntry(kve.Value())
	if err != nil {
		return CatalogEntry{}, fmt.Errorf("bus: catalog entry %q: %w", name, err)
	}
	return e, nil
}

// List returns every entry of the catalog (live and ended), sorted by
// stream name. Entries that cannot be decoded are skipped.
func (c *Catalog) List(ctx context.Context) ([]CatalogEntry, error) {
	kw, err := c.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("bus: catalog list: %w", err)
	}
	defer stopKeyWatcher(kw)
	var out []CatalogEntry
	for {
		select {
		case kve, ok := <-kw.Updates():
			if !ok {
				return nil, fmt.Errorf("bus: catalog list: watch closed")
			}
			if kve == nil {
				sortEntries(out)
				return out, nil
			}
			if e, err := decodeEntry(kve.Value()); err == nil {
				out = append(out, e)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: catalog list: %w", ctx.Err())
		}
	}
}

// put stores e unless the stored entry belongs to a later epoch (then it
// returns errSuperseded): a publisher that was taken over must not
// overwrite, nor end, its successor's entry. Concurrent writers are resolved
// with the key's revision.
func (c *Catalog) put(ctx context.Context, e CatalogEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("bus: encode catalog entry: %w", err)
	}
	for range 4 {
		cur, err := c.kv.Get(ctx, e.Stream)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = c.kv.Create(ctx, e.Stream, data)
			if isCASConflict(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("bus: catalog create %q: %w", e.Stream, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("bus: catalog get %q: %w", e.Stream, err)
		}
		if old, derr := decodeEntry(cur.Value()); derr == nil && old.Epoch > e.Epoch {
			return errSuperseded
		}
		_, err = c.kv.Update(ctx, e.Stream, data, cur.Revision())
		if isCASConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bus: catalog update %q: %w", e.Stream, err)
		}
		return nil
	}
	return fmt.Errorf("bus: catalog put %q: %w", e.Stream, errContention)
}

func isCASConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func decodeEntry(b []byte) (CatalogEntry, error) {
	var e CatalogEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return CatalogEntry{}, fmt.Errorf("decode catalog entry: %w", err)
	}
	if err := ValidateName(e.Stream); err != nil {
		return CatalogEntry{}, fmt.Errorf("decode catalog entry: %w", err)
	}
	return e, nil
}

func sortEntries(es []CatalogEntry) {
	slices.SortFunc(es, func(a, b CatalogEntry) int { return strings.Compare(a.Stream, b.Stream) })
}

// stopKeyWatcher stops kw and drains its channel, so that the delivering
// callback (which blocks on a full channel) can finish and close it.
func stopKeyWatcher(kw jetstream.KeyWatcher) {
	_ = kw.Stop()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-kw.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
