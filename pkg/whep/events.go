package whep

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/relay"
)

// The server-sent events extension (urn:ietf:params:whep:ext:core:server-sent-events).
const (
	// relServerSentEvents is the Link relation of the extension.
	relServerSentEvents = "urn:ietf:params:whep:ext:core:server-sent-events"
	// eventsSegment names the entry point under a session's Location.
	eventsSegment = "events"
	// maxEventStreams bounds the event streams of one session; creating
	// one more ends the oldest.
	maxEventStreams = 4
	// maxEventsBody bounds the JSON body of a POST to the entry point.
	maxEventsBody = 4 << 10
)

// Event names, in the order of the Link's events attribute.
const (
	eventActive      = "active"
	eventInactive    = "inactive"
	eventReconnect   = "reconnect"
	eventViewerCount = "viewercount"
	eventPosition    = "position"
)

// Timing of the events; an eventNotifier copies them so that tests can
// shorten them before the first event stream is made.
const (
	// eventTick is how often the state of the sessions with event streams
	// (packets flowing, viewer count) is sampled.
	eventTick = time.Second
	// eventInactiveAfter is how long a connected session may send no packet
	// before it is reported inactive.
	eventInactiveAfter = 3 * time.Second
	// eventKeepAlive is the longest silence on an event stream: a comment
	// line is sent then, and a poll over NATS returns.
	eventKeepAlive = 15 * time.Second
	// eventWriteTimeout bounds one write to an event stream's client.
	eventWriteTimeout = 10 * time.Second
)

// eventMask is a set of event names.
type eventMask uint8

const (
	maskActive eventMask = 1 << iota
	maskInactive
	maskReconnect
	maskViewerCount
	maskPosition
	// maskPositionLive is set when position was asked for by name: only
	// then do live sessions get it too (time-shifted ones always do).
	maskPositionLive
	maskSCTE35

	maskAll = maskActive | maskInactive | maskReconnect | maskViewerCount | maskPosition | maskSCTE35
)

var eventBits = []struct {
	name string
	bit  eventMask
}{
	{eventActive, maskActive},
	{eventInactive, maskInactive},
	{eventReconnect, maskReconnect},
	{eventViewerCount, maskViewerCount},
	{eventPosition, maskPosition},
	{eventSCTE35, maskSCTE35},
}

// linkEvents is the events attribute of the Link: every event this server
// sends.
func linkEvents() string {
	names := make([]string, len(eventBits))
	for i, b := range eventBits {
		names[i] = b.name
	}
	return strings.Join(names, ",")
}

// eventsLink returns the Link header value that announces the extension for
// the session at location.
func eventsLink(location string) string {
	return "<" + location + "/" + eventsSegment + `>; rel="` + relServerSentEvents + `"; events="` + linkEvents() + `"`
}

// maskOf returns the events of names; names this server does not send
// (such as "layers") are ignored. Nil names is every event.
func maskOf(names []string) eventMask {
	if names == nil {
		return maskAll
	}
	var m eventMask
	for _, n := range names {
		for _, b := range eventBits {
			if n == b.name {
				m |= b.bit
			}
		}
		if n == eventPosition {
			m |= maskPositionLive
		}
	}
	return m
}

func bitOf(name string) eventMask {
	for _, b := range eventBits {
		if b.name == name {
			return b.bit
		}
	}
	return 0
}

// sseEvent is one server-sent event: its name and one line of JSON.
type sseEvent struct {
	Name string `json:"event"`
	Data string `json:"data"`
}

// class groups the events of which only the latest pending one matters:
// active and inactive are one state.
func (e sseEvent) class() string {
	if e.Name == eventInactive {
		return eventActive
	}
	return e.Name
}

func stateEvent(active bool) sseEvent {
	if active {
		return sseEvent{Name: eventActive, Data: "{}"}
	}
	return sseEvent{Name: eventInactive, Data: "{}"}
}

func viewerCountEvent(n int) sseEvent {
	b, _ := json.Marshal(struct {
		ViewerCount int `json:"viewercount"`
	}{n})
	return sseEvent{Name: eventViewerCount, Data: string(b)}
}

// positionEvent tells where a session plays at now: the PTS (seconds of
// its stream's timeline) and store time of the frame last sent, whether it
// is the live feed, and how far behind now that frame was stored.
func positionEvent(p relay.Position, now time.Time) sseEvent {
	b, _ := json.Marshal(struct {
		PTSTime  float64 `json:"pts_time"`
		WallTime string  `json:"wall_time"`
		Live     bool    `json:"live"`
		LagMS    int64   `json:"lag_ms"`
	}{
		PTSTime:  p.PTS.Seconds(),
		WallTime: p.Stored.UTC().Format(time.RFC3339Nano),
		Live:     p.Live,
		LagMS:    max(now.Sub(p.Stored).Milliseconds(), 0),
	})
	return sseEvent{Name: eventPosition, Data: string(b)}
}

// reconnectEvent tells the player to POST again to url, the WHEP endpoint
// of its stream (a path, resolved against the event stream's URL).
func reconnectEvent(stream string) sseEvent {
	b, _ := json.Marshal(struct {
		URL string `json:"url"`
	}{"/whep/" + stream})
	return sseEvent{Name: eventReconnect, Data: string(b)}
}

// eventStream is one event stream of a session: the events it asked for,
// those not yet delivered (at most one per class), and the reader waiting
// for them. Its fields are guarded by eventNotifier.mu.
type eventStream struct {
	id     string
	want   eventMask
	queue  []sseEvent
	reader uint64 // the current reader (attach); polls of others end at once
	poll   *eventPoll
	closed bool
}

// eventPoll is a reader waiting for events; deliver is called exactly once,
// without eventNotifier.mu held: with the pending events, with none when the wait
// ends, or with end set when the stream is gone or another reader took over.
// A reader is one GET of the stream (here, or on another node): it attaches
// first, then polls again and again.
type eventPoll struct {
	deliver func(events []sseEvent, end bool)
	timer   *time.Timer
}

// sessionEvents are the event streams of one session and the state last
// announced to them. Guarded by eventNotifier.mu.
type sessionEvents struct {
	ss       *session
	streams  []*eventStream // oldest first
	active   bool
	viewers  int
	packets  uint64    // RTP packets sent, at the latest sample
	advanced time.Time // when packets last grew
}

// eventSessions is what the extension needs of a server's sessions; the
// server's session table provides it.
type eventSessions interface {
	// get returns the session id of stream, or nil.
	get(stream, id string) *session
	// streamCounts returns the number of sessions of each stream and the
	// ids of all sessions.
	streamCounts() (counts map[string]int, ids map[string]bool)
	// isDraining reports whether the server drains: a new event stream
	// starts with reconnect.
	isDraining() bool
}

// eventNotifierConfig is what an eventNotifier works with.
type eventNotifierConfig struct {
	sessions eventSessions
	// catalog tells whether a session's stream is live.
	catalog Catalog
	// conn serves this node's events subject and reaches the other
	// nodes' sessions; nil serves this node's sessions only.
	conn *nats.Conn
	// tokens guard the POST and DELETE of event streams.
	tokens tokens
	nodeID string
	// forwardTimeout bounds a request to another node.
	forwardTimeout time.Duration
	logger         *slog.Logger
}

// eventNotifier is a server's side of the extension: the sessions that have
// event streams, and the goroutine that samples their state.
type eventNotifier struct {
	eventNotifierConfig
	// Timing (the event* constants); set before the first event stream.
	tick, inactiveAfter, keepAlive time.Duration

	sub     *nats.Subscription // this node's events subject, nil without NATS
	closing chan struct{}      // closed by shutdown: readers end

	mu        sync.Mutex
	bySession map[string]*sessionEvents
	readers   uint64 // the last reader id given
	started   bool
	closed    bool
	done      chan struct{} // closed when the sampler returns
}

func newEventNotifier(cfg eventNotifierConfig) *eventNotifier {
	return &eventNotifier{
		eventNotifierConfig: cfg,
		tick:                eventTick,
		inactiveAfter:       eventInactiveAfter,
		keepAlive:           eventKeepAlive,
		closing:             make(chan struct{}),
		bySession:           make(map[string]*sessionEvents),
		done:                make(chan struct{}),
	}
}

// push queues e on es when es wants it, replacing a pending event of its
// class, and hands the queue to a waiting reader. It returns what to call
// once eventNotifier.mu is released.
func (es *eventStream) push(e sseEvent) func() {
	if es.closed || es.want&bitOf(e.Name) == 0 {
		return nil
	}
	if e.Name == eventSCTE35 {
		es.pushCue(e)
		return es.flush(false)
	}
	q := es.queue[:0]
	for _, old := range es.queue {
		if old.class() != e.class() {
			q = append(q, old)
		}
	}
	es.queue = append(q, e)
	return es.flush(false)
}

// flush hands the pending events (and end) to the waiting reader, if any.
func (es *eventStream) flush(end bool) func() {
	p := es.poll
	if p == nil {
		return nil
	}
	es.poll = nil
	p.timer.Stop()
	evs := es.queue
	es.queue = nil
	return func() { p.deliver(evs, end) }
}

// end closes es: its reader gets the pending events (dropped unless keep)
// and end, now or at its next poll; later requests for es are answered
// 404.
func (es *eventStream) end(keep bool) func() {
	if es.closed {
		return nil
	}
	if !keep {
		es.queue = nil
	}
	es.closed = true
	return es.flush(true)
}

func runAll(fs []func()) {
	for _, f := range fs {
		if f != nil {
			f()
		}
	}
}

// start starts the sampler once; false after shutdown.
func (en *eventNotifier) startLocked() bool {
	if en.closed {
		return false
	}
	if !en.started {
		en.started = true
		go en.sample()
	}
	return true
}

// sample updates the state of the sessions with event streams every tick
// until shutdown.
func (en *eventNotifier) sample() {
	defer close(en.done)
	t := time.NewTicker(en.tick)
	defer t.Stop()
	for {
		select {
		case <-en.closing:
			return
		case now := <-t.C:
			en.update(now)
		}
	}
}

// sessionSample is what update reads of a session outside eventNotifier.mu.
type sessionSample struct {
	se      *sessionEvents
	live    bool
	packets uint64
	pos     relay.Position
	hasPos  bool
}

// update announces the changes of state (active or inactive) and of viewer
// count of the sessions with event streams.
func (en *eventNotifier) update(now time.Time) {
	en.mu.Lock()
	samples := make([]sessionSample, 0, len(en.bySession))
	for _, se := range en.bySession {
		samples = append(samples, sessionSample{se: se})
	}
	en.mu.Unlock()
	if len(samples) == 0 {
		return
	}
	counts, registered := en.sessions.streamCounts()
	for i := range samples {
		ss := samples[i].se.ss
		if pv, ok := ss.viewer.(positionViewer); ok {
			samples[i].pos, samples[i].hasPos = pv.Position(), true
		}
		// A time-shifted session plays while its viewer does, whatever
		// the stream does now.
		samples[i].live = en.streamLive(ss.stream) || samples[i].hasPos && !samples[i].pos.Live
		samples[i].packets = packetsSent(ss)
	}
	var after []func()
	en.mu.Lock()
	for _, x := range samples {
		se := x.se
		if en.bySession[se.ss.id] != se || !registered[se.ss.id] {
			continue // closing: its streams end with sessionClosed
		}
		if x.packets != se.packets {
			se.packets, se.advanced = x.packets, now
		}
		flowing := !se.ss.started.Load() || now.Sub(se.advanced) < en.inactiveAfter
		if active := x.live && flowing; active != se.active {
			se.active = active
			after = se.pushAll(stateEvent(active), after)
		}
		if n := counts[se.ss.stream]; n != se.viewers {
			se.viewers = n
			after = se.pushAll(viewerCountEvent(n), after)
		}
		if x.hasPos && !x.pos.Stored.IsZero() {
			e := positionEvent(x.pos, now)
			for _, es := range se.streams {
				if !x.pos.Live || es.want&maskPositionLive != 0 {
					after = append(after, es.push(e))
				}
			}
		}
	}
	en.mu.Unlock()
	runAll(after)
}

func (se *sessionEvents) pushAll(e sseEvent, after []func()) []func() {
	for _, es := range se.streams {
		after = append(after, es.push(e))
	}
	return after
}

// streamLive reports whether the catalog has stream live with tracks.
func (en *eventNotifier) streamLive(stream string) bool {
	e, ok := en.catalog.Get(stream)
	return ok && e.Playable()
}

// packetsSent counts what the session's viewer has sent: RTP packets, which
// grow while frames flow.
func packetsSent(ss *session) uint64 {
	st := ss.viewer.Stats()
	return st.Video.Packets + st.Audio.Packets
}

// create makes an event stream of ss for the events of want and returns
// its id. It starts with active (when the stream plays), viewercount and,
// on a draining server, reconnect. A session already at maxEventStreams
// loses its oldest stream. errSessionNotFound when ss is closed.
func (en *eventNotifier) create(ss *session, want eventMask) (string, error) {
	live := en.streamLive(ss.stream) || ss.shifted()
	counts, _ := en.sessions.streamCounts()
	viewers := counts[ss.stream]
	packets := packetsSent(ss)
	draining := en.sessions.isDraining()
	now := time.Now()

	var after []func()
	en.mu.Lock()
	if !en.startLocked() {
		en.mu.Unlock()
		return "", ErrClosed
	}
	select {
	case <-ss.done: // its hook (sessionClosed) has run or waits for mu
		en.mu.Unlock()
		return "", errSessionNotFound
	default:
	}
	se := en.bySession[ss.id]
	if se == nil {
		se = &sessionEvents{ss: ss, active: live, viewers: viewers, packets: packets, advanced: now}
		en.bySession[ss.id] = se
		en.watchCues(ss)
	}
	if len(se.streams) >= maxEventStreams {
		after = append(after, se.streams[0].end(false))
		se.streams = append(se.streams[:0], se.streams[1:]...)
	}
	es := &eventStream{id: idEncoding.EncodeToString(randomBytes()), want: want}
	if se.active {
		es.push(stateEvent(true))
	}
	es.push(viewerCountEvent(se.viewers))
	if draining {
		es.push(reconnectEvent(ss.stream))
	}
	se.streams = append(se.streams, es)
	en.mu.Unlock()
	runAll(after)
	ss.logger.Debug("event stream created", "events", es.id, "streams", len(se.streams))
	return es.id, nil
}

func randomBytes() []byte {
	var b [sessionIDBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b[:]
}

// find returns the event stream id of the session sessionID, or nil.
func (en *eventNotifier) find(sessionID, id string) *eventStream {
	en.mu.Lock()
	defer en.mu.Unlock()
	if se := en.bySession[sessionID]; se != nil {
		for _, es := range se.streams {
			if es.id == id {
				return es
			}
		}
	}
	return nil
}

// remove ends the event stream id of the session sessionID; false when
// there is none.
func (en *eventNotifier) remove(sessionID, id string) bool {
	en.mu.Lock()
	se := en.bySession[sessionID]
	if se == nil {
		en.mu.Unlock()
		return false
	}
	var f func()
	found := false
	for i, es := range se.streams {
		if es.id == id {
			f, found = es.end(false), true
			se.streams = append(se.streams[:i], se.streams[i+1:]...)
			break
		}
	}
	if len(se.streams) == 0 {
		delete(en.bySession, sessionID)
	}
	en.mu.Unlock()
	if f != nil {
		f()
	}
	return found
}

// attach makes a new reader the reader of es and returns its id; the
// reader before it ends (at its current poll, or its next one).
func (en *eventNotifier) attach(es *eventStream) uint64 {
	en.mu.Lock()
	en.readers++
	es.reader = en.readers
	old := es.poll
	es.poll = nil
	if old != nil {
		old.timer.Stop()
	}
	en.mu.Unlock()
	if old != nil {
		old.deliver(nil, true)
	}
	return es.reader
}

// take returns the pending events of es without waiting, and whether the
// reader is done (es is over, or another reader took over).
func (en *eventNotifier) take(es *eventStream, reader uint64) ([]sseEvent, bool) {
	en.mu.Lock()
	defer en.mu.Unlock()
	if es.reader != reader {
		return nil, true
	}
	evs := es.queue
	es.queue = nil
	return evs, es.closed
}

// wait hands the events of es to deliver for reader: at once when some are
// pending, es is gone or another reader took over, else when one comes, es
// ends, another reader takes over (end), or maxWait passes (no events).
// cancel withdraws a wait not yet delivered.
func (en *eventNotifier) wait(es *eventStream, reader uint64, maxWait time.Duration, deliver func([]sseEvent, bool)) (cancel func()) {
	en.mu.Lock()
	if es.reader != reader || es.closed || len(es.queue) > 0 {
		evs, end := es.queue, es.closed || es.reader != reader
		if es.reader == reader {
			es.queue = nil
		} else {
			evs = nil
		}
		en.mu.Unlock()
		deliver(evs, end)
		return func() {}
	}
	old := es.poll // the same reader polling twice: the first poll ends
	if old != nil {
		old.timer.Stop()
	}
	p := &eventPoll{deliver: deliver}
	es.poll = p
	p.timer = time.AfterFunc(maxWait, func() {
		en.mu.Lock()
		if es.poll != p {
			en.mu.Unlock()
			return
		}
		es.poll = nil
		en.mu.Unlock()
		deliver(nil, false)
	})
	en.mu.Unlock()
	if old != nil {
		old.deliver(nil, true) // superseded
	}
	return func() {
		en.mu.Lock()
		if es.poll == p {
			es.poll = nil
			p.timer.Stop()
		}
		en.mu.Unlock()
	}
}

// reconnectAll sends reconnect to every event stream; it returns the number
// of sessions told.
func (en *eventNotifier) reconnectAll() int {
	var after []func()
	en.mu.Lock()
	n := 0
	for _, se := range en.bySession {
		n++
		after = se.pushAll(reconnectEvent(se.ss.stream), after)
	}
	en.mu.Unlock()
	runAll(after)
	return n
}

// sessionClosed ends the event streams of a closed session. When its viewer
// ended (the stream stopped) they get inactive first.
func (en *eventNotifier) sessionClosed(ss *session, reason string) {
	var after []func()
	en.mu.Lock()
	se := en.bySession[ss.id]
	delete(en.bySession, ss.id)
	if se != nil {
		if reason == reasonViewerEnded && se.active {
			after = se.pushAll(stateEvent(false), after)
		}
		for _, es := range se.streams {
			after = append(after, es.end(true))
		}
	}
	en.mu.Unlock()
	runAll(after)
}

// shutdown stops the sampler and the events subject and ends the readers
// this node serves (for its sessions and, over NATS, for other nodes').
func (en *eventNotifier) shutdown() {
	en.mu.Lock()
	if en.closed {
		en.mu.Unlock()
		return
	}
	en.closed = true
	started := en.started
	var after []func()
	for id, se := range en.bySession {
		for _, es := range se.streams {
			after = append(after, es.end(false))
		}
		delete(en.bySession, id)
	}
	en.mu.Unlock()
	if en.sub != nil {
		if err := en.sub.Unsubscribe(); err != nil {
			en.logger.Debug("unsubscribe events", "err", err)
		}
	}
	close(en.closing)
	runAll(after)
	if started {
		<-en.done
	}
}

// validEventStreamID reports whether id looks like an event stream id.
func validEventStreamID(id string) bool {
	if len(id) != idEncoding.EncodedLen(sessionIDBytes) {
		return false
	}
	_, err := idEncoding.DecodeString(id)
	return err == nil
}
