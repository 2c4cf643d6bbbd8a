package transcode

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the stage's Prometheus metrics:
//
//	whepcast_transcode_streams_total                streams whose transcode started
//	whepcast_transcode_active                       streams being transcoded
//	whepcast_transcode_rejected_total               streams not transcoded: --max-transcodes reached
//	whepcast_transcode_waiting                      streams refused a slot, waiting for one to free
//	whepcast_transcode_cpu_seconds_total{stream}    CPU time (user + system) of the stream's children
//	whepcast_transcode_restarts_total{stream}       children restarted (died or stalled)
//	whepcast_transcode_errors_total{stream}         child failures, input dropped, publish errors
//	whepcast_transcode_delay_seconds{stream}        added delay: output frame vs input of its PTS (wall clock, latest)
//
// A stream's series are removed when its transcode ends.
type metrics struct {
	started, rejected prometheus.Counter
	active, waiting   prometheus.Gauge
	cpu, restarts     *prometheus.CounterVec
	errors            *prometheus.CounterVec
	delay             *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "whepcast", Name: "transcode_streams_total",
			Help: "Streams whose transcoding started."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "whepcast", Name: "transcode_rejected_total",
			Help: "Streams not transcoded because --max-transcodes were running."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "whepcast", Name: "transcode_active",
			Help: "Streams being transcoded."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "whepcast", Name: "transcode_waiting",
			Help: "Streams refused a transcoding slot (--max-transcodes were running), waiting for one to free."}),
		cpu: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "whepcast", Name: "transcode_cpu_seconds_total",
			Help: "CPU time (user and system) of the stream's transcoder processes."}, []string{"stream"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "whepcast", Name: "transcode_restarts_total",
			Help: "Transcoder processes restarted after they died or stalled."}, []string{"stream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "whepcast", Name: "transcode_errors_total",
			Help: "Transcoding errors: failed processes, input dropped, output not published."}, []string{"stream"}),
		delay: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "whepcast", Name: "transcode_delay_seconds",
			Help: "Delay the transcoder adds: from writing the input of a PTS to reading its output (latest)."}, []string{"stream"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.started, m.rejected, m.active, m.waiting, m.cpu, m.restarts, m.errors, m.delay} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("transcode: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

// streamMetrics are one stream's series.
type streamMetrics struct {
	cpu, restarts, errors prometheus.Counter
	delay                 prometheus.Gauge
}

func (m *metrics) stream(name string) streamMetrics {
	return streamMetrics{
		cpu:      m.cpu.WithLabelValues(name),
		restarts: m.restarts.WithLabelValues(name),
		errors:   m.errors.WithLabelValues(name),
		delay:    m.delay.WithLabelValues(name),
	}
}

// release removes the series of stream name.
func (m *metrics) release(name string) {
	m.cpu.DeleteLabelValues(name)
	m.restarts.DeleteLabelValues(name)
	m.errors.DeleteLabelValues(name)
	m.delay.DeleteLabelValues(name)
}
