package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// serverLogger implements nats-server's Logger on top of slog. Notices (the
// start-up banner, routine state changes) are Debug, so that a broker's Info
// log says what whepcast does; warnings and errors keep their level; traces
// are Debug with trace=true. A Fatalf is logged at Error and
// remembered, so that Start can return it instead of the process exiting.
type serverLogger struct {
	l *slog.Logger

	mu       sync.Mutex
	fatalErr error
}

func newServerLogger(l *slog.Logger) *serverLogger { return &serverLogger{l: l} }

func (s *serverLogger) log(level slog.Level, format string, v []any, attrs ...any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, fmt.Sprintf(format, v...), attrs...)
}

func (s *serverLogger) Noticef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s *serverLogger) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s *serverLogger) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s *serverLogger) Debugf(format string, v ...any)  { s.log(slog.LevelDebug, format, v) }
func (s *serverLogger) Tracef(format string, v ...any) {
	s.log(slog.LevelDebug, format, v, "trace", true)
}

func (s *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Error(msg, "fatal", true)
	s.mu.Lock()
	if s.fatalErr == nil {
		s.fatalErr = errors.New(msg)
	}
	s.mu.Unlock()
}

// fatal returns the first fatal error reported by the server, if any.
func (s *serverLogger) fatal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatalErr
}
