package transcode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

const (
	// waitDelay bounds the wait for a killed child and its pipes.
	waitDelay = 2 * time.Second
	// watchPeriod is how often the watchdog checks for a stall and reads
	// the child's CPU time.
	watchPeriod = 250 * time.Millisecond
	// clockTicks is the unit of /proc/PID/stat times (USER_HZ, 100 on
	// Linux).
	clockTicks = 100
	// wrap is the period of MPEG-TS timestamps.
	wrap = int64(1) << 33
)

// errStalled ends a child that produced nothing for the stall timeout
// while it had input.
var errStalled = errors.New("transcoder stalled")

// ffmpegArgs are the arguments of the child: MPEG-TS on stdin, read with
// the smallest probe (so the first output is not held back) and its
// timestamps kept; Opus in MPEG-TS on stdout, one packet per PES, flushed
// at once.
func ffmpegArgs(bitrate, channels int) []string {
	// ffmpeg upmixes mono to stereo 3 dB down in each channel: a mono
	// source (when the announcement says so) is copied to both at its level.
	var upmix []string
	if channels == 1 {
		upmix = []string{"-af", "pan=stereo|c0=c0|c1=c0"}
	}
	return slices.Concat([]string{
		"-hide_banner", "-nostats", "-loglevel", "error",
		"-copyts", "-probesize", "32", "-analyzeduration", "0",
		"-f", "mpegts", "-i", "pipe:0",
		"-map", "0:a:0", "-vn", "-sn", "-dn"}, upmix, []string{
		"-c:a", "libopus", "-b:a", strconv.Itoa(bitrate), "-ar", "48000", "-ac", "2", "-frame_duration", "20",
		"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-avoid_negative_ts", "disabled",
		"-pes_payload_size", "0", "-flush_packets", "1",
		"pipe:1",
	})
}

// childIO is the state shared by one child's goroutines.
type childIO struct {
	// pendingSince is when input was first written after the last output
	// (Unix ns; 0: none pending); lastIn when input was last written.
	pendingSince, lastIn atomic.Int64
	// lastPTS is the source PTS (unwrapped) of the last input written.
	lastPTS atomic.Int64

	mu     sync.Mutex
	inputs [64]inputMark // ring of the latest inputs
	next   int
}

// inputMark is when the input of a PTS was written.
type inputMark struct {
	pts  int64
	when time.Time
}

func (c *childIO) wrote(pts int64, now time.Time) {
	c.lastPTS.Store(pts)
	c.lastIn.Store(now.UnixNano())
	c.pendingSince.CompareAndSwap(0, now.UnixNano())
	c.mu.Lock()
	c.inputs[c.next%len(c.inputs)] = inputMark{pts, now}
	c.next++
	c.mu.Unlock()
}

// delay is the time since the input that output up to end needed (the
// latest input with a PTS before end) was written; false when unknown.
func (c *childIO) delay(end int64, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *inputMark
	for i := range c.inputs {
		m := &c.inputs[i]
		if !m.when.IsZero() && m.pts < end && (best == nil || m.pts > best.pts) {
			best = m
		}
	}
	if best == nil {
		return 0, false
	}
	return now.Sub(best.when), true
}

// toSource maps a PTS of the child's output (unwrapped from its own start)
// onto the source timeline: the value modulo 2^33 nearest to the last
// input's PTS.
func toSource(out, lastIn int64) int64 {
	k := (lastIn - out + wrap/2)
	if k >= 0 {
		k /= wrap
	} else {
		k = -((-k + wrap - 1) / wrap)
	}
	return out + k*wrap
}

// runChild runs one ffmpeg child until it ends, stalls or ctx is done.
func (j *job) runChild(ctx context.Context, tp *bus.TrackPublisher) error {
	if j.needsLATMChannels() {
		j.learnLATMChannels(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cmd := exec.CommandContext(cctx, j.stage.ffmpeg, j.childArgs()...)
	cmd.WaitDelay = waitDelay
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("transcoder stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("transcoder stdout: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("transcoder stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", j.stage.ffmpeg, err)
	}
	j.children.Add(1)
	pid := cmd.Process.Pid
	j.pid.Store(int64(pid))
	defer j.pid.Store(0)
	log := j.log.With("child", pid)
	log.Debug("transcoder started", "cmd", j.stage.ffmpeg)

	var cio childIO
	var wg sync.WaitGroup
	var cpuSeen float64 // seconds already counted
	wg.Add(3)
	go func() {
		defer wg.Done()
		j.logStderr(stderr, log)
	}()
	go func() {
		defer wg.Done()
		defer stdin.Close()
		if err := j.feed(cctx, stdin, &cio); err != nil && cctx.Err() == nil {
			cancel(fmt.Errorf("writing to the transcoder: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(watchPeriod)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case now := <-t.C:
				if s, ok := procCPU(pid); ok && s > cpuSeen {
					j.m.cpu.Add(s - cpuSeen)
					cpuSeen = s
				}
				stall := j.stage.cfg.StallTimeout
				p := cio.pendingSince.Load()
				if p != 0 && now.Sub(time.Unix(0, p)) > stall && cio.lastIn.Load()-p > int64(stall/2) {
					cancel(fmt.Errorf("%w: no output for %v while fed", errStalled, stall))
					return
				}
			}
		}
	}()

	sink := &outputSink{j: j, tp: tp, io: &cio}
	runErr := tsframes.NewDemuxer(stdout, tsframes.Options{}).Run(cctx, sink)
	cancel(nil)
	waitErr := cmd.Wait()
	wg.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		if total > cpuSeen {
			j.m.cpu.Add(total - cpuSeen)
		}
	}
	if cause := context.Cause(cctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	switch {
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		return fmt.Errorf("reading the transcoder's output: %w", runErr)
	case waitErr != nil:
		return fmt.Errorf("transcoder: %w", waitErr)
	}
	return errors.New("transcoder exited")
}

// feed writes the child's input: the tables, then each queued source frame
// as one PES.
func (j *job) feed(ctx context.Context, w io.Writer, cio *childIO) error {
	bw := bufio.NewWriterSize(w, 16<<10)
	tw, err := newTSWriter(bw, j.src.Codec)
	if err != nil {
		return err
	}
	if err := tw.writeTables(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	keySeen := false
	first := j.first
	j.first = nil
	for {
		var f tsframes.Frame
		if len(first) > 0 {
			f, first = first[0], first[1:]
		} else {
			select {
			case <-ctx.Done():
				return nil
			case f = <-j.in:
			}
		}
		if ok, err := j.feedFrame(tw, f, &keySeen); err != nil {
			return err
		} else if !ok {
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		cio.wrote(f.PTS, time.Now())
	}
}

// logStderr logs the child's stderr, a line a second at most.
func (j *job) logStderr(r io.Reader, log *slog.Logger) {
	var lim limiter
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if n, ok := lim.allow(time.Now()); ok {
			log.Warn("ffmpeg: "+line, "suppressed_lines", n)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// outputSink publishes the child's Opus on the source's timeline.
type outputSink struct {
	j      *job
	tp     *bus.TrackPublisher
	io     *childIO
	pubLog limiter
}

func (s *outputSink) Tracks(a tsframes.Announcement) error {
	if s.j.src.Kind == tsframes.KindVideo {
		s.videoTracks(a)
	}
	return nil
}

func (s *outputSink) Frame(f tsframes.Frame) error {
	now := time.Now()
	if s.j.src.Kind == tsframes.KindVideo {
		return s.videoFrame(f, now)
	}
	if f.Codec != tsframes.CodecOpus {
		return nil
	}
	s.io.pendingSince.Store(0)
	f.PTS = s.j.out.place(toSource(f.PTS, s.io.lastPTS.Load()), f.Duration)
	f.DTS, f.PID = f.PTS, s.j.derived
	s.publish(f, f.PTS+f.Duration, now)
	return nil
}

// publish publishes f, a frame of the derived track on the source's
// timeline whose output needed the input up to end (the delay metric);
// a failure is counted and logged (a line a second at most).
func (s *outputSink) publish(f tsframes.Frame, end int64, now time.Time) {
	if d, ok := s.io.delay(end, now); ok {
		s.j.m.delay.Set(d.Seconds())
	}
	if err := s.tp.Publish(f); err != nil {
		s.j.m.errors.Inc()
		if n, ok := s.pubLog.allow(now); ok {
			s.j.log.Warn("derived frame not published", "codec", f.Codec, "err", err, "suppressed", n)
		}
	}
}

// ptsTolerance is how far (90 kHz) a packet's PTS may be from the end of
// the previous one and still be placed right after it: the encoder's
// timestamps go through the resampler's rounding (a few ticks from 44.1 kHz
// sources), which would otherwise make RTP timestamps jitter.
const ptsTolerance = 90 // 1 ms

// outputClock keeps the derived track's packets end to end.
type outputClock struct {
	valid bool
	end   int64 // PTS + duration of the last packet
}

// place returns the PTS of a packet of duration dur whose encoder PTS is
// pts: right after the previous packet when within ptsTolerance of it,
// else pts (a real gap: a restart, lost input).
func (c *outputClock) place(pts, dur int64) int64 {
	if c.valid && pts-c.end <= ptsTolerance && c.end-pts <= ptsTolerance {
		pts = c.end
	}
	c.valid, c.end = true, pts+dur
	return pts
}

// procCPU reads the user and system CPU seconds of process pid from
// /proc; false where there is no /proc.
func procCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15.
	if len(fields) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+st) / clockTicks, true
}
