// Package logtest lets a test wait for a log message: Watch is a
// slog.Handler that passes on the message of every record, and Wait waits
// for one of them.
package logtest

import (
	"context"
	"log/slog"
	"testing"
)

// Watch is a slog.Handler that keeps the messages logged (the last 1024
// not yet waited for; later ones are dropped) for Wait.
type Watch struct{ msgs chan string }

// NewWatch returns a Watch with no message.
func NewWatch() *Watch { return &Watch{msgs: make(chan string, 1024)} }

func (w *Watch) Enabled(context.Context, slog.Level) bool { return true }
func (w *Watch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *Watch) WithGroup(string) slog.Handler            { return w }

// Handle keeps r's message.
func (w *Watch) Handle(_ context.Context, r slog.Record) error {
	select {
	case w.msgs <- r.Message:
	default:
	}
	return nil
}

// Wait waits until msg is logged, failing the test if ctx ends first.
// Messages logged before it are skipped.
func (w *Watch) Wait(t testing.TB, ctx context.Context, msg string) {
	t.Helper()
	for {
		select {
		case m := <-w.msgs:
			if m == msg {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%q not logged", msg)
		}
	}
}
