package transcode

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

const (
	// inputQueue bounds the source frames waiting for the child (about
	// 5 s of AAC PES); a frame that finds it full is dropped and counted.
	inputQueue = 256
	// restartReset: a child that ran this long restarts after the
	// minimum backoff again.
	restartReset = 30 * time.Second
)

// job is the transcode of one stream's epoch: a bus subscription feeding
// source audio to a supervised ffmpeg child, whose Opus goes out through a
// TrackPublisher. One goroutine (run) owns the children; the subscription's
// goroutine only queues frames.
type job struct {
	stage   *Stage
	stream  string
	epoch   uint64
	src     tsframes.Track
	derived uint16
	bitrate int // of a video re-encode, bit/s
	log     *slog.Logger
	m       streamMetrics

	in     chan tsframes.Frame
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	out      outputClock // owned by run
	fromSeq  uint64      // where the subscription starts (0: latest keyframe)
	dropLog  limiter
	children atomic.Int64 // children started (for tests)
	pid      atomic.Int64 // the running child's process id, 0 when none

	// channels is the source's channel count learnt from its first frames
	// (AAC LATM, see learnLATMChannels), first the frames read for it,
	// which the next child is fed first; owned by run.
	channels     int
	first        []tsframes.Frame
	latmSearched bool

	// outProfile is the H.264 profile-level-id of a video re-encode's
	// output, from its SPS (video.go); nil until the first one.
	outProfile atomic.Pointer[string]
}

func newJob(s *Stage, stream string, epoch uint64, src tsframes.Track, derived uint16) *job {
	return &job{
		stage:   s,
		stream:  stream,
		epoch:   epoch,
		src:     src,
		derived: derived,
		log:     s.cfg.Logger.With("stream", stream, "epoch", epoch, "codec", string(src.Codec), "pid", src.PID),
		m:       s.metrics.stream(stream),
		in:      make(chan tsframes.Frame, inputQueue),
		done:    make(chan struct{}),
	}
}

// start starts the job: its subscription begins after the stream's
// current last message (what the publication publishes from now on: the
// caller announces right after), or at the latest keyframe when that is
// unknown.
func (j *job) start() {
	j.fromSeq = j.nextSeq()
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	if j.src.Kind == tsframes.KindVideo {
		j.log.Info("re-encoding video to H.264 without B-frames", "derived_pid", j.derived, "bitrate", j.bitrate)
	} else {
		j.log.Info("transcoding audio to Opus", "derived_pid", j.derived, "channels", j.src.Channels, "sample_rate", j.src.SampleRate)
	}
	go j.run(ctx)
}

// stop ends the job now (the child is killed) and waits for it; its
// metrics are released. It may be called more than once.
func (j *job) stop() {
	j.once.Do(func() {
		j.cancel()
		<-j.done
		j.stage.metrics.active.Dec()
		if !j.stage.hasJob(j.stream) {
			// The stream's series are shared by its audio and video
			// jobs, and by a job that replaces this one.
			j.stage.metrics.release(j.stream)
		}
		j.log.Info("transcoding ended", "children", j.children.Load())
	})
}

func (j *job) run(ctx context.Context) {
	defer close(j.done)
	tp, err := bus.NewTrackPublisher(j.stage.nc, j.stream, j.epoch)
	if err != nil {
		j.m.errors.Inc()
		j.log.Error("transcoding not started", "err", err)
		return
	}
	defer tp.Close()
	sub, err := bus.Subscribe(ctx, j.stage.nc, j.stream, bus.SubscribeOptions{FromSeq: j.fromSeq, Logger: j.log, SourceVideo: true}, j.onMessage)
	if err != nil {
		if ctx.Err() == nil {
			j.m.errors.Inc()
			j.log.Error("transcoding not started: subscribing to the source", "err", err)
		}
		return
	}
	defer sub.Close()

	backoff := j.stage.cfg.RestartMin
	for {
		started := time.Now()
		err := j.runChild(ctx, tp)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > restartReset {
			backoff = j.stage.cfg.RestartMin
		}
		j.m.errors.Inc()
		j.m.restarts.Inc()
		j.log.Warn("transcoder ended: restarting", "err", err, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, j.stage.cfg.RestartMax)
	}
}

// onMessage queues the source frames (audio, or video) of the job's
// epoch. It runs on the subscription's goroutine and never blocks.
func (j *job) onMessage(m bus.Message) {
	f := m.Frame
	if !m.IsFrame() || m.Epoch != j.epoch || f.Kind != j.src.Kind || f.Codec != j.src.Codec || m.Derived {
		return
	}
	select {
	case j.in <- f:
	default:
		j.m.errors.Inc()
		if n, ok := j.dropLog.allow(time.Now()); ok {
			j.log.Warn("transcoder input full: source frame dropped", "pts", f.PTS, "dropped_since_last_log", n)
		}
	}
}

// limiter allows one event a second and counts the others.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were suppressed since the
// last time it did.
func (l *limiter) allow(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// seqTimeout bounds the look-up of the stream's last sequence.
const seqTimeout = 2 * time.Second

// nextSeq is the sequence after the media stream's last message, 0 when
// it cannot be read.
func (j *job) nextSeq() uint64 {
	subj, err := bus.SubjectsFor(j.stream)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), seqTimeout)
	defer cancel()
	js, err := jetstream.New(j.stage.nc)
	if err != nil {
		return 0
	}
	st, err := js.Stream(ctx, subj.Stream)
	if err != nil {
		j.log.Debug("media stream not found: reading from its latest keyframe", "err", err)
		return 0
	}
	return st.CachedInfo().State.LastSeq + 1
}
