// Package whepbench measures WHEP servers, whepcast's or any other, from the
// outside with real pion viewers: how many viewers a server carries and at
// what cost (Load), how much latency it adds to live frames (Latency), what
// an MPEG-TS ingest costs the broker (Ingest), and whether sessions opened
// and closed by the thousand leave anything behind (Churn), with each
// viewer's time to its first complete keyframe and the CPU and RSS of the
// server processes read from /proc. cmd/whep-bench is its command line.
//
// Viewers send no RTCP and decode nothing, so that they cost the load
// generator little. The package is Linux-only in practice; its functions do
// not print, and reports have WriteText for a table and marshal to JSON.
// What is measured and how: docs/benchmarks.md, Scenarios and method.
package whepbench

import "time"

// Defaults and limits.
const (
	// DropGap is the silence after which a viewer that received RTP counts
	// as dropped.
	DropGap = 2 * time.Second
	// DefaultConnectTimeout bounds a viewer's setup: gathering, POST,
	// answer, ICE and DTLS until the PeerConnection is connected.
	DefaultConnectTimeout = 20 * time.Second
	// DefaultSettle is the pause between the last viewer connecting (or the
	// last stream starting) and the steady window.
	DefaultSettle = 2 * time.Second
	// DefaultBaseline is how long the server processes are measured before
	// the load, to subtract what they cost without it.
	DefaultBaseline = 2 * time.Second
	// DefaultRate is the default number of viewers opened per second.
	DefaultRate = 50
	// MaxViewers bounds LoadConfig.Viewers and LatencyConfig.Viewers.
	MaxViewers = 100000
	// MaxStreams bounds IngestConfig.Streams.
	MaxStreams = 10000
	// MaxFileSize bounds the MPEG-TS files read.
	MaxFileSize = 1 << 30

	// rtpBufferSize is the per-track read buffer: pion's receive MTU is
	// 1460, so 1500 holds any packet.
	rtpBufferSize = 1500
	// clockTick is the resolution of the coarse clock read per packet.
	clockTick = 10 * time.Millisecond
	// closeParallel bounds the viewers closed (DELETE) at the same time.
	closeParallel = 32
	// httpTimeout bounds a DELETE and the end of a push.
	httpTimeout = 10 * time.Second
	// writeTimeout bounds one write of a push.
	writeTimeout = 5 * time.Second
	// drainAfterPush is how long the latency scenario waits after the last
	// burst for the last frames to arrive.
	drainAfterPush = time.Second
)
