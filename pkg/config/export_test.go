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
	if got := n.WHEP.Export().MaxExports; got != 3 {
		t.Errorf("whep-node: export.Config.MaxExports %d, want 3", got)
	}
	b, err := LoadBroker([]string{"--max-exports", "4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.WHEP.Export().MaxExports; got != 4 {
		t.Errorf("broker: export.Config.MaxExports %d, want 4", got)
	}
	if _, err := LoadNode([]string{"--max-exports", "-1"}, nil); err == nil || !strings.Contains(err.Error(), "whep.max-exports") {
		t.Errorf("--max-exports -1: %v, want an error naming whep.max-exports", err)
	}
}
