package bus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// cue returns the message of an SCTE-35 cue: its splice_info_section as
// the payload, the PTS it applies to in Whepcast-Pts.
func (e encoder) cue(c tsframes.Cue) *nats.Msg {
	return &nats.Msg{
		Subject: e.subj.Cue,
		Data:    c.Section,
		Header: nats.Header{
			HeaderEpoch: []string{e.epoch},
			HeaderPTS:   []string{strconv.FormatInt(c.PTS, 10)},
		},
	}
}

// decodeCue reads a cue message: the section is parsed again for its
// fields (a cue is published only when it parsed).
func decodeCue(h nats.Header, data []byte) (*tsframes.Cue, error) {
	pts, err := headerInt(h, HeaderPTS)
	if err != nil {
		return nil, err
	}
	si, err := tsframes.ParseSpliceInfo(data)
	if err != nil {
		return nil, err
	}
	return &tsframes.Cue{PTS: pts, SpliceInfo: si, Section: data}, nil
}

// PublishCue publishes an SCTE-35 cue of the publication asynchronously,
// like Publish: cues before the first Announce are ignored (nil). Errors:
// ErrClosed after Shutdown, ctx's error, or an error wrapping ErrDropped
// when the in-flight window had no room within StallTimeout (the cue is
// lost and counted as a dropped frame).
func (p *Publisher) PublishCue(ctx context.Context, c tsframes.Cue) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("bus: publish cue %s: %w", p.subj.Name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.annJSON == nil {
		return nil
	}
	deadline := time.Now().Add(p.cfg.StallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.publishAsync(p.enc.cue(c), deadline); err != nil {
		p.dropped.Add(1)
		if p.dropLog.allow(time.Now()) {
			p.logger.Warn("SCTE-35 cue dropped", "pts", c.PTS, "command", c.Command.String(), "err", err)
		}
		return fmt.Errorf("bus: publish cue %s: %w: %w", p.subj.Name, ErrDropped, err)
	}
	return nil
}

// DeliverCues makes the reader deliver the stream's SCTE-35 cues too
// (Message.Cue), as SubscribeOptions.Cues does for a Subscription. Call it
// before the first Next.
func (r *RangeReader) DeliverCues() { r.dec.cues = true }

// CueLookback is how far before a range's first keyframe EarlierCues
// looks for cues: a cue is published ahead of the frames it applies to
// (SCTE-35 encoders send it seconds before the splice).
const CueLookback = 30 * time.Second

// maxEarlierCues bounds the cues EarlierCues queues.
const maxEarlierCues = 64

// EarlierCues queues, before the range's frames, the cues stored up to
// CueLookback before its first keyframe (at most 64, the latest), so that a
// reader that starts in the past also gets the cues published ahead of the
// frames it plays. They are delivered with the keyframe's store time as
// Published. It needs DeliverCues; call it before the first Next. ctx
// bounds the reading.
func (r *RangeReader) EarlierCues(ctx context.Context) error {
	if !r.dec.cues || r.start.IsZero() {
		return nil
	}
	from := r.start.Add(-CueLookback)
	js := r.pull.js
	name := "whepcast_range_" + nuid.Next()
	cons, err := js.CreateConsumer(ctx, r.subj.Stream, jetstream.ConsumerConfig{
		Name:              name,
		Description:       "whepcast earlier cues of " + r.subj.Name,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &from,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     r.subj.Cue,
		InactiveThreshold: consumerInactive,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("bus: earlier cues of %s: %w", r.subj.Name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, r.subj.Stream, name)
	}()
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
	batch, err := cons.Fetch(int(min(pending, maxEarlierCues*4)), jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return fmt.Errorf("bus: earlier cues of %s: %w", r.subj.Name, err)
	}
	var cues []Message
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Stream > r.cursor {
			continue // at or after the first keyframe: the range has it
		}
		d := decoder{subj: r.subj, cues: true}
		msg, ok, err := d.push(meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data())
		if err != nil || !ok || msg.Cue == nil {
			continue
		}
		msg.Published = r.start
		cues = append(cues, msg)
	}
	if len(cues) > maxEarlierCues {
		cues = cues[len(cues)-maxEarlierCues:]
	}
	r.queue = append(cues, r.queue...)
	return nil
}
