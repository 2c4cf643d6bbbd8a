// Package whepbench measures WHEP servers, whepcast's or any other: how many
// viewers a server carries and at what cost, how fast a viewer sees its first
// picture, how much latency the server adds to live frames, and what an
// MPEG-TS ingest costs the broker, and whether sessions opened and closed by
// the thousand leave anything behind. cmd/whep-bench is its command line.
//
// # Viewers
//
// Every viewer is a real pion PeerConnection that receives one video and one
// audio track (recvonly). It gathers its ICE candidates first (UDP over IPv4
// on 127.0.0.1 only, no mDNS), POSTs the whole offer (Content-Type
// application/sdp), expects 201 with the answer and a Location, and DELETEs
// that resource when it closes. It registers H.264 (packetization-mode 1)
// and Opus, and no interceptors: it sends no RTCP, no NACK and no receiver
// reports, so that a viewer costs the load generator as little as possible.
// RTP is read into one reusable buffer per track and never decoded; only the
// H.264 payload headers (single NAL, STAP-A, FU-A) are looked at, to find
// the first complete IDR access unit: SPS, PPS and IDR seen, every packet of
// the access unit from its first to its marker packet received without a
// sequence gap and every FU-A fragment run complete.
//
// Per viewer the package counts RTP packets and bytes and measures the time
// to first keyframe (TTFF): from the moment the POST is sent to the arrival
// of the marker packet of the first complete IDR access unit. A viewer is
// dropped when, once it has received RTP, it goes more than DropGap without
// a packet (also at the end of the run).
//
// # Server cost
//
// The CPU time (utime+stime of /proc/PID/stat) and resident memory (VmRSS of
// /proc/PID/status) of the server processes named by PID are read over a
// baseline window before the load (Baseline, default DefaultBaseline), and at
// the start and the end of a steady window that begins Settle after every
// viewer (or stream) has connected or failed. CPU per viewer is the CPU time
// used in the window divided by the window, minus the baseline's cores (what
// the server spends without the load: idle, or ingesting the stream the
// viewers play), divided by the connected viewers; RSS per viewer is the RSS
// growth from before the load to the end of the window, divided by the
// connected viewers. The load generator reads its own figures the same way,
// to show whether it kept up.
//
// # Scenarios
//
//   - Load: N viewers opened at a given rate against one or more WHEP URLs
//     (round-robin), held for a steady window, then closed.
//   - Latency: one MPEG-TS file pushed in real time (see Schedule) into an
//     ingest URL, one measured viewer plus load viewers. For every video
//     access unit: the time from the write of its last TS packet by the
//     pusher to the arrival of its marker RTP packet at the measured viewer,
//     and the time from the write of the next PES start of the video PID
//     (the earliest moment a demuxer can know that the access unit is
//     complete, when the PES length is not given) to that same arrival.
//     Frames are matched by RTP timestamp: the RTP timestamp delta equals
//     the PTS delta on the 90 kHz clock, anchored on each keyframe received
//     in the steady window (the file keyframe last sent before its arrival).
//   - Ingest: M real-time pushes of a file (streams PREFIX0..PREFIX(M-1)),
//     each restarted with a new PUT when the file ends, and the broker's CPU
//     and RSS per stream.
//   - Churn: sessions opened and closed back to back on a number of
//     workers, each played up to its first keyframe, then DELETEd: failures
//     by reason, TTFF, sessions per second, server CPU per session and RSS
//     growth (what the churn fault test checks the node against).
//
// Pushes are HTTP/1.1 PUTs with a chunked body written straight to a TCP
// connection, one chunk per burst of the Schedule, so that the time a burst
// leaves the pusher is the time its write returned.
//
// The package reads /proc and is Linux-only in practice. Its functions do
// not print; reports have WriteText for a table and marshal to JSON.
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
