//go:build external

package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

// chromiumPath is Debian's Chromium. The browser tests use this one only,
// never a downloaded build.
const chromiumPath = "/usr/bin/chromium"

// chromiumInstall is the command that provides chromiumPath.
const chromiumInstall = "apt-get update && apt-get install -y chromium"

// chromiumFlags are the command-line switches of every test browser.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", "new"),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	// Real host candidates (127.0.0.1), not mDNS names pion cannot resolve.
	chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("no-default-browser-check", true),
	// Keep timers and media running at full rate in a headless tab.
	chromedp.Flag("disable-background-timer-throttling", true),
	chromedp.Flag("disable-renderer-backgrounding", true),
	chromedp.Flag("disable-backgrounding-occluded-windows", true),
	chromedp.WindowSize(960, 600),
}

// browserTimeout bounds every browser test.
const browserTimeout = 90 * time.Second

// startChromium starts a fresh headless Chromium (its own profile in a
// temporary directory) and returns a context of one tab, with a deadline of
// browserTimeout. The browser's console messages and uncaught exceptions go to
// the test log. The browser exits when the test ends. The test fails, with
// the command that installs it, when /usr/bin/chromium is missing.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	return startChromiumWith(t)
}

// startChromiumWith is startChromium with extra command-line switches.
func startChromiumWith(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install Debian's Chromium with: %s", chromiumPath, err, chromiumInstall)
	}
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
	}, chromiumFlags...)
	opts = append(opts, extra...)

	// Not t.Context(): the browser outlives the test's body, its cleanup
	// closes it gracefully.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	logs := &testLog{t: t}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logs.logf))
	consoleDone := make(chan struct{})
	t.Cleanup(func() {
		logs.stop()
		// Close the browser gracefully, then wait for its process to exit
		// (cancelAlloc waits) before t.TempDir removes the profile.
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("closing chromium: %v", err)
		}
		cancelTab()
		cancelAlloc()
		cancelDeadline()
		<-consoleDone
	})

	// Starting the tab starts the browser.
	if err := chromedp.Do(ctx); err != nil {
		close(consoleDone)
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	// The page's console and uncaught exceptions go to the test log.
	messages := chromedp.Console(ctx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			logs.logf("console %s", m)
		}
	}()
	return ctx
}

// testLog forwards browser logs to t.Logf until the test's cleanup starts
// (t.Logf must not be called after the test ends).
type testLog struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("chromium: "+format, args...)
	}
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// checkLeaks fails the test when goroutines started during it are still
// running after all its cleanups. Call it first, so that its check runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// evalJS evaluates a JavaScript expression, awaiting it when it is a
// promise, and decodes its value (JSON) into a T.
func evalJS[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS waits, in the page, until the JavaScript expression is truthy
// (checked every 50 ms and on no schedule of the test's own), failing after
// timeout with the expression in the error.
func waitJS(ctx context.Context, timeout time.Duration, expr string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		return fmt.Errorf("waiting %v for %s: %w", timeout, expr, err)
	}
	return nil
}
