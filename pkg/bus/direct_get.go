package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// defaultRequestTimeout bounds a request whose ctx has no deadline.
const defaultRequestTimeout = 5 * time.Second

// LatestKeyframe returns the stream sequence of the latest keyframe of
// stream name (the first part of it, when it was split), with one direct
// get of the last message on media.NAME.v.key. It returns ErrNotFound when
// the stream does not exist or holds no keyframe, ErrInvalidName for a bad
// name.
func LatestKeyframe(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return 0, err
	}
	m, err := directGetLast(ctx, js, subj.Stream, subj.Key)
	if err != nil {
		return 0, fmt.Errorf("bus: latest keyframe of %s: %w", name, err)
	}
	seq, err := strconv.ParseUint(headerValue(m.Header, jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bus: latest keyframe of %s: bad %s header: %w", name, jetstream.SequenceHeader, err)
	}
	return seq, nil
}

// LatestAnnouncement returns the announcement currently stored on
// media.NAME.tracks and its sequence (one direct get). It returns
// ErrNotFound when the stream or the announcement does not exist.
func LatestAnnouncement(ctx context.Context, js jetstream.JetStream, name string) (Message, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return Message{}, err
	}
	m, err := directGetLast(ctx, js, subj.Stream, subj.Tracks)
	if err != nil {
		return Message{}, fmt.Errorf("bus: announcement of %s: %w", name, err)
	}
	seq, err := strconv.ParseUint(headerValue(m.Header, jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Message{}, fmt.Errorf("bus: announcement of %s: bad %s header: %w", name, jetstream.SequenceHeader, err)
	}
	d := decoder{subj: subj}
	msg, ok, err := d.push(seq, subj.Tracks, m.Header, m.Data)
	if err != nil || !ok {
		return Message{}, fmt.Errorf("bus: announcement of %s: %w", name, err)
	}
	return msg, nil
}

// directGetLast fetches the last message on subject of stream with the
// direct get API ($JS.API.DIRECT.GET.<stream>.<subject>).
func directGetLast(ctx context.Context, js jetstream.JetStream, stream, subject string) (*nats.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
		defer cancel()
	}
	req := apiPrefix(js) + "DIRECT.GET." + stream + "." + subject
	m, err := js.Conn().RequestWithContext(ctx, req, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("stream %s: %w", stream, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("direct get %s: %w", subject, err)
	}
	if len(m.Data) == 0 {
		if status := headerValue(m.Header, "Status"); status != "" {
			if status == "404" {
				return nil, fmt.Errorf("no message on %s: %w", subject, ErrNotFound)
			}
			return nil, fmt.Errorf("direct get %s: status %s %s", subject, status, headerValue(m.Header, "Description"))
		}
	}
	return m, nil
}

// apiPrefix is the JetStream API prefix js sends requests to.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		if !strings.HasSuffix(o.APIPrefix, ".") {
			return o.APIPrefix + "."
		}
		return o.APIPrefix
	}
	return jetstream.DefaultAPIPrefix
}
