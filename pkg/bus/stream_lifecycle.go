package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ensureStream creates the JetStream stream cfg, or brings an existing one
// to cfg. An existing stream whose update JetStream refuses for lack of
// storage is used as it is (with a warning): JetStream checks an update
// against byte reservations and a store size that may have shrunk since the
// stream was created (a restart with less free disk), and a stream that
// exists must keep ingesting. A stream already equal to cfg is not updated.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, logger *slog.Logger) error {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return streamError("create", cfg, err)
		}
		// Created concurrently (another publisher): update it below.
		st, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return streamError("look up", cfg, err)
	}
	have := st.CachedInfo().Config
	if sameStream(have, cfg) {
		return nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		if isStorageError(err) && have.Storage == cfg.Storage {
			logger.Warn("media stream kept with its current settings: JetStream refused the update for lack of storage",
				"jetstream_stream", cfg.Name, "max_age", have.MaxAge, "max_bytes", have.MaxBytes, "err", err)
			return nil
		}
		return streamError("update", cfg, err)
	}
	return nil
}

// sameStream reports whether have already has every setting of want that a
// Publisher sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Retention == want.Retention && have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes &&
		have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.AllowDirect == want.AllowDirect && have.AllowRollup == want.AllowRollup &&
		have.AllowMsgTTL == want.AllowMsgTTL && have.DenyDelete == want.DenyDelete && have.DenyPurge == want.DenyPurge
}

func streamError(op string, cfg jetstream.StreamConfig, err error) error {
	if isStorageError(err) {
		err = fmt.Errorf("%w: %w", ErrInsufficientStorage, err)
	}
	return fmt.Errorf("bus: %s stream %s (storage %s, replicas %d; storage cannot change on an existing stream): %w",
		op, cfg.Name, cfg.Storage, cfg.Replicas, err)
}

// isStorageError reports whether JetStream refused for lack of storage.
func isStorageError(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10047, // insufficient storage resources available
		10023, // insufficient resources
		10002: // resource limits exceeded for account
		return true
	}
	return false
}

// MediaStream is a media stream's JetStream stream as RemoveStream's caller
// sees it.
type MediaStream struct {
	Name    string    // the stream name
	Created time.Time // when the JetStream stream was created
	// LastMessage is when its last stored message was written (zero when
	// it holds none).
	LastMessage time.Time
	// Bytes is the size of the messages it holds.
	Bytes uint64
}

// MediaStreams lists the JetStream streams of media streams (MEDIA_NAME
// bound to media.NAME.>), sorted by name.
func MediaStreams(ctx context.Context, js jetstream.JetStream) ([]MediaStream, error) {
	l := js.ListStreams(ctx, jetstream.WithStreamListSubject(SubjectRoot+".>"))
	var out []MediaStream
	for info := range l.Info() {
		name, ok := strings.CutPrefix(info.Config.Name, StreamPrefix)
		if !ok || ValidateName(name) != nil {
			continue
		}
		out = append(out, MediaStream{Name: name, Created: info.Created, LastMessage: info.State.LastTime, Bytes: info.State.Bytes})
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("bus: list media streams: %w", err)
	}
	slices.SortFunc(out, func(a, b MediaStream) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// CatalogRecord is a catalog entry with the revision of its key.
type CatalogRecord struct {
	CatalogEntry
	Revision uint64
}

// Lookup returns the entry of stream name with its revision: ErrNotFound
// when there is none, ErrInvalidName for a bad name.
func (c *Catalog) Lookup(ctx context.Context, name string) (CatalogRecord, error) {
	if err := ValidateName(name); err != nil {
		return CatalogRecord{}, err
	}
	kve, err := c.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return CatalogRecord{}, fmt.Errorf("bus: catalog entry %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return CatalogRecord{}, fmt.Errorf("bus: catalog get %q: %w", name, err)
	}
	e, err := decodeEntry(kve.Value())
	if err != nil {
		return CatalogRecord{}, fmt.Errorf("bus: catalog entry %q: %w", name, err)
	}
	return CatalogRecord{CatalogEntry: e, Revision: kve.Revision()}, nil
}

// ErrChanged is returned by RemoveStream when the catalog entry changed
// since it was read (the stream went live again): nothing was removed.
var ErrChanged = errors.New("catalog entry changed")

// RemoveStream removes media stream name: its catalog entry, when rec is
// not nil and the key is still at rec.Revision (ErrChanged otherwise:
// the stream went live again, nothing is removed), then its JetStream
// stream with every message. A stream or entry already gone is not an
// error. The caller decides that the stream has ended and its retention
// ran out (docs/bus.md, Lifecycle).
func RemoveStream(ctx context.Context, js jetstream.JetStream, c *Catalog, name string, rec *CatalogRecord) error {
	subj, err := SubjectsFor(name)
	if err != nil {
		return err
	}
	if rec != nil {
		err := c.kv.Delete(ctx, name, jetstream.LastRevision(rec.Revision))
		switch {
		case isCASConflict(err):
			return fmt.Errorf("bus: remove stream %s: %w", name, ErrChanged)
		case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("bus: remove stream %s: catalog entry: %w", name, err)
		}
	}
	if err := js.DeleteStream(ctx, subj.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("bus: remove stream %s: %w", name, err)
	}
	return nil
}
