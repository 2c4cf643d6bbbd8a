package fmtp

import "testing"

func TestParam(t *testing.T) {
	const h264 = "level-asymmetry-allowed=1;packetization-mode=1; profile-level-id=42e01f"
	for _, c := range []struct{ params, key, want string }{
		{h264, "packetization-mode", "1"},
		{h264, "profile-level-id", "42e01f"},
		{h264, "Profile-Level-ID", "42e01f"},
		{h264, "level-asymmetry-allowed", "1"},
		{h264, "sprop-parameter-sets", ""},
		{"apt=96", "apt", "96"},
		{"profile-id=1 ; tier-flag = 0", "tier-flag", "0"},
		{"minptime=10;useinbandfec=1", "stereo", ""},
		{"flag;apt=97", "flag", ""},
		{"", "apt", ""},
		{";;=;apt=", "apt", ""},
	} {
		if got := Param(c.params, c.key); got != c.want {
			t.Errorf("Param(%q, %q) = %q, want %q", c.params, c.key, got, c.want)
		}
	}
}
