package whip

// KeyframeRequests subscribes fn to the requests for a keyframe of stream
// that viewers send (whep-nodes without a keyframe to give a viewer that
// starts: bus.SubscribeKeyframeRequests); fn is called for each until stop.
type KeyframeRequests func(stream string, fn func()) (stop func(), err error)

// listenKeyframeRequests makes every request of the viewers of the
// publication's stream ask its publisher for a keyframe (a PLI, at most
// one per minPLIInterval), until the returned stop.
func (res *resource) listenKeyframeRequests(subscribe KeyframeRequests) (stop func()) {
	if subscribe == nil {
		return func() {}
	}
	stop, err := subscribe(res.stream, func() {
		res.log.Debug("keyframe requested by a viewer")
		res.requestKeyframe()
	})
	if err != nil {
		res.log.Warn("viewers' keyframe requests not received", "err", err)
		return func() {}
	}
	return stop
}
