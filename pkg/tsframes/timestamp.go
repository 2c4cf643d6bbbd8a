package tsframes

const (
	tsPeriod = int64(1) << 33 // MPEG-TS timestamps are 33-bit
	tsHalf   = tsPeriod / 2
)

// unwrapper turns 33-bit MPEG-TS timestamps into a continuous int64 on the
// same 90 kHz clock: each value is placed in the 2^33 period that puts it
// closest to the previous one, so it never jumps back at the wrap. One
// unwrapper serves every PID of a Run (and survives the new program spans of
// PMT changes), which keeps the tracks on one timeline.
type unwrapper struct {
	ref  int64
	init bool
}

func (u *unwrapper) unwrap(raw int64) int64 {
	raw &= tsPeriod - 1
	if !u.init {
		u.init = true
		u.ref = raw
		return raw
	}
	m := u.ref % tsPeriod
	if m < 0 {
		m += tsPeriod
	}
	v := u.ref - m + raw
	switch {
	case v-u.ref > tsHalf:
		v -= tsPeriod
	case u.ref-v > tsHalf:
		v += tsPeriod
	}
	u.ref = v
	return v
}
