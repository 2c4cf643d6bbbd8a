package natstest

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// fileLogger is the log of an in-process server: its lines go to the
// server's log file, like a child process's. Unlike nats-server's own
// logger (ConfigureLogger), whose Fatalf calls os.Exit(1) and so ended the
// whole test binary without a word on its output (a listen port taken
// between freePort and the server's start did that), Fatalf records the
// error and shuts the server down: the test sees a server that stopped,
// and why.
type fileLogger struct {
	mu           sync.Mutex
	w            io.WriteCloser
	debug, trace bool
	fatal        error
	shutdown     func() // called once, in its own goroutine, by the first Fatalf
}

func newFileLogger(path string, debug, trace bool) (*fileLogger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	return &fileLogger{w: f, debug: debug, trace: trace}, nil
}

func (l *fileLogger) logf(label, format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		fmt.Fprintf(l.w, "%s [%s] %s\n", time.Now().Format("2006/01/02 15:04:05.000000"), label, fmt.Sprintf(format, v...))
	}
}

func (l *fileLogger) Noticef(format string, v ...any) { l.logf("INF", format, v) }
func (l *fileLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v) }
func (l *fileLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v) }

func (l *fileLogger) Debugf(format string, v ...any) {
	if l.debug {
		l.logf("DBG", format, v)
	}
}

func (l *fileLogger) Tracef(format string, v ...any) {
	if l.trace {
		l.logf("TRC", format, v)
	}
}

func (l *fileLogger) Fatalf(format string, v ...any) {
	l.logf("FTL", format, v)
	l.mu.Lock()
	first := l.fatal == nil
	if first {
		l.fatal = fmt.Errorf(format, v...)
	}
	shutdown := l.shutdown
	l.mu.Unlock()
	if first && shutdown != nil {
		go shutdown()
	}
}

// fatalErr is the first fatal error the server reported, or nil.
func (l *fileLogger) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// close closes the log file; later lines are dropped.
func (l *fileLogger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		_ = l.w.Close()
		l.w = nil
	}
}

// portTaken reports whether err is a server's failure to listen on a port
// another process took.
func portTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}
