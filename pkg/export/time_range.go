package export

import (
	"fmt"
	"strings"
	"time"
)

// parseTime reads a time of the query: relative to now ("-30s", "-2m",
// "-1h30m", any negative Go duration) or absolute (RFC 3339).
func parseTime(s string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w %q: want -30s, -2m or RFC 3339", errBadTime, s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: want -30s, -2m or RFC 3339", errBadTime, s)
	}
	return t, nil
}

// parseRange reads from (required) and to (default now).
func parseRange(from, to string, now time.Time) (start, end time.Time, err error) {
	if from == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: from is required", errBadRange)
	}
	if start, err = parseTime(from, now); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("from: %w", err)
	}
	end = now
	if to != "" {
		if end, err = parseTime(to, now); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("to: %w", err)
		}
	}
	if start.After(end) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: from %s is after to %s", errBadRange,
			start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano))
	}
	return start, end, nil
}
