package ingest

import (
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Cue publishes an SCTE-35 cue of the source (tsframes.CueSink: MPEG-TS
// sources, and the RTMP ingest's cue points) once the publication is live;
// a cue before its first access unit has no frames to apply to and is
// dropped.
func (h *frameForwarder) Cue(c tsframes.Cue) error {
	if h.il != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	if h.pub == nil {
		h.s.log.Debug("SCTE-35 cue before the first access unit: dropped", "pts", c.PTS, "command", c.Command.String())
		return nil
	}
	h.s.log.Info("SCTE-35 cue", "pts", c.PTS, "command", c.Command.String(), "event_id", c.EventID,
		"out_of_network", c.OutOfNetwork, "duration", c.Duration)
	return h.check(h.pub.PublishCue(h.ctx, c))
}
