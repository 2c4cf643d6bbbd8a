package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// PathPrefix is the path the handler serves: PathPrefix + "{stream}.ts" or
// ".mp4".
const PathPrefix = "/export/"

// TrailerEnd is the HTTP trailer that says how an export ended: "range"
// (the range was written whole), "epoch" (cut at an epoch change) or
// "error: …" (the response is incomplete).
const TrailerEnd = "Whepcast-Export-End"

// HeaderStart is the response header giving the store time (RFC 3339) of
// the keyframe the export starts at.
const HeaderStart = "Whepcast-Export-Start"

// Authorizer checks a request's credentials; a non-nil error is a 401.
type Authorizer interface {
	Authorize(r *http.Request) error
}

// Deps are what the handler reads from.
type Deps struct {
	// Conn is the NATS connection to the bus. Required.
	Conn *nats.Conn
	// Authorizer checks the bearer token; nil leaves exports open.
	Authorizer Authorizer
	// Logger receives one line per export (default: discarded).
	Logger *slog.Logger
}

// Handler serves GET PathPrefix{stream}.ts and .mp4 (see the package doc).
type Handler struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	slots  chan struct{} // one per export in progress
	now    func() time.Time
}

// NewHandler checks cfg and deps and returns the handler. Errors wrap
// ErrInvalidConfig.
func NewHandler(cfg Config, deps Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil {
		return nil, fmt.Errorf("%w: Deps.Conn is required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		cfg:    cfg,
		deps:   deps,
		logger: logger,
		slots:  make(chan struct{}, cfg.MaxExports),
		now:    time.Now,
	}, nil
}

// format is an export's container.
type format int

const (
	formatTS format = iota
	formatMP4
)

// request is a parsed export request.
type request struct {
	stream   string
	format   format
	from, to time.Time
}

func (h *Handler) parse(r *http.Request) (request, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return request{}, errMethod
	}
	if h.deps.Authorizer != nil {
		if err := h.deps.Authorizer.Authorize(r); err != nil {
			return request{}, fmt.Errorf("%w: %w", errUnauthorized, err)
		}
	}
	name, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		return request{}, errNoFormat
	}
	var req request
	switch {
	case strings.HasSuffix(name, ".ts"):
		req.stream, req.format = strings.TrimSuffix(name, ".ts"), formatTS
	case strings.HasSuffix(name, ".mp4"):
		req.stream, req.format = strings.TrimSuffix(name, ".mp4"), formatMP4
	default:
		return request{}, errNoFormat
	}
	if err := bus.ValidateName(req.stream); err != nil {
		return request{}, err
	}
	q := r.URL.Query()
	var err error
	if req.from, req.to, err = parseRange(q.Get("from"), q.Get("to"), h.now()); err != nil {
		return request{}, err
	}
	return req, nil
}

// ServeHTTP serves one export.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := h.parse(r)
	if err != nil {
		h.refuse(w, err)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.refuse(w, fmt.Errorf("%w (%d)", errBusy, h.cfg.MaxExports))
		return
	}
	ctx := r.Context()
	rr, err := bus.OpenRange(ctx, h.deps.Conn, req.stream, req.from, req.to)
	if err != nil {
		h.refuse(w, err)
		return
	}
	defer rr.Close()
	logger := h.logger.With("stream", req.stream, "from", req.from, "to", req.to)
	hdr := w.Header()
	ext := ".ts"
	hdr.Set("Content-Type", "video/mp2t")
	if req.format == formatMP4 {
		ext = ".mp4"
		hdr.Set("Content-Type", "video/mp4")
	}
	hdr.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q",
		req.stream+"-"+rr.Start().UTC().Format("20060102T150405Z")+ext))
	hdr.Set(HeaderStart, rr.Start().UTC().Format(time.RFC3339Nano))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Trailer", TrailerEnd)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	out := &deadlineWriter{rc: http.NewResponseController(w), w: w, timeout: h.cfg.WriteTimeout}
	end, frames, err := h.write(ctx, rr, req.format, out)
	if err != nil {
		hdr.Set(TrailerEnd, "error: "+err.Error())
		logger.Info("export ended early", "frames", frames, "err", err)
		return
	}
	hdr.Set(TrailerEnd, end)
	logger.Debug("export done", "frames", frames, "end", end)
}

// frameMuxer is a container writer.
type frameMuxer interface {
	frame(f tsframes.Frame) error
	close() error
}

// tracks are a clip's tracks, known once the first frames are read.
type tracks struct {
	// video is the video codec: H.264, or H.265 (MPEG-TS only).
	video tsframes.Codec
	// audioChannels is the Opus channel count, 0 without audio.
	audioChannels int
}

// Probe bounds: the frames read before the tracks are decided, waiting for
// the first audio packet.
const (
	probeMaxFrames   = 256
	probeMaxDuration = 90000 // 1 s of video
)

// write copies the range into the container through out. It returns how
// the export ended ("range" or "epoch") and the frames written.
func (h *Handler) write(ctx context.Context, rr *bus.RangeReader, f format, out *deadlineWriter) (end string, frames int, err error) {
	bw := bufio.NewWriterSize(out, 64<<10)
	var (
		mux   frameMuxer
		epoch uint64
		probe []tsframes.Frame
		begun bool
		video tsframes.Codec // the video codec exported
		// h265Left is set when H.265 keyframes were left out of an fMP4
		// export that found no H.264 to export.
		h265Left bool
	)
	start := func() error {
		tr := tracks{video: video}
		for _, p := range probe {
			if p.Kind == tsframes.KindAudio && len(p.Data) > 0 {
				tr.audioChannels = opusChannels(p.Data)
				break
			}
		}
		if f == formatMP4 {
			mux = newFMP4Muxer(bw, tr)
		} else {
			m, err := newTSMuxer(bw, tr)
			if err != nil {
				return err
			}
			mux = m
		}
		for _, p := range probe {
			if err := mux.frame(p); err != nil {
				return err
			}
			frames++
		}
		probe = nil
		return nil
	}
	end = "range"
	for {
		m, err := rr.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", frames, err
		}
		if !m.IsFrame() {
			continue
		}
		fr := m.Frame
		if fr.Kind == tsframes.KindAudio && fr.Codec != tsframes.CodecOpus {
			// The source audio of a transcoded stream (docs/transcoding.md):
			// its Opus is exported.
			continue
		}
		if fr.Kind == tsframes.KindVideo {
			// One video codec: that of the first keyframe, H.264, or
			// H.265 into MPEG-TS (docs/bus.md, "Video selection": an
			// H.265 stream may also carry an H.264 rendition).
			if video == "" && fr.Key && (fr.Codec == tsframes.CodecH264 || fr.Codec == tsframes.CodecH265 && f == formatTS) {
				video = fr.Codec
			}
			h265Left = h265Left || fr.Codec == tsframes.CodecH265 && video == ""
			if fr.Codec != video {
				continue
			}
		}
		if !begun {
			if fr.Kind != tsframes.KindVideo || !fr.Key {
				continue
			}
			begun, epoch = true, m.Epoch
		}
		if m.Epoch != epoch {
			end = "epoch"
			break
		}
		if mux == nil {
			probe = append(probe, fr)
			if fr.Kind == tsframes.KindAudio || len(probe) >= probeMaxFrames ||
				(fr.Kind == tsframes.KindVideo && fr.DTS-probe[0].DTS >= probeMaxDuration) {
				if err := start(); err != nil {
					return "", frames, err
				}
			}
			continue
		}
		if err := mux.frame(fr); err != nil {
			return "", frames, err
		}
		frames++
		if fr.Key {
			// Hand a GOP to the client at each keyframe.
			if err := bw.Flush(); err != nil {
				return "", frames, err
			}
			out.flush()
		}
	}
	if mux == nil && len(probe) > 0 {
		if err := start(); err != nil {
			return "", frames, err
		}
	}
	if !begun && h265Left {
		return "", frames, errH265MP4
	}
	if mux != nil {
		if err := mux.close(); err != nil {
			return "", frames, err
		}
	}
	if err := bw.Flush(); err != nil {
		return "", frames, err
	}
	out.flush()
	return end, frames, nil
}

// opusChannels reads the channel count of an Opus packet from its TOC byte
// (RFC 6716 §3.1: the s bit).
func opusChannels(p []byte) int {
	if p[0]&0x04 != 0 {
		return 2
	}
	return 1
}

// deadlineWriter writes to the response with a deadline per write, so that
// a client that accepts nothing is dropped after timeout.
type deadlineWriter struct {
	rc      *http.ResponseController
	w       io.Writer
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

func (d *deadlineWriter) flush() {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	_ = d.rc.Flush()
}

// refuse answers err with its status and a one-line message.
func (h *Handler) refuse(w http.ResponseWriter, err error) {
	code := statusOf(err)
	switch code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="whepcast"`)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", "GET, HEAD")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	case http.StatusInternalServerError:
		h.logger.Warn("export failed", "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, err)
}
