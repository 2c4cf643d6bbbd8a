// Package fmtp reads the format parameters of an SDP fmtp attribute (RFC
// 8866 section 6.15): the "key=value" pairs, separated by ";", that follow
// the payload type, as RTP payload formats define them (H.264's
// profile-level-id and packetization-mode, H.265's profile-id and
// tier-flag, RTX's apt). Keys are compared without regard to case, values
// are returned without the spaces around them.
package fmtp

import "strings"

// Param returns the value of key in params, the fmtp attribute's value
// after its payload type; "" when key is absent or has no value.
func Param(params, key string) string {
	for _, kv := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
