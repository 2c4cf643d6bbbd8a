package bus

import (
	"sync/atomic"
	"time"
)

// logInterval is the least time between two log lines of one logLimiter.
const logInterval = 5 * time.Second

// logLimiter lets one log line through per logInterval, so that a
// persistent failure (per frame, per message) does not flood the log. It
// is safe for concurrent use.
type logLimiter struct {
	last atomic.Int64 // Unix ns of the last line let through, 0 before
}

// allow reports whether a line may be logged now, and if so records it.
func (l *logLimiter) allow(now time.Time) bool {
	last := l.last.Load()
	if last != 0 && now.UnixNano()-last < int64(logInterval) {
		return false
	}
	return l.last.CompareAndSwap(last, now.UnixNano())
}
