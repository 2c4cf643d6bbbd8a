package whepbench

import (
	"encoding/json"
	"testing"
	"time"
)

func msList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p1", msList(7), 1, 7 * time.Millisecond},
		{"one p100", msList(7), 100, 7 * time.Millisecond},
		{"two p50", msList(1, 2), 50, 1 * time.Millisecond},
		{"two p51", msList(1, 2), 51, 2 * time.Millisecond},
		{"four p50", msList(10, 20, 30, 40), 50, 20 * time.Millisecond},
		{"four p75", msList(10, 20, 30, 40), 75, 30 * time.Millisecond},
		{"four p76", msList(10, 20, 30, 40), 76, 40 * time.Millisecond},
		{"five p95", msList(1, 2, 3, 4, 5), 95, 5 * time.Millisecond},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p95", hundred, 95, 95 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p99.5", hundred, 99.5, 100 * time.Millisecond},
		{"hundred p100", hundred, 100, 100 * time.Millisecond},
		{"clamped low", hundred, 0, 1 * time.Millisecond},
		{"clamped high", hundred, 250, 100 * time.Millisecond},
	}
	for _, c := range cases {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	in := msList(30, 10, 20, 40) // unsorted on purpose
	got := Summarize(in)
	want := Summary{Count: 4, Min: 10 * time.Millisecond, P50: 20 * time.Millisecond, P95: 40 * time.Millisecond,
		P99: 40 * time.Millisecond, Max: 40 * time.Millisecond, Mean: 25 * time.Millisecond}
	if got != want {
		t.Fatalf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 30*time.Millisecond || in[1] != 10*time.Millisecond {
		t.Fatalf("Summarize modified its input: %v", in)
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatalf("Summarize(nil) = %+v", Summarize(nil))
	}
}

func TestSummaryJSON(t *testing.T) {
	s := Summary{Count: 3, Min: 1500 * time.Microsecond, P50: 2 * time.Millisecond, P95: 3 * time.Millisecond,
		P99: 4 * time.Millisecond, Max: 5 * time.Millisecond, Mean: 2500 * time.Microsecond}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"count":3,"min_ms":1.5,"p50_ms":2,"p95_ms":3,"p99_ms":4,"max_ms":5,"mean_ms":2.5}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Fatalf("round trip = %+v, want %+v", back, s)
	}
}
