package sdpfrag

import (
	"fmt"
	"strconv"
)

// isICEChar reports whether b is an ice-char: ALPHA / DIGIT / "+" / "/".
func isICEChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '+' || b == '/'
}

// checkICEChars checks that s is min to max ice-chars.
func checkICEChars(what, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("%w: %s is %d characters, want %d to %d", ErrSyntax, what, len(s), minLen, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if !isICEChar(s[i]) {
			return fmt.Errorf("%w: %s %q has a character outside A-Z a-z 0-9 + /", ErrSyntax, what, clip(s))
		}
	}
	return nil
}

// checkToken checks that s is 1 to max visible ASCII characters (no space,
// no control character).
func checkToken(what, s string, maxLen int) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrSyntax, what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: %s is %d bytes, longer than %d", ErrSyntax, what, len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: %s %q has a character that is not visible ASCII", ErrSyntax, what, clip(s))
		}
	}
	return nil
}

// checkAddress checks a candidate's connection address: an IPv4 or IPv6
// address (with an optional zone) or a host name.
func checkAddress(s string) error {
	if s == "" || len(s) > maxAddress {
		return fmt.Errorf("%w: candidate address is %d bytes, want 1 to %d", ErrSyntax, len(s), maxAddress)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '.' || b == ':' || b == '-' || b == '_' || b == '%'
		if !ok {
			return fmt.Errorf("%w: candidate address %q has a character outside A-Z a-z 0-9 . : - _ %%", ErrSyntax, clip(s))
		}
	}
	return nil
}

// parseDecimal parses s as 1 to 10 decimal digits within [minV, maxV].
func parseDecimal(what, s string, minV, maxV int64) (int64, error) {
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("%w: %s %q is not 1 to 10 digits", ErrSyntax, what, clip(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s %q is not a decimal number", ErrSyntax, what, clip(s))
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < minV || v > maxV {
		return 0, fmt.Errorf("%w: %s %q out of %d..%d", ErrSyntax, what, clip(s), minV, maxV)
	}
	return v, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
