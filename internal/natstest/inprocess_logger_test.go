package natstest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFileLoggerFatalStopsTheServerOnly: an in-process server's Fatalf
// (nats-server's logger would os.Exit(1) the test binary) is logged,
// recorded and shuts the server down, once.
func TestFileLoggerFatalStopsTheServerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nats-server.log")
	l, err := newFileLogger(path, false, false)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan struct{}, 2)
	l.shutdown = func() { calls <- struct{}{} }
	l.Noticef("listening on %d", 4222)
	l.Debugf("not logged without debug")
	l.Fatalf("Error listening on port: %s, %q", "127.0.0.1:4222", "listen tcp 127.0.0.1:4222: bind: address already in use")
	l.Fatalf("a second fatal error")
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("Fatalf did not shut the server down")
	}
	if err := l.fatalErr(); err == nil || !portTaken(err) || !strings.HasPrefix(err.Error(), "Error listening on port") {
		t.Fatalf("fatal error %v, want the first one, a taken port", err)
	}
	l.close()
	l.Errorf("after close: dropped")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "[INF] listening on 4222") || !strings.Contains(lines[1], "[FTL] Error listening") ||
		!strings.Contains(lines[2], "[FTL] a second fatal error") {
		t.Fatalf("log file:\n%s", data)
	}
	select {
	case <-calls:
		t.Fatal("shut down twice")
	default:
	}
	if portTaken(errors.New("other")) || portTaken(nil) {
		t.Fatal("portTaken true for another error")
	}
}
