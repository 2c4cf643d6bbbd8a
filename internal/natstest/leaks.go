package natstest

import (
	"runtime"
	"strings"

	"go.uber.org/goleak"
)

// upstreamLeak is the function of the goroutine that nats.go v1.55.0's
// jetstream package can leave behind a closed async publisher: newAsyncReply
// starts resetPendingAcksOnReconnect, and a CleanupPublisher that runs
// before that goroutine first reads the status channel sets the channel to
// nil, on which the goroutine then waits forever. Measured: 27 goroutines
// after 10,000 one-shot streams (docs/operations.md).
const upstreamLeak = "github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"

// IgnoreUpstreamLeak is the goleak option that ignores the goroutines of
// nats.go's race described at upstreamLeak, and only those.
func IgnoreUpstreamLeak() goleak.Option { return goleak.IgnoreTopFunction(upstreamLeak) }

// Goroutines counts the running goroutines, less those of nats.go's race
// described at upstreamLeak; it also returns how many of those there are.
func Goroutines() (ours, upstream int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if g == "" {
			continue
		}
		// The top frame's function is the stack's second line.
		lines := strings.SplitN(g, "\n", 3)
		if len(lines) > 1 && strings.HasPrefix(lines[1], upstreamLeak+"(") {
			upstream++
			continue
		}
		ours++
	}
	return ours, upstream
}
