package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OldestKeyframe returns the store time (the NATS server's clock) of the
// oldest keyframe stream name still holds: how far back the stream can be
// played. It makes one direct get of the first message on media.NAME.v.key.
// It returns ErrNotFound when the stream does not exist or holds no
// keyframe, ErrInvalidName for a bad name.
func OldestKeyframe(ctx context.Context, js jetstream.JetStream, name string) (time.Time, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return time.Time{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
		defer cancel()
	}
	body, err := json.Marshal(struct {
		Seq        uint64 `json:"seq"`
		NextBySubj string `json:"next_by_subj"`
	}{1, subj.Key})
	if err != nil {
		return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: %w", name, err)
	}
	m, err := js.Conn().RequestWithContext(ctx, apiPrefix(js)+"DIRECT.GET."+subj.Stream, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: direct get: %w", name, err)
	}
	if status := headerValue(m.Header, "Status"); len(m.Data) == 0 && status != "" {
		if status == "404" {
			return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: no message on %s: %w", name, subj.Key, ErrNotFound)
		}
		return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: direct get: status %s %s", name, status, headerValue(m.Header, "Description"))
	}
	at, err := time.Parse(time.RFC3339Nano, headerValue(m.Header, jetstream.TimeStampHeaer))
	if err != nil {
		return time.Time{}, fmt.Errorf("bus: oldest keyframe of %s: bad %s header: %w", name, jetstream.TimeStampHeaer, err)
	}
	return at, nil
}
