package natstest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// ServerPackage is the main package Build compiles: the nats-server of the
// version the calling module requires.
const ServerPackage = "github.com/nats-io/nats-server/v2"

// Build compiles the nats-server binary into dir and returns its path. It
// runs `go build` in the current directory, which must be inside a module
// that requires nats-server/v2; the go command caches the work, so a build
// per test costs about a second.
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ServerPackage)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("natstest: go build %s: %w\n%s", ServerPackage, err, b)
	}
	return out, nil
}
