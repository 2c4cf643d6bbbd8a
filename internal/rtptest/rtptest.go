// Package rtptest checks what an RTP receiver got, for tests: every
// sequence number once and in order, timestamps stepping forward, complete
// video access units; and reads the kernel's count of datagrams a local UDP
// socket dropped.
package rtptest

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pion/rtp"
)

// Check is what Track found in one track.
type Check struct {
	Packets    int
	Lost       int // sequence numbers never received
	Late       int // received after a newer one
	Duplicated int
	BadTS      int // timestamp steps out of (0, maxStep]
	Incomplete int // access units without their marker (video)
	Markers    int // marker bits inside an access unit (video)
}

// Clean reports whether the track had no fault.
func (c Check) Clean() bool {
	return c.Lost == 0 && c.Late == 0 && c.Duplicated == 0 && c.BadTS == 0 && c.Incomplete == 0 && c.Markers == 0
}

func (c Check) String() string {
	return fmt.Sprintf("%d packets: %d lost, %d late, %d duplicated, %d bad timestamp steps, %d incomplete AUs, %d stray markers",
		c.Packets, c.Lost, c.Late, c.Duplicated, c.BadTS, c.Incomplete, c.Markers)
}

// Track checks the headers of one track in their order of arrival: every
// sequence number from the first on exactly once and in order, timestamps
// stepping forward by at most maxStep between access units, and (video)
// the marker bit on the last packet of each access unit and on no other.
// The last access unit may be cut by the end of the recording.
func Track(hdrs []rtp.Header, video bool, maxStep uint32) Check {
	c := Check{Packets: len(hdrs)}
	if len(hdrs) == 0 {
		return c
	}
	missing := map[int64]bool{}
	highest := int64(hdrs[0].SequenceNumber) - 1 // extended
	var inOrder []rtp.Header
	for _, h := range hdrs {
		// Extend the sequence number around the highest seen.
		s := highest + int64(int16(h.SequenceNumber-uint16(highest)))
		switch {
		case s == highest+1:
			highest = s
			inOrder = append(inOrder, h)
		case s > highest+1:
			for m := highest + 1; m < s; m++ {
				missing[m] = true
			}
			highest = s
			inOrder = append(inOrder, h)
		case missing[s]:
			delete(missing, s)
			c.Late++
		default:
			c.Duplicated++
		}
	}
	c.Lost = len(missing)
	for i := 1; i < len(inOrder); i++ {
		prev, cur := inOrder[i-1], inOrder[i]
		d := cur.Timestamp - prev.Timestamp
		switch {
		case video && d == 0:
			if prev.Marker {
				c.Markers++
			}
		case d == 0 || d > maxStep:
			c.BadTS++
		case video && !prev.Marker:
			c.Incomplete++
		}
	}
	return c
}

// SocketDrops returns the datagrams the kernel dropped for the local UDP
// socket on 127.0.0.1:port because its receive buffer was full (Linux
// /proc/net/udp); false where that is not known.
func SocketDrops(port int) (uint64, bool) {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, false
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 13 || f[1] != local {
			continue
		}
		n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		return n, err == nil
	}
	return 0, false
}
