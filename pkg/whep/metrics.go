package whep

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/pkg/relay"
)

// streamSeriesGrace is how long a stream's series (labelled stream=) stay
// after its last session on this node ended; then they are released, so that
// a node serving ever new stream names keeps a bounded number of series.
const streamSeriesGrace = 10 * time.Minute

// metrics are the Prometheus metrics of a Server (prefix whepcast_whep_).
type metrics struct {
	requests   *prometheus.CounterVec   // method, code
	created    *prometheus.CounterVec   // stream
	closed     *prometheus.CounterVec   // reason
	failed     *prometheus.CounterVec   // reason: closed without ever connecting
	firstFrame *prometheus.HistogramVec // stream
	collectors []prometheus.Collector

	// mu makes "leave the session table, add the final stats to closedStats"
	// atomic for the stats collector, so that its counters never go back.
	mu          sync.Mutex
	closedStats map[string]*streamTotals
	sessions    metricSessions
	// grace is streamSeriesGrace, shorter in tests.
	grace time.Duration
	// idle holds the pending release of each stream whose last session ended.
	idle map[string]*pendingRelease
}

// pendingRelease is the release timer of a stream (under metrics.mu).
type pendingRelease struct{ timer *time.Timer }

// streamTotals are the relay counters of a stream's sessions on this node.
type streamTotals struct {
	video, audio          relay.TrackStats
	busToRTP, ingestToRTP relay.DelayHistogram
}

func (t *streamTotals) add(v relay.ViewerStats) {
	addTrack(&t.video, v.Video)
	addTrack(&t.audio, v.Audio)
	t.busToRTP.Add(v.BusToRTP)
	t.ingestToRTP.Add(v.IngestToRTP)
}

func addTrack(t *relay.TrackStats, v relay.TrackStats) {
	t.Packets += v.Packets
	t.Bytes += v.Bytes
	t.Frames += v.Frames
	t.Drops += v.Drops
	t.NACKs += v.NACKs
	t.Retransmits += v.Retransmits
	t.Missed += v.Missed
	t.Suppressed += v.Suppressed
	t.PLIs += v.PLIs
	t.FIRs += v.FIRs
	t.WriteErrors += v.WriteErrors
}

// metricSessions is what the metrics read of a server's sessions; the
// server's session table provides it.
type metricSessions interface {
	// counts returns the number of sessions and of held POSTs.
	counts() (sessions, held int)
	// list returns the sessions.
	list() []*session
}

func newMetrics(sessions metricSessions) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whepcast_whep_requests_total",
			Help: "WHEP HTTP requests by method and status code.",
		}, []string{"method", "code"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whepcast_whep_sessions_created_total",
			Help: "WHEP sessions created (201 sent).",
		}, []string{"stream"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whepcast_whep_sessions_closed_total",
			Help: "WHEP sessions closed, by reason.",
		}, []string{"reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whepcast_whep_sessions_failed_total",
			Help: "WHEP sessions closed before they ever connected, by reason.",
		}, []string{"reason"}),
		firstFrame: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "whepcast_whep_time_to_first_frame_seconds",
			Help:    "Time from the accepted POST (stream live) to the session's first RTP packet.",
			Buckets: []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30},
		}, []string{"stream"}),
		closedStats: make(map[string]*streamTotals),
		sessions:    sessions,
		grace:       streamSeriesGrace,
		idle:        make(map[string]*pendingRelease),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "whepcast_whep_sessions",
		Help: "WHEP sessions on this node.",
	}, func() float64 { n, _ := sessions.counts(); return float64(n) })
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "whepcast_whep_held_requests",
		Help: "WHEP POSTs waiting for their stream to go live.",
	}, func() float64 { _, n := sessions.counts(); return float64(n) })
	m.collectors = []prometheus.Collector{m.requests, m.created, m.closed, m.failed, m.firstFrame,
		open, held, &statsCollector{m: m, sessions: sessions}}
	return m
}

// register registers every metric on r.
func (m *metrics) register(r prometheus.Registerer) error {
	for i, c := range m.collectors {
		if err := r.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}

// unregister unregisters every metric from r and stops the release timers.
func (m *metrics) unregister(r prometheus.Registerer) {
	for _, c := range m.collectors {
		r.Unregister(c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for stream, p := range m.idle {
		p.timer.Stop()
		delete(m.idle, stream)
	}
}

// removeSession removes a closing session from the session table and keeps its
// final relay stats, under m.mu. The stream's series are released m.grace
// later unless a session of the stream lives then (see release).
func (m *metrics) removeSession(table *sessionTable, ss *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	table.remove(ss.id)
	t := m.closedStats[ss.stream]
	if t == nil {
		t = &streamTotals{}
		m.closedStats[ss.stream] = t
	}
	t.add(ss.viewer.Stats())
	if old := m.idle[ss.stream]; old != nil {
		old.timer.Stop()
	}
	p := &pendingRelease{}
	p.timer = time.AfterFunc(m.grace, func() { m.release(ss.stream, p) })
	m.idle[ss.stream] = p
}

// release drops the series of stream (sessions created, time to first
// frame, the relay counters and delay histograms) when p is still its
// pending release and the stream has no session on this node; a session
// that ends later arms a new one. Counters of a stream that comes back start
// from zero, a reset that rate() and increase() handle.
func (m *metrics) release(stream string, p *pendingRelease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idle[stream] != p {
		return
	}
	delete(m.idle, stream)
	for _, ss := range m.sessions.list() {
		if ss.stream == stream {
			return
		}
	}
	delete(m.closedStats, stream)
	m.created.DeleteLabelValues(stream)
	m.firstFrame.DeleteLabelValues(stream)
}

// sessionClosed counts a closed session; connected tells whether it ever
// connected.
func (m *metrics) sessionClosed(reason string, connected bool) {
	m.closed.WithLabelValues(reason).Inc()
	if !connected {
		m.failed.WithLabelValues(reason).Inc()
	}
}

// statsCollector exports the relay counters of the node's sessions per
// stream and kind, and the relay's delay histograms per stream: those of
// closed sessions plus the live ones.
type statsCollector struct {
	m        *metrics
	sessions metricSessions
}

// delayDescs are the relay's delay histograms (relay.ViewerStats.BusToRTP,
// IngestToRTP): each sampled frame counts once per session that got it.
var delayDescs = struct{ busToRTP, ingestToRTP *prometheus.Desc }{
	busToRTP: prometheus.NewDesc("whepcast_whep_bus_to_rtp_seconds",
		"Delay from a frame's bus message reaching the node to its last RTP packet written for a session "+
			"(sampled frames of the live feed, keyframes included; see relay.ViewerStats.BusToRTP).",
		[]string{"stream"}, nil),
	ingestToRTP: prometheus.NewDesc("whepcast_whep_ingest_to_rtp_seconds",
		"Delay from a frame's JetStream store time (NATS server clock) to its last RTP packet written for a session "+
			"(same samples as whepcast_whep_bus_to_rtp_seconds).",
		[]string{"stream"}, nil),
}

// delayHistogram turns a relay delay histogram into a Prometheus one.
func delayHistogram(desc *prometheus.Desc, h relay.DelayHistogram, stream string) (prometheus.Metric, error) {
	bounds := relay.DelayBounds()
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b.Seconds()] = h.Buckets[i]
	}
	return prometheus.NewConstHistogram(desc, h.Count, h.Sum.Seconds(), buckets, stream)
}

var statsDescs = struct {
	bytes, packets, frames, drops, nacks, retransmits, missed, suppressed, plis, firs, writeErrors *prometheus.Desc
}{
	bytes:       statsDesc("bytes_out_total", "RTP payload bytes sent, retransmissions included."),
	packets:     statsDesc("packets_out_total", "RTP packets sent, retransmissions included."),
	frames:      statsDesc("frames_out_total", "Access units (video) or Opus packets (audio) sent."),
	drops:       statsDesc("frames_dropped_total", "Frames dropped because a viewer's queue was full."),
	nacks:       statsDesc("packets_nacked_total", "Packets viewers asked for again (NACK)."),
	retransmits: statsDesc("retransmits_total", "Packets resent after a NACK."),
	missed:      statsDesc("nack_missed_total", "NACKed packets no longer in the retransmit buffer."),
	suppressed:  statsDesc("nack_suppressed_total", "NACKed packets not resent: resent twice already, or less than a round trip ago."),
	plis:        statsDesc("plis_total", "Picture loss indications received."),
	firs:        statsDesc("firs_total", "Full intra requests received."),
	writeErrors: statsDesc("write_errors_total", "RTP packets the transport refused."),
}

func statsDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("whepcast_whep_"+name, help, []string{"stream", "kind"}, nil)
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	d := statsDescs
	for _, x := range []*prometheus.Desc{d.bytes, d.packets, d.frames, d.drops, d.nacks, d.retransmits, d.missed, d.suppressed, d.plis, d.firs, d.writeErrors,
		delayDescs.busToRTP, delayDescs.ingestToRTP} {
		ch <- x
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	totals := make(map[string]*streamTotals, len(m.closedStats))
	for k, v := range m.closedStats {
		cp := *v
		totals[k] = &cp
	}
	for _, ss := range c.sessions.list() {
		t := totals[ss.stream]
		if t == nil {
			t = &streamTotals{}
			totals[ss.stream] = t
		}
		t.add(ss.viewer.Stats())
	}
	m.mu.Unlock()
	d := statsDescs
	for stream, t := range totals {
		for _, h := range []struct {
			desc *prometheus.Desc
			h    *relay.DelayHistogram
		}{{delayDescs.busToRTP, &t.busToRTP}, {delayDescs.ingestToRTP, &t.ingestToRTP}} {
			if hm, err := delayHistogram(h.desc, *h.h, stream); err == nil {
				ch <- hm
			}
		}
		for _, k := range []struct {
			kind string
			v    *relay.TrackStats
		}{{"video", &t.video}, {"audio", &t.audio}} {
			emit := func(desc *prometheus.Desc, v uint64) {
				if cm, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, float64(v), stream, k.kind); err == nil {
					ch <- cm
				}
			}
			emit(d.bytes, k.v.Bytes)
			emit(d.packets, k.v.Packets)
			emit(d.frames, k.v.Frames)
			emit(d.drops, k.v.Drops)
			emit(d.nacks, k.v.NACKs)
			emit(d.retransmits, k.v.Retransmits)
			emit(d.missed, k.v.Missed)
			emit(d.suppressed, k.v.Suppressed)
			emit(d.plis, k.v.PLIs)
			emit(d.firs, k.v.FIRs)
			emit(d.writeErrors, k.v.WriteErrors)
		}
	}
}
