package bus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// KeyframeRequestRoot is the first two tokens of the core NATS subject
// (whepcast.keyframe.NAME, no JetStream) on which a whep-node asks the
// publisher of stream NAME for a keyframe: an empty message, sent when a
// viewer starts and the node has no keyframe to give it. Ingests that can
// ask their publisher (WHIP: RTCP PLI) subscribe; the others never do.
const KeyframeRequestRoot = "whepcast.keyframe"

// KeyframeRequestSubject returns the keyframe request subject of stream
// name, or an error wrapping ErrInvalidName.
func KeyframeRequestSubject(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return KeyframeRequestRoot + "." + name, nil
}

// RequestKeyframe publishes a keyframe request for stream name on nc. It
// does not wait: nobody may be listening.
func RequestKeyframe(nc *nats.Conn, name string) error {
	subj, err := KeyframeRequestSubject(name)
	if err != nil {
		return fmt.Errorf("bus: keyframe request: %w", err)
	}
	if err := nc.Publish(subj, nil); err != nil {
		return fmt.Errorf("bus: keyframe request for %s: %w", name, err)
	}
	return nil
}

// SubscribeKeyframeRequests calls fn, on the subscription's goroutine, for
// every keyframe request for stream name until the subscription is
// unsubscribed (or nc closes).
func SubscribeKeyframeRequests(nc *nats.Conn, name string, fn func()) (*nats.Subscription, error) {
	subj, err := KeyframeRequestSubject(name)
	if err != nil {
		return nil, fmt.Errorf("bus: keyframe requests: %w", err)
	}
	sub, err := nc.Subscribe(subj, func(*nats.Msg) { fn() })
	if err != nil {
		return nil, fmt.Errorf("bus: keyframe requests of %s: %w", name, err)
	}
	return sub, nil
}
