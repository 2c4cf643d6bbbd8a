package whip

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of record in a packetQueue: the first byte of each.
const (
	recVideo   = 'v' // an RTP packet of the video track
	recAudio   = 'a' // an RTP packet of the audio track
	recVideoSR = 'V' // a sender report of the video track: NTP (8 bytes), RTP (4)
	recAudioSR = 'A' // a sender report of the audio track
	recTick    = 't' // nothing arrived for tickInterval
)

// Bounds of a packetQueue.
const (
	queueLen     = 1024 // records waiting: about 3 s of a 2 Mb/s publisher
	maxRecord    = 1 + 1500
	tickInterval = 50 * time.Millisecond
)

// packetQueue is the Body of a WHIP publication: what the PeerConnection's
// readers receive (RTP packets and sender reports, one record per Read),
// in arrival order. A Read waits for the next record at most tickInterval
// (then it returns a tick record, so that the jitter buffer can give up a
// lost packet while nothing arrives), fails after Idle without a record,
// returns io.EOF once the publisher ended (DELETE, connection closed) and
// fails at once after interrupt. The readers push without blocking: when
// the queue is full, the record is dropped (counted), and the loss is
// seen, and repaired or given up, like one on the network.
type packetQueue struct {
	ch   chan []byte
	idle time.Duration

	endOnce, stopOnce, readOnce sync.Once
	ended, stopped, read        chan struct{}

	timer   *time.Timer // owned by Read
	last    time.Time   // when the last record was read
	dropped atomic.Uint64
}

func newPacketQueue(idle time.Duration) *packetQueue {
	return &packetQueue{
		ch: make(chan []byte, queueLen), idle: idle,
		ended: make(chan struct{}), stopped: make(chan struct{}), read: make(chan struct{}),
	}
}

// push queues rec (whose first byte is its kind) unless the queue is full.
func (q *packetQueue) push(rec []byte) {
	select {
	case q.ch <- rec:
	default:
		q.dropped.Add(1)
	}
}

// pushReport queues a sender report of kind recVideoSR or recAudioSR.
func (q *packetQueue) pushReport(kind byte, ntp uint64, rtpTime uint32) {
	rec := make([]byte, 13)
	rec[0] = kind
	binary.BigEndian.PutUint64(rec[1:], ntp)
	binary.BigEndian.PutUint32(rec[9:], rtpTime)
	q.push(rec)
}

// end makes Read return io.EOF once the records queued are read.
func (q *packetQueue) end() { q.endOnce.Do(func() { close(q.ended) }) }

// interrupt makes Read fail at once, now and later.
func (q *packetQueue) interrupt() { q.stopOnce.Do(func() { close(q.stopped) }) }

// reading is closed at the first Read: the publication runs.
func (q *packetQueue) reading() <-chan struct{} { return q.read }

// Read copies the next record into p (io.ErrShortBuffer when p is smaller).
func (q *packetQueue) Read(p []byte) (int, error) {
	q.readOnce.Do(func() {
		close(q.read)
		q.last = time.Now()
		q.timer = time.NewTimer(tickInterval)
	})
	select {
	case <-q.stopped:
		return 0, errInterrupted
	default:
	}
	wait := tickInterval
	if q.idle > 0 {
		left := q.idle - time.Since(q.last)
		if left <= 0 {
			return 0, errIdle
		}
		wait = min(wait, left)
	}
	q.timer.Reset(wait)
	defer q.timer.Stop()
	var rec []byte
	select {
	case rec = <-q.ch:
	case <-q.stopped:
		return 0, errInterrupted
	case <-q.ended:
		select {
		case rec = <-q.ch:
		default:
			return 0, io.EOF
		}
	case <-q.timer.C:
		if q.idle > 0 && time.Since(q.last) >= q.idle {
			return 0, errIdle
		}
		if len(p) == 0 {
			return 0, io.ErrShortBuffer
		}
		p[0] = recTick
		return 1, nil
	}
	q.last = time.Now()
	if len(p) < len(rec) {
		return 0, io.ErrShortBuffer
	}
	return copy(p, rec), nil
}
