package tsframes

import (
	"fmt"
)

// announcer turns the tracks and the access units of the program spans into
// Sink calls: it holds frames until their announcement is out, fills in
// H.264 profile-level-ids and H.265 profiles, and re-announces when the
// tracks change.
type announcer struct {
	h     Sink
	stats *counters
	bad   func(error) // non-fatal decode problem
	clock unwrapper

	tracks    []Track
	h264      map[uint16]*h264State
	h265      map[uint16]*h265State
	announced bool

	// While not announced: frames held back, and the first PTS seen.
	held        []Frame
	waitStart   int64
	waitStarted bool

	// err is the Sink error that stopped the run.
	err error

	opus []Frame // scratch for the frames of one Opus PES
}

func newAnnouncer(h Sink, stats *counters, bad func(error)) *announcer {
	return &announcer{h: h, stats: stats, bad: bad, h264: map[uint16]*h264State{}, h265: map[uint16]*h265State{}}
}

// setTracks starts a new PMT's tracks. Anything still held for the previous
// tracks is announced and delivered first. The H.264 state of a PID that
// stays H.264 is kept (SPS, PPS, keyframe seen, profile-level-id), and so is
// that of a PID that stays H.265.
func (a *announcer) setTracks(tracks []Track) error {
	if err := a.flush(); err != nil {
		return err
	}
	prev, prev265 := a.h264, a.h265
	a.h264 = make(map[uint16]*h264State, len(tracks))
	a.h265 = make(map[uint16]*h265State, len(tracks))
	for i := range tracks {
		switch tracks[i].Codec {
		case CodecH264:
			st := prev[tracks[i].PID]
			if st == nil {
				st = &h264State{}
			}
			a.h264[tracks[i].PID] = st
			tracks[i].ProfileLevelID = st.profileLevelID
		case CodecH265:
			st := prev265[tracks[i].PID]
			if st == nil {
				st = &h265State{}
			}
			a.h265[tracks[i].PID] = st
			setH265Profile(&tracks[i], st.profile)
		}
	}
	a.tracks = tracks
	a.announced = false
	a.waitStarted = false
	return a.maybeAnnounce(false)
}

// flush announces the current tracks if that is still pending (at the end of
// the input, or before the next PMT's tracks) and delivers held frames.
func (a *announcer) flush() error {
	if a.tracks == nil || a.announced {
		return nil
	}
	return a.maybeAnnounce(true)
}

// maybeAnnounce announces when every H.264 track has a profile-level-id and
// every H.265 track a profile, or when force is set.
func (a *announcer) maybeAnnounce(force bool) error {
	if !force {
		for _, t := range a.tracks {
			if t.Codec == CodecH264 && t.ProfileLevelID == "" || t.Codec == CodecH265 && t.ProfileID == 0 {
				return nil
			}
		}
	}
	if err := a.announce(); err != nil {
		return err
	}
	held := a.held
	a.held = nil
	for i := range held {
		if err := a.deliver(held[i]); err != nil {
			return err
		}
	}
	return nil
}

func (a *announcer) announce() error {
	a.announced = true
	ann := Announcement{Tracks: make([]Track, len(a.tracks))}
	copy(ann.Tracks, a.tracks)
	if err := a.h.Tracks(ann); err != nil {
		a.err = err
		return errSink
	}
	return nil
}

// tick advances the announcement timeout with a new PTS.
func (a *announcer) tick(pts int64) error {
	if a.announced {
		return nil
	}
	if !a.waitStarted {
		a.waitStarted, a.waitStart = true, pts
		return nil
	}
	if pts-a.waitStart >= AnnounceTimeout {
		return a.maybeAnnounce(true)
	}
	return nil
}

// emit delivers a frame, or holds it while the announcement is pending.
func (a *announcer) emit(f Frame) error {
	if a.announced {
		return a.deliver(f)
	}
	if len(a.held) >= MaxHeldFrames {
		a.bad(fmt.Errorf("%w: dropped a frame of PID %d (PTS %d)", ErrHeldOverflow, a.held[0].PID, a.held[0].PTS))
		a.held[0] = Frame{}
		a.held = a.held[1:]
	}
	a.held = append(a.held, f)
	return nil
}

func (a *announcer) deliver(f Frame) error {
	if err := a.h.Frame(f); err != nil {
		a.err = err
		return errSink
	}
	a.stats.frames.Add(1)
	if f.Kind == KindAudio {
		a.stats.audioPackets.Add(1)
	} else if f.Key {
		a.stats.keyframes.Add(1)
	}
	return nil
}

// onH264 handles one access unit of an H.264 track, as NAL units (raw
// 33-bit timestamps).
func (a *announcer) onH264(pid uint16, rawPTS, rawDTS int64, au [][]byte) error {
	dts := a.clock.unwrap(rawDTS)
	pts := a.clock.unwrap(rawPTS)
	st := a.h264[pid]
	if st == nil {
		return nil
	}
	data, key, plidChanged, err := st.accessUnit(au)
	if plidChanged {
		for i := range a.tracks {
			if a.tracks[i].PID == pid {
				a.tracks[i].ProfileLevelID = st.profileLevelID
			}
		}
	}
	return a.onVideo(pid, CodecH264, pts, dts, data, key, plidChanged, err)
}

// onH265 handles one access unit of an H.265 track, as NAL units (raw
// 33-bit timestamps).
func (a *announcer) onH265(pid uint16, rawPTS, rawDTS int64, au [][]byte) error {
	dts := a.clock.unwrap(rawDTS)
	pts := a.clock.unwrap(rawPTS)
	st := a.h265[pid]
	if st == nil {
		return nil
	}
	data, key, changed, err := st.accessUnit(au)
	if changed {
		for i := range a.tracks {
			if a.tracks[i].PID == pid {
				setH265Profile(&a.tracks[i], st.profile)
			}
		}
	}
	return a.onVideo(pid, CodecH265, pts, dts, data, key, changed, err)
}

// onVideo announces again when the track's parameters changed, then emits
// the access unit data of a video track (unwrapped timestamps), or reports
// err, which dropped it.
func (a *announcer) onVideo(pid uint16, codec Codec, pts, dts int64, data []byte, key, changed bool, err error) error {
	if changed {
		if a.announced {
			if err := a.announce(); err != nil {
				return err
			}
		} else if err := a.maybeAnnounce(false); err != nil {
			return err
		}
	}
	if err2 := a.tick(pts); err2 != nil {
		return err2
	}
	if err != nil {
		a.bad(fmt.Errorf("PID %d, PTS %d: %w", pid, pts, err))
		return nil
	}
	return a.emit(Frame{
		PID:   pid,
		Kind:  KindVideo,
		Codec: codec,
		PTS:   pts,
		DTS:   dts,
		Key:   key,
		Data:  data,
	})
}

// setH265Profile records p in the H.265 track t.
func setH265Profile(t *Track, p h265Profile) {
	t.ProfileID, t.TierFlag, t.LevelID = p.profileID, p.tierFlag, p.levelID
}

// onOpus handles the Opus packets of one PES (raw 33-bit PTS).
func (a *announcer) onOpus(pid uint16, rawPTS int64, packets [][]byte) error {
	pts := a.clock.unwrap(rawPTS)
	if err := a.tick(pts); err != nil {
		return err
	}
	a.opus = appendOpusFrames(a.opus[:0], pid, pts, packets, a.bad)
	defer clear(a.opus) // the receivers own the Data
	for _, f := range a.opus {
		if err := a.emit(f); err != nil {
			return err
		}
	}
	return nil
}

// onSourceAudio handles one PES of an audio track that WebRTC cannot carry
// (raw 33-bit PTS): its payload, copied, is one frame.
func (a *announcer) onSourceAudio(pid uint16, codec Codec, rawPTS int64, data []byte) error {
	pts := a.clock.unwrap(rawPTS)
	if err := a.tick(pts); err != nil {
		return err
	}
	return a.emit(Frame{
		PID:   pid,
		Kind:  KindAudio,
		Codec: codec,
		PTS:   pts,
		DTS:   pts,
		Data:  append([]byte(nil), data...),
	})
}
