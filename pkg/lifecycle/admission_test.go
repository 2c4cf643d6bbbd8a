package lifecycle

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestAdmissionRefusesNewStreamsBeyondMaxStreams(t *testing.T) {
	successor := map[string]bool{"a": true}
	a, err := NewAdmission(AdmissionConfig{MaxStreams: 2, Successor: func(name string) bool { return successor[name] }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	relA, err := a.Admit(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Admit(t.Context(), "c")
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrMaxStreams) || le.Limit != "max-streams" ||
		le.StatusCode() != http.StatusServiceUnavailable || le.RetryAfter() != DefaultRetryAfter {
		t.Fatalf("third stream: %v, want a max-streams LimitError (503, Retry-After %v)", err, DefaultRetryAfter)
	}
	if got := err.Error(); got != "too many live streams (--max-streams: 2 of 2 live); retry after 5s" {
		t.Errorf("refusal = %q", got)
	}
	// A second publisher of a live stream (a takeover) is never refused.
	relA2, err := a.Admit(t.Context(), "a")
	if err != nil {
		t.Fatalf("takeover of a live stream at the limit: %v", err)
	}
	relA()
	relA() // releasing twice is harmless
	relA2()
	// "a" keeps its place for its successor for the handover grace: the
	// successor is admitted, another stream is not.
	if _, err := a.Admit(t.Context(), "c"); !errors.Is(err, ErrMaxStreams) {
		t.Fatalf("new stream within the handover grace: %v, want ErrMaxStreams", err)
	}
	relA3, err := a.Admit(t.Context(), "a")
	if err != nil {
		t.Fatalf("successor of a stream within the handover grace: %v", err)
	}
	relA3()
	now = now.Add(HandoverGrace)
	relC, err := a.Admit(t.Context(), "c")
	if err != nil {
		t.Fatalf("new stream after the grace: %v", err)
	}
	if n := a.LiveStreams(); n != 2 {
		t.Fatalf("LiveStreams = %d, want 2", n)
	}
	// A stream that ends without a successor frees its place at once.
	relC()
	if _, err := a.Admit(t.Context(), "d"); err != nil {
		t.Fatalf("new stream right after another ended: %v", err)
	}
}

func TestAdmissionRefusesNewStreamsOverStorageBudget(t *testing.T) {
	used := int64(0)
	a, err := NewAdmission(AdmissionConfig{StorageBudget: 1000, RetryAfter: 30 * time.Second,
		Usage: func(context.Context) (int64, error) { return used, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	used = 1000
	_, err = a.Admit(t.Context(), "b")
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrStorageBudget) || le.StatusCode() != http.StatusInsufficientStorage ||
		le.RetryAfter() != 30*time.Second || le.Limit != "storage-budget" {
		t.Fatalf("new stream over the budget: %v, want a storage-budget LimitError (507, 30s)", err)
	}
	if _, err := a.Admit(t.Context(), "a"); err != nil {
		t.Fatalf("publisher of a live stream over the budget: %v", err)
	}
	// An existing stream is admitted over the budget (lowered since, or
	// after a restart).
	a.cfg.Exists = func(_ context.Context, name string) (bool, error) { return name == "old", nil }
	if _, err := a.Admit(t.Context(), "old"); err != nil {
		t.Fatalf("existing stream over the budget: %v", err)
	}
	if _, err := a.Admit(t.Context(), "b"); !errors.Is(err, ErrStorageBudget) {
		t.Fatalf("new stream over the budget with Exists set: %v, want ErrStorageBudget", err)
	}
	fail := errors.New("no JetStream")
	a.cfg.Usage = func(context.Context) (int64, error) { return 0, fail }
	if _, err := a.Admit(t.Context(), "c"); !errors.Is(err, fail) {
		t.Fatalf("unmeasurable storage: %v, want the measuring error", err)
	}
}

func TestAdmissionConfigValidate(t *testing.T) {
	for _, c := range []AdmissionConfig{{MaxStreams: -1}, {StorageBudget: -1}, {StorageBudget: 1}, {RetryAfter: -time.Second}} {
		if _, err := NewAdmission(c); err == nil {
			t.Errorf("NewAdmission(%+v) = nil error", c)
		}
	}
}
