package transcode

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// ErrNoFFmpeg is returned by New in ModeAudio when ffmpeg is not found.
var ErrNoFFmpeg = errors.New("transcode: ffmpeg not found")

// Stage runs the transcodes of the broker's publications. Its methods may
// be called from any goroutine.
type Stage struct {
	nc      *nats.Conn
	cfg     Config
	ffmpeg  string // resolved path; "" when the stage is off
	metrics *metrics

	mu     sync.Mutex
	jobs   map[string]*job // by stream: at most one per stream
	closed bool

	// waiting are the publications refused a slot (admission.go).
	waiting waitList
}

// New returns a Stage publishing on nc, its metrics registered with reg
// (nil: unregistered). In ModeAuto a missing ffmpeg turns the stage off
// (Enabled reports it; the caller says so once); in ModeAudio it is
// ErrNoFFmpeg.
func New(nc *nats.Conn, reg prometheus.Registerer, cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Stage{nc: nc, cfg: cfg, metrics: m, jobs: map[string]*job{}}
	if cfg.Mode == ModeOff {
		return s, nil
	}
	path, err := exec.LookPath(cfg.FFmpeg)
	if err != nil {
		if cfg.Mode == ModeAudio {
			return nil, fmt.Errorf("%w: %q: %w", ErrNoFFmpeg, cfg.FFmpeg, err)
		}
		return s, nil
	}
	if nc == nil {
		return nil, errors.New("transcode: nil connection")
	}
	s.ffmpeg = path
	return s, nil
}

// Enabled reports whether the stage transcodes (mode not off, ffmpeg found).
func (s *Stage) Enabled() bool { return s.ffmpeg != "" }

// FFmpeg is the ffmpeg binary the stage runs, "" when it is not enabled.
func (s *Stage) FFmpeg() string { return s.ffmpeg }

// Publishers wraps next so that each publication announces, when its audio
// is not playable and a transcode slot is free, the derived Opus track as
// the audio to play, lets its source audio onto the bus and has the stage
// transcode it. A disabled stage returns next.
func (s *Stage) Publishers(next ingest.NewPublisherFunc) ingest.NewPublisherFunc {
	if !s.Enabled() {
		return next
	}
	return func(ctx context.Context, stream string, epoch uint64, onAck func(time.Duration, error)) (ingest.Publisher, error) {
		p, err := next(ctx, stream, epoch, onAck)
		if err != nil {
			return nil, err
		}
		return &publisher{Publisher: p, stage: s, stream: stream, epoch: epoch}, nil
	}
}

// jobKey is the key of a stream's job in Stage.jobs: the stream's name
// for its audio, the name and "/video" for its video (a name has no "/").
func jobKey(stream string, kind tsframes.Kind) string {
	if kind == tsframes.KindVideo {
		return stream + "/video"
	}
	return stream
}

// start starts the transcode of stream's epoch from the source track src
// into the derived PID, replacing the stream's previous one of the same
// kind; bitrate is the target of a video re-encode (bit/s). A video job
// counts against MaxTranscodes like an audio one. It returns nil when
// MaxTranscodes are running (counted and logged).
func (s *Stage) start(stream string, epoch uint64, src tsframes.Track, derived uint16, bitrate int) *job {
	key := jobKey(stream, src.Kind)
	s.mu.Lock()
	old := s.jobs[key]
	if old != nil {
		delete(s.jobs, key)
	}
	if s.closed || len(s.jobs) >= s.cfg.MaxTranscodes {
		closed := s.closed
		s.mu.Unlock()
		if old != nil {
			old.stop()
		}
		if !closed {
			s.metrics.rejected.Inc()
			what := "the audio stays unplayable"
			if src.Kind == tsframes.KindVideo {
				what = "the video keeps its B-frames (plays at its keyframes only)"
			}
			s.cfg.Logger.Warn("not transcoding: --max-transcodes reached; "+what,
				"stream", stream, "epoch", epoch, "codec", src.Codec, "max_transcodes", s.cfg.MaxTranscodes)
		}
		return nil
	}
	j := newJob(s, stream, epoch, src, derived)
	j.bitrate = bitrate
	s.jobs[key] = j
	s.mu.Unlock()
	if old != nil {
		old.stop()
	}
	s.metrics.started.Inc()
	s.metrics.active.Inc()
	j.start()
	return j
}

// end stops j and forgets it (unless the stream has a newer job).
func (s *Stage) end(j *job) {
	s.mu.Lock()
	freed := false
	if key := jobKey(j.stream, j.src.Kind); s.jobs[key] == j {
		delete(s.jobs, key)
		freed = true
	}
	s.mu.Unlock()
	j.stop()
	if freed {
		s.slotFreed()
	}
}

// hasJob reports whether stream has a job (audio or video).
func (s *Stage) hasJob(stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[jobKey(stream, tsframes.KindAudio)] != nil || s.jobs[jobKey(stream, tsframes.KindVideo)] != nil
}

// Active is the number of transcodes running (a stream's audio and its
// video count one each).
func (s *Stage) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// Close stops every transcode now (their children are killed) and waits
// for them; later publications are not transcoded.
func (s *Stage) Close() {
	s.mu.Lock()
	s.closed = true
	jobs := s.jobs
	s.jobs = map[string]*job{}
	s.mu.Unlock()
	for _, j := range jobs {
		j.stop()
	}
}
