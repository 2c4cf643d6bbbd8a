package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestMain runs the tests, then removes the binaries the end-to-end tests
// built (if any).
func TestMain(m *testing.M) {
	code := m.Run()
	e2eBin.remove()
	os.Exit(code)
}

// e2eBuildTimeout bounds the one build of the binaries.
const e2eBuildTimeout = 4 * time.Minute

// e2eBin holds cmd/broker, cmd/whep-node and cmd/whep-bench, built once per
// test run by the first end-to-end test that needs them.
var e2eBin e2eBinaries

type e2eBinaries struct {
	once   sync.Once
	mu     sync.Mutex
	dir    string
	broker string
	node   string
	bench  string
	took   time.Duration
	err    error
}

// get builds the binaries on its first call and returns their paths; the
// test fails when the build failed (on every call).
func (b *e2eBinaries) get(t *testing.T) (broker, node string) {
	t.Helper()
	built := false
	b.once.Do(func() {
		b.build()
		built = true
	})
	if b.err != nil {
		t.Fatalf("building the binaries: %v", b.err)
	}
	if built {
		t.Logf("built the broker, whep-node and whep-bench binaries in %v", b.took.Round(time.Millisecond))
	}
	return b.broker, b.node
}

// benchPath builds the binaries on its first call (see get) and returns the
// path of whep-bench.
func (b *e2eBinaries) benchPath(t *testing.T) string {
	t.Helper()
	b.get(t)
	return b.bench
}

func (b *e2eBinaries) build() {
	dir, err := os.MkdirTemp("", "whepcast-e2e-bin-")
	b.mu.Lock()
	b.dir = dir
	b.mu.Unlock()
	if err != nil {
		b.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eBuildTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/broker", "./cmd/whep-node", "./cmd/whep-bench")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		b.err = fmt.Errorf("go build ./cmd/broker ./cmd/whep-node ./cmd/whep-bench: %w\n%s", err, out)
		return
	}
	b.took = time.Since(start)
	b.broker, b.node, b.bench = filepath.Join(dir, "broker"), filepath.Join(dir, "whep-node"), filepath.Join(dir, "whep-bench")
}

func (b *e2eBinaries) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
