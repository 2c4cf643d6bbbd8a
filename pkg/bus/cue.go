package bus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

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
