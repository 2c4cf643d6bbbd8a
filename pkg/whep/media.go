package whep

import (
	"context"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

// Catalog tells when a stream is live: a *bus.Watcher.
type Catalog interface {
	// Get returns the stream's entry, and false when there is none.
	Get(name string) (bus.CatalogEntry, bool)
	// Wait returns the stream's entry once it is live with tracks, or
	// ctx's error.
	Wait(ctx context.Context, name string) (bus.CatalogEntry, error)
}

// Media provides the tracks of a session: FromRelay wraps a *relay.Relay.
type Media interface {
	// RegisterCodecs registers the codecs of the stream ann on m.
	RegisterCodecs(m *webrtc.MediaEngine, ann bus.Announcement) error
	// RegisterInterceptors registers the RTCP interceptors on ir.
	RegisterInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry) error
	// Join returns a viewer of the stream with the wanted kinds.
	Join(ctx context.Context, ann bus.Announcement, want relay.Want) (Viewer, error)
}

// Viewer is one session's view of a stream: a *relay.Viewer.
type Viewer interface {
	// VideoTrack and AudioTrack return the tracks to send, nil when the
	// viewer has none of that kind.
	VideoTrack() webrtc.TrackLocal
	AudioTrack() webrtc.TrackLocal
	// BindSenders hands over the senders the tracks were added with (nil
	// for a kind without a track), so that the viewer reads their RTCP.
	BindSenders(video, audio *webrtc.RTPSender)
	// SetBatcher makes the viewer batch the packets of a frame; called
	// before Start.
	SetBatcher(b relay.Batcher)
	// Start begins writing media; called once the PeerConnection is
	// connected.
	Start()
	// Done is closed when the viewer ends by itself; Err says why.
	Done() <-chan struct{}
	Err() error
	// Stats returns the viewer's counters.
	Stats() relay.ViewerStats
	// Close ends the viewer; it is idempotent.
	Close()
}

// FromRelay returns the Media of a relay.
func FromRelay(r *relay.Relay) Media { return relayMedia{r: r} }

type relayMedia struct{ r *relay.Relay }

func (relayMedia) RegisterCodecs(m *webrtc.MediaEngine, ann bus.Announcement) error {
	return relay.RegisterCodecs(m, ann)
}

func (relayMedia) RegisterInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
	return relay.RegisterInterceptors(m, ir)
}

func (rm relayMedia) Join(ctx context.Context, ann bus.Announcement, want relay.Want) (Viewer, error) {
	v, err := rm.r.Join(ctx, ann, want)
	if err != nil {
		return nil, err
	}
	return v, nil
}
