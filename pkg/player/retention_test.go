package player

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
)

// TestBusRetention: the oldest keyframe's store time of a stream's log,
// bus.ErrNotFound for a stream without one, and the answer reused within
// 2 s (a purge is seen only after).
func TestBusRetention(t *testing.T) {
	ctx := t.Context()
	nc := natstest.EmbeddedConn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := bus.SubjectsFor("dvr")
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subj.Stream, Subjects: []string{subj.All}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	r := NewBusRetention(js)
	if _, err := r.Oldest(ctx, "dvr"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("no keyframe: %v, want bus.ErrNotFound", err)
	}
	var keys []time.Time
	for range 2 {
		ack, err := js.Publish(ctx, subj.Key, []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, m.Time)
	}
	got, err := r.Oldest(ctx, "dvr")
	if err != nil || !got.Equal(keys[0]) {
		t.Fatalf("Oldest = %v, %v; want %v", got, err, keys[0])
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(2)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Oldest(ctx, "dvr"); err != nil || !got.Equal(keys[0]) {
		t.Fatalf("within 2 s of the first answer: %v, %v; want it reused (%v)", got, err, keys[0])
	}
	if _, err := r.Oldest(ctx, "bad.name"); !errors.Is(err, bus.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
}
