package ingest

import "fmt"

// TakeoverPolicy says what happens when a new publisher of a live stream
// has sent its first access unit.
type TakeoverPolicy int

const (
	// TakeoverAllow stops the live publication and lets the new one
	// publish (the default).
	TakeoverAllow TakeoverPolicy = iota
	// TakeoverDeny refuses the new publisher (ErrLive) and leaves the live
	// publication alone.
	TakeoverDeny
)

// ParseTakeoverPolicy parses "allow" or "deny"; "" is allow, the default.
func ParseTakeoverPolicy(s string) (TakeoverPolicy, error) {
	switch s {
	case "", "allow":
		return TakeoverAllow, nil
	case "deny":
		return TakeoverDeny, nil
	}
	return 0, fmt.Errorf("ingest: takeover policy %q: want allow or deny", s)
}

func (p TakeoverPolicy) String() string {
	switch p {
	case TakeoverAllow:
		return "allow"
	case TakeoverDeny:
		return "deny"
	}
	return fmt.Sprintf("TakeoverPolicy(%d)", int(p))
}
