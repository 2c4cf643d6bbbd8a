package bus

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
)

// TestKeyframeRequestsReachTheirStreamOnly: a request for a stream reaches
// the subscribers of that stream, not those of another; invalid names never
// become a subject.
func TestKeyframeRequestsReachTheirStreamOnly(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	got := map[string]chan struct{}{"cam1": make(chan struct{}, 8), "cam2": make(chan struct{}, 8)}
	for name, ch := range got {
		sub, err := SubscribeKeyframeRequests(nc, name, func() { ch <- struct{}{} })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := RequestKeyframe(nc, "cam1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got["cam1"]:
	case <-time.After(5 * time.Second):
		t.Fatal("the request for cam1 did not arrive")
	}
	// A round trip after the request: had cam2 received it, it would be
	// queued by now.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(got["cam2"]) + len(got["cam1"]); n != 0 {
		t.Fatalf("%d more requests delivered, want none", n)
	}
	for _, bad := range []string{"a.b", "*", ">", ""} {
		if err := RequestKeyframe(nc, bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("RequestKeyframe(%q): %v, want ErrInvalidName", bad, err)
		}
		if _, err := SubscribeKeyframeRequests(nc, bad, func() {}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("SubscribeKeyframeRequests(%q): %v, want ErrInvalidName", bad, err)
		}
	}
}

// TestKeyframeRequestsDocumented: docs/bus.md's "Keyframe requests" table
// lists the subject the code uses.
func TestKeyframeRequestsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "bus.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := KeyframeRequestSubject("NAME")
	if err != nil {
		t.Fatal(err)
	}
	rows := mdTables(string(b))["Keyframe requests"]
	if len(rows) != 1 || code(rows[0][0]) != want {
		t.Fatalf("docs/bus.md, Keyframe requests: rows %q, want one for `%s`", rows, want)
	}
}
