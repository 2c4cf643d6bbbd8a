package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// ServerLogger implements nats-server's Logger on top of slog, and never
// exits: nats-server's own logger calls os.Exit(1) on Fatalf. Notices (the
// start-up banner, routine state changes) are Debug, so that a broker's Info
// log says what whepcast does; warnings and errors keep their level; traces
// are Debug with trace=true. A Fatalf is logged at Error and remembered
// (Fatal), and the onFatal given to NewServerLogger, if any, is called once,
// in its own goroutine: the caller decides what a fatal error ends (Start
// returns it; natstest shuts that one server down).
type ServerLogger struct {
	l       *slog.Logger
	onFatal func()

	mu       sync.Mutex
	fatalErr error
}

// NewServerLogger returns a ServerLogger writing to l; onFatal may be nil.
func NewServerLogger(l *slog.Logger, onFatal func()) *ServerLogger {
	return &ServerLogger{l: l, onFatal: onFatal}
}

func (s *ServerLogger) log(level slog.Level, format string, v []any, attrs ...any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, fmt.Sprintf(format, v...), attrs...)
}

func (s *ServerLogger) Noticef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s *ServerLogger) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s *ServerLogger) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s *ServerLogger) Debugf(format string, v ...any)  { s.log(slog.LevelDebug, format, v) }
func (s *ServerLogger) Tracef(format string, v ...any) {
	s.log(slog.LevelDebug, format, v, "trace", true)
}

func (s *ServerLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Error(msg, "fatal", true)
	s.mu.Lock()
	first := s.fatalErr == nil
	if first {
		s.fatalErr = errors.New(msg)
	}
	s.mu.Unlock()
	if first && s.onFatal != nil {
		go s.onFatal()
	}
}

// Fatal returns the first fatal error reported by the server, if any.
func (s *ServerLogger) Fatal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatalErr
}
