//go:build external

package tests

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/whepcast/whepcast/internal/rtptest"
)

// nackFloodFor is how long the hostile viewer of TestFaultNACKFlood NACKs.
const nackFloodFor = 4 * time.Second

// TestFaultNACKFlood plays the demo stream (in process, a real relay and
// WHEP server) to two pion viewers; one of them NACKs every video packet it
// has received so far (up to 4,000) every 2 ms for 4 s, over SRTCP as a
// browser would. The node resends at most about 1,000 packets per second to
// it (relay's resend bounds) and suppresses the rest, and the other viewer
// loses nothing and gets its video without a pause beyond 250 ms.
func TestFaultNACKFlood(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	normal, hostile := newRTPViewer(t), newRTPViewer(t)
	whepPlay(t, ctx, stack.url, "demo", normal.whepClient)
	whepPlay(t, ctx, stack.url, "demo", hostile.whepClient)
	hostile.waitPacketsAfter(t, ctx, mimeH264, time.Time{}, 100)

	cpu0, began := processCPU(), time.Now()
	rounds := 0
	tick := time.NewTicker(2 * time.Millisecond)
	for time.Since(began) < nackFloodFor {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		video := hostile.packets(mimeH264)
		first, last := video[0].seq, video[len(video)-1].seq
		if last-first > 4000 {
			first = last - 4000
		}
		nack := &rtcp.TransportLayerNack{MediaSSRC: video[0].ssrc}
		for s := first; ; s += 17 {
			nack.Nacks = append(nack.Nacks, rtcp.NackPair{PacketID: s, LostPackets: 0xffff})
			if last-s <= 16 {
				break
			}
		}
		if err := hostile.pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
			t.Fatalf("writing the NACK: %v", err)
		}
		rounds++
	}
	tick.Stop()
	flood := time.Since(began)
	cpu := processCPU() - cpu0
	end := time.Now()

	// Let the last resends and packets arrive, then read the node's view.
	normal.waitPacketsAfter(t, ctx, mimeH264, end, 30)
	var nackd, resent, suppressed uint64
	for _, s := range stack.whep.Sessions() {
		if v := s.Stats.Video; v.NACKs > nackd {
			nackd, resent, suppressed = v.NACKs, v.Retransmits, v.Suppressed
		}
	}
	t.Logf("%d NACKs in %v (%d packets NACKed): %d resent, %d suppressed; the process used %v of CPU meanwhile",
		rounds, flood.Round(time.Millisecond), nackd, resent, suppressed, cpu.Round(time.Millisecond))
	if nackd < uint64(rounds) {
		t.Fatalf("the node counted %d NACKed packets for %d NACKs", nackd, rounds)
	}
	if limit := uint64(flood/time.Second+2) * 1024; resent > limit {
		t.Errorf("%d packets resent to the flooding viewer in %v, want at most %d", resent, flood, limit)
	}
	if suppressed == 0 {
		t.Error("nothing suppressed")
	}

	// The other viewer: every packet once and in order, no long pause.
	for _, mime := range []string{mimeH264, mimeOpus} {
		pkts := normal.packets(mime)
		c := rtptest.Track(headers(pkts), mime == mimeH264, 1<<31)
		if c.Lost != 0 || c.Late != 0 || c.Duplicated != 0 {
			t.Errorf("%s of the other viewer: %v", mime, c)
		}
		var pause time.Duration
		for i := 1; i < len(pkts); i++ {
			if pkts[i].at.After(began) && pkts[i].at.Before(end) {
				pause = max(pause, pkts[i].at.Sub(pkts[i-1].at))
			}
		}
		t.Logf("%s of the other viewer: %v; longest pause during the flood %v", mime, c, pause.Round(time.Millisecond))
		if pause > 250*time.Millisecond {
			t.Errorf("%s of the other viewer paused %v during the flood, want at most 250 ms", mime, pause)
		}
	}
}

// processCPU returns the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
