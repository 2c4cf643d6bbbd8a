package config

import (
	"strings"
	"testing"
)

func TestMaxExportsReachesTheExportConfig(t *testing.T) {
	n, err := LoadNode([]string{"--max-exports", "3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Export.Config().MaxExports; got != 3 {
		t.Errorf("export.Config.MaxExports %d, want 3", got)
	}
	if _, err := LoadNode([]string{"--max-exports", "-1"}, nil); err == nil || !strings.Contains(err.Error(), "export.max-exports") {
		t.Errorf("--max-exports -1: %v, want an error naming export.max-exports", err)
	}
}
