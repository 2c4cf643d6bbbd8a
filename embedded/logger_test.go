package embedded

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestServerLoggerFatalNeverExits: a Fatalf (nats-server's own logger
// would os.Exit(1)) is logged at Error, the first one is kept, and onFatal
// is called once.
func TestServerLoggerFatalNeverExits(t *testing.T) {
	var out bytes.Buffer
	calls := make(chan struct{}, 2)
	l := NewServerLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), func() { calls <- struct{}{} })
	l.Noticef("Server is ready")
	l.Fatalf("Error listening on port: %s", "127.0.0.1:4222")
	l.Fatalf("a second fatal error")
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("onFatal not called")
	}
	if err := l.Fatal(); err == nil || err.Error() != "Error listening on port: 127.0.0.1:4222" {
		t.Fatalf("Fatal() = %v, want the first fatal error", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `level=DEBUG msg="Server is ready"`) ||
		!strings.Contains(lines[1], `level=ERROR msg="Error listening on port: 127.0.0.1:4222" fatal=true`) {
		t.Fatalf("log:\n%s", out.String())
	}
	select {
	case <-calls:
		t.Fatal("onFatal called twice")
	default:
	}
}
