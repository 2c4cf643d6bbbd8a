package bus

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStreamConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  StreamConfig
		want string
	}{
		{StreamConfig{}, ""},
		{StreamConfig{Storage: "memory", Replicas: 3, MaxAge: time.Minute, MaxBytes: 1 << 30}, ""},
		{StreamConfig{Storage: "file", Replicas: 5, MaxAge: time.Second, MaxBytes: MinMaxBytes}, ""},
		{StreamConfig{Storage: "disk"}, `stream storage "disk": want "file" or "memory"`},
		{StreamConfig{Replicas: 6}, "stream replicas 6: want 1 to 5"},
		{StreamConfig{Replicas: -1}, "stream replicas -1"},
		{StreamConfig{MaxAge: 500 * time.Millisecond}, "stream max age 500ms: want at least 1s"},
		{StreamConfig{MaxAge: -time.Second}, "stream max age -1s"},
		{StreamConfig{MaxBytes: 1000}, "stream max bytes 1000: want at least 65536"},
		{StreamConfig{MaxBytes: -1}, "stream max bytes -1"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestStreamConfigDefaults(t *testing.T) {
	c := StreamConfig{}.jetStreamConfig(mustSubjects("cam1"))
	if c.Name != "MEDIA_cam1" || len(c.Subjects) != 1 || c.Subjects[0] != "media.cam1.>" ||
		c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.MaxAge != DefaultMaxAge ||
		c.MaxBytes != -1 || c.Discard != jetstream.DiscardOld || !c.AllowDirect ||
		!c.AllowRollup || !c.AllowMsgTTL {
		t.Fatalf("default stream config = %+v", c)
	}
	if m := (StreamConfig{Storage: StorageMemory}).jetStreamConfig(mustSubjects("x")); m.Storage != jetstream.MemoryStorage {
		t.Fatalf("memory storage = %v", m.Storage)
	}
}
