package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the ingest, labelled by stream:
//
//	whepcast_ingest_bytes_total{stream}          MPEG-TS bytes received
//	whepcast_ingest_frames_total{stream}         frames (access units) demuxed
//	whepcast_ingest_keyframes_total{stream}      video keyframes demuxed
//	whepcast_ingest_decode_errors_total{stream}  demuxer decode errors
//	whepcast_ingest_udp_dropped_total{stream}    UDP datagrams dropped (queue full)
//	whepcast_publish_errors_total{stream}        failed publishes and acks
//	whepcast_publish_latency_seconds{stream}     publish-to-ack latency
//	whepcast_ingest_publications{stream}         live publications (0 or 1)
//	whepcast_ingest_takeovers_total              publications taken over
//
// and by protocol (the Source's Kind: http, udp, srt, rtmp):
//
//	whepcast_ingest_protocol_bytes_total{protocol}         bytes received
//	whepcast_ingest_protocol_publications_total{protocol}  publications that went live
//
// Series of a stream stay after its publication ends (the gauge drops to 0),
// until DeleteStream removes them with the stream.
type Metrics struct {
	bytes, frames, keyframes, decodeErrors, udpDropped, publishErrors *prometheus.CounterVec
	latency                                                           *prometheus.HistogramVec
	publications                                                      *prometheus.GaugeVec
	takeovers                                                         prometheus.Counter
	protocolBytes, protocolPublications                               *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "whepcast", Name: name, Help: help}, []string{"stream"})
	}
	m := &Metrics{
		bytes:         counter("ingest_bytes_total", "MPEG-TS bytes received by the ingest."),
		frames:        counter("ingest_frames_total", "Frames (access units) demuxed by the ingest."),
		keyframes:     counter("ingest_keyframes_total", "Video keyframes demuxed by the ingest."),
		decodeErrors:  counter("ingest_decode_errors_total", "MPEG-TS decode errors of the ingest."),
		udpDropped:    counter("ingest_udp_dropped_total", "UDP datagrams dropped because the demuxer fell behind."),
		publishErrors: counter("publish_errors_total", "Failed publishes and publish acknowledgements."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "whepcast", Name: "publish_latency_seconds",
			Help:    "Latency from publish to JetStream acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 13), // 0.5 ms .. 2 s
		}, []string{"stream"}),
		publications: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "whepcast", Name: "ingest_publications", Help: "Live publications of the stream (0 or 1).",
		}, []string{"stream"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "whepcast", Name: "ingest_takeovers_total", Help: "Publications taken over by a new publisher of their stream.",
		}),
		protocolBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "whepcast", Name: "ingest_protocol_bytes_total", Help: "Bytes received by the ingest, by protocol.",
		}, []string{"protocol"}),
		protocolPublications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "whepcast", Name: "ingest_protocol_publications_total", Help: "Publications that went live, by protocol.",
		}, []string{"protocol"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.bytes, m.frames, m.keyframes, m.decodeErrors, m.udpDropped, m.publishErrors, m.latency, m.publications, m.takeovers, m.protocolBytes, m.protocolPublications} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

// streamMetrics are the series of one stream, resolved once per
// publication.
type streamMetrics struct {
	bytes, frames, keyframes, decodeErrors, udpDropped, publishErrors prometheus.Counter
	latency                                                           prometheus.Observer
	publications                                                      prometheus.Gauge
}

func (m *Metrics) stream(name string) streamMetrics {
	return streamMetrics{
		bytes:         m.bytes.WithLabelValues(name),
		frames:        m.frames.WithLabelValues(name),
		keyframes:     m.keyframes.WithLabelValues(name),
		decodeErrors:  m.decodeErrors.WithLabelValues(name),
		udpDropped:    m.udpDropped.WithLabelValues(name),
		publishErrors: m.publishErrors.WithLabelValues(name),
		latency:       m.latency.WithLabelValues(name),
		publications:  m.publications.WithLabelValues(name),
	}
}

// DeleteStream removes the series of stream name: its media stream was
// removed (ended, retention run out). A later publication of the name
// starts them again from zero.
func (m *Metrics) DeleteStream(name string) {
	for _, v := range []*prometheus.CounterVec{m.bytes, m.frames, m.keyframes, m.decodeErrors, m.udpDropped, m.publishErrors} {
		v.DeleteLabelValues(name)
	}
	m.latency.DeleteLabelValues(name)
	m.publications.DeleteLabelValues(name)
}

// protocolMetrics are the series of one protocol, resolved once per
// publication.
type protocolMetrics struct {
	bytes, publications prometheus.Counter
}

func (m *Metrics) protocol(kind string) protocolMetrics {
	return protocolMetrics{
		bytes:        m.protocolBytes.WithLabelValues(kind),
		publications: m.protocolPublications.WithLabelValues(kind),
	}
}
