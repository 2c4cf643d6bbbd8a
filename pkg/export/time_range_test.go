package export

import (
	"errors"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to string
		start    time.Time
		end      time.Time
		err      error
	}{
		{"-30s", "", now.Add(-30 * time.Second), now, nil},
		{"-2m", "-1m", now.Add(-2 * time.Minute), now.Add(-time.Minute), nil},
		{"-1h30m", "", now.Add(-90 * time.Minute), now, nil},
		{"2026-12-04T17:00:00Z", "2026-12-04T18:00:00+01:00", now.Add(-time.Hour), now.Add(-time.Hour), nil},
		{"2026-12-04T17:59:59.5Z", "", now.Add(-500 * time.Millisecond), now, nil},
		{"", "", time.Time{}, time.Time{}, errBadRange},
		{"30s", "", time.Time{}, time.Time{}, errBadTime},
		{"-30", "", time.Time{}, time.Time{}, errBadTime},
		{"yesterday", "", time.Time{}, time.Time{}, errBadTime},
		{"-1m", "2026-12-04", time.Time{}, time.Time{}, errBadTime},
		{"-1m", "-2m", time.Time{}, time.Time{}, errBadRange},
		{"2026-12-04T18:00:01Z", "", time.Time{}, time.Time{}, errBadRange},
	} {
		start, end, err := parseRange(c.from, c.to, now)
		if !errors.Is(err, c.err) || !start.Equal(c.start) || !end.Equal(c.end) {
			t.Errorf("from=%q to=%q: %v %v %v, want %v %v %v", c.from, c.to, start, end, err, c.start, c.end, c.err)
		}
	}
}
