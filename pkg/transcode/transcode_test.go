package transcode

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for _, c := range []Config{
		{Mode: "video"},
		{MaxTranscodes: -1},
		{AudioBitrate: 1000},
		{StallTimeout: time.Millisecond},
		{RestartMin: time.Second, RestartMax: time.Millisecond},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestToSource(t *testing.T) {
	for _, tc := range []struct{ out, lastIn, want int64 }{
		{1000, 2000, 1000},
		{1000, wrap + 900, wrap + 1000},         // the source went past a wrap
		{wrap - 100, wrap + 50, wrap - 100},     // the output is just before it
		{wrap - 100, 2*wrap + 10, 2*wrap - 100}, // two wraps in
	} {
		if got := toSource(tc.out, tc.lastIn); got != tc.want {
			t.Errorf("toSource(%d, %d) = %d, want %d", tc.out, tc.lastIn, got, tc.want)
		}
	}
}

func TestOutputClockRemovesRounding(t *testing.T) {
	var c outputClock
	got := []int64{c.place(1000, 1800), c.place(2798, 1800), c.place(4602, 1800), c.place(9000, 1800)}
	want := []int64{1000, 2800, 4600, 9000} // the last is a real gap
	if !slices.Equal(got, want) {
		t.Fatalf("placed %v, want %v", got, want)
	}
}
