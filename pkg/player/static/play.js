// whepcast player: a small standard WHEP client (draft-ietf-wish-whep).
//
// POST an SDP offer (recvonly video + audio) to the WHEP URL, expect 201 with
// the answer and a Location, DELETE the Location when leaving. Reconnects with
// exponential backoff, honouring Retry-After. Standard APIs only, so that it
// runs in Chrome, Firefox and Safari.
//
// When the 201 announces the server-sent events extension (Link rel
// "urn:ietf:params:whep:ext:core:server-sent-events"), the player POSTs the
// events it wants to that URL and reads the event stream at the Location it
// gets (EventSource). viewercount is shown in the overlay; reconnect (sent by
// a draining node) makes it POST a new offer at once, to the event's url or
// the same WHEP URL, through the load balancer: the old session plays until
// the new one does, then it is DELETEd (at once if the new POST fails).
//
// For tests and embedding: window.whepcast = {state, ttffMs, timing, stats(),
// refreshStats(), events, viewers, streamActive, reconnects} and
// document.body.dataset.state. events is the state of the event stream:
// 'none', 'open' or 'closed'; viewers and streamActive are the latest
// viewercount and active/inactive events (null before any); reconnects counts
// the reconnect events followed. timing holds the
// performance.now() marks (ms since navigation start) of the current attempt:
// start, post (the WHEP POST is sent), response, connected and firstFrame
// (presentation of the first video frame, from requestVideoFrameCallback),
// each null until reached.
(function () {
  'use strict';

  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var GATHER_WAIT_MS = 1500; // the server returns all its candidates: ours are optional
  var MEDIA_TIMEOUT_MS = 20000; // answer received but nothing plays: reconnect
  var DISCONNECTED_GRACE_MS = 5000; // ICE "disconnected" may recover by itself
  var STALL_TIMEOUT_MS = 10000; // playing but no bytes arrive: reconnect
  var STATS_EVERY_MS = 1000;
  var TERMINAL = { 400: true, 401: true, 403: true, 405: true, 415: true, 422: true };
  var SSE_REL = 'urn:ietf:params:whep:ext:core:server-sent-events';
  var SSE_EVENTS = ['active', 'inactive', 'reconnect', 'viewercount', 'position'];

  var body = document.body;
  var video = document.getElementById('video');
  var unmute = document.getElementById('unmute');
  var streamName = body.dataset.stream || '';
  var params = new URLSearchParams(window.location.search);
  var whepURL = new URL(params.get('whep') || '../whep/' + encodeURIComponent(streamName), window.location.href).href;
  var token = params.get('token');
  // ?start= (-30s, an RFC 3339 time) starts in the past, on this server.
  var ownServer = !params.get('whep');
  var startParam = ownServer ? params.get('start') : null;

  var session = null; // the current attempt
  var previous = null; // the session being replaced after a reconnect event
  var backoffMs = BACKOFF_MIN_MS;
  var retryTimer = 0;
  var leaving = false;
  var latest = emptyStats();
  var prev = null; // the previous raw sample, for rates

  var api = {
    state: 'connecting',
    ttffMs: null,
    timing: null,
    attempts: 0,
    message: '',
    whepURL: whepURL,
    events: 'none',
    viewers: null,
    streamActive: null,
    reconnects: 0,
    // stats returns the latest numbers (refreshed every second).
    stats: function () { return latest; },
    // refreshStats samples getStats now and resolves to the new numbers.
    refreshStats: function () { return sample(); }
  };
  window.whepcast = api;

  function $(id) { return document.getElementById(id); }

  function setText(id, text) {
    var e = $(id);
    if (e) e.textContent = text;
  }

  function setState(state, message) {
    api.state = state;
    api.message = message || '';
    body.dataset.state = state;
    setText('o-state', state);
    setText('o-message', api.message);
    latest.state = state;
  }

  function authHeaders(extra) {
    var h = extra || {};
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // parseRetryAfter returns the wait in ms that a Retry-After value asks
  // for (delta-seconds or an HTTP date), or null.
  function parseRetryAfter(v) {
    if (!v) return null;
    v = v.trim();
    if (/^\d+$/.test(v)) return parseInt(v, 10) * 1000;
    var t = Date.parse(v);
    if (isNaN(t)) return null;
    return Math.max(0, t - Date.now());
  }

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function check() { if (pc.iceGatheringState === 'complete') done(); }
      function cand(ev) { if (!ev.candidate) done(); }
      function done() {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        pc.removeEventListener('icecandidate', cand);
        resolve();
      }
      pc.addEventListener('icegatheringstatechange', check);
      pc.addEventListener('icecandidate', cand);
    });
  }

  // postURL is the WHEP URL a new session POSTs to: a player that was
  // playing behind live resumes where it was (the last position's store
  // time), one that has played nothing yet starts at ?start=.
  function postURL() {
    var p = api.position;
    var start = p ? (p.live ? null : p.wall_time) : startParam;
    if (!start || !ownServer) return whepURL;
    var u = new URL(whepURL);
    u.searchParams.set('start', start);
    return u.href;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (leaving) return;
    var s = {
      pc: null,
      location: null,
      t0: performance.now(),
      abort: window.AbortController ? new AbortController() : null,
      media: new MediaStream(),
      playing: false,
      firstFrame: false,
      closed: false,
      events: null, // EventSource
      eventsURL: null,
      moving: false, // told to reconnect
      timers: {},
      timing: { start: null, post: null, response: null, connected: null, firstFrame: null, firstFrameMeta: null }
    };
    s.timing.start = s.t0;
    session = s;
    api.attempts++;
    api.ttffMs = null;
    api.timing = s.timing;
    api.events = 'none';
    latest = emptyStats();
    prev = null;
    setState('connecting', api.attempts > 1 ? 'attempt ' + api.attempts : '');
    run(s).catch(function (err) {
      retry(s, 'error: ' + (err && err.message ? err.message : String(err)), null);
    });
  }

  async function run(s) {
    var pc = new RTCPeerConnection();
    s.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = function (ev) {
      if (s !== session) return;
      s.media.addTrack(ev.track);
      if (video.srcObject !== s.media) video.srcObject = s.media;
      if (ev.track.kind === 'video') watchFirstFrame(s);
      startPlayback();
    };
    pc.onconnectionstatechange = function () { onConnectionState(s, pc.connectionState); };
    pc.oniceconnectionstatechange = function () {
      // Browsers without connectionState report failure here only.
      if (pc.connectionState === undefined) onConnectionState(s, pc.iceConnectionState);
    };

    var offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitGathering(pc, GATHER_WAIT_MS);
    if (s !== session) return;

    s.timing.post = performance.now();
    var res = await fetch(postURL(), {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/sdp', Accept: 'application/sdp' }),
      body: pc.localDescription.sdp,
      cache: 'no-store',
      signal: s.abort ? s.abort.signal : undefined
    });
    s.timing.response = performance.now();
    var loc = res.headers.get('Location');
    if (res.status === 201 && loc) s.location = new URL(loc, whepURL).href;
    if (s !== session || s.closed) { // left or superseded while the POST was in flight
      if (s.location) remove(s.location, leaving);
      s.location = null;
      return;
    }
    if (res.status !== 201) {
      var text = '';
      try { text = (await res.text()).trim().slice(0, 200); } catch (e) { /* ignore */ }
      var why = 'WHEP ' + res.status + (text ? ': ' + text : '');
      if (TERMINAL[res.status]) fail(s, why);
      else retry(s, why, parseRetryAfter(res.headers.get('Retry-After')));
      return;
    }
    openEvents(s, res.headers.get('Link'));
    var answer = await res.text();
    if (s !== session || s.closed) {
      if (s.location) remove(s.location, leaving);
      s.location = null;
      return;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    s.timers.media = setTimeout(function () {
      if (!s.playing) retry(s, 'no media within ' + MEDIA_TIMEOUT_MS / 1000 + ' s', null);
    }, MEDIA_TIMEOUT_MS);
  }

  function onConnectionState(s, st) {
    if (s !== session) return;
    if (st === 'connected' && s.timing.connected === null) s.timing.connected = performance.now();
    clearTimeout(s.timers.disconnected);
    if (st === 'failed') {
      retry(s, 'connection failed', null);
    } else if (st === 'disconnected') {
      s.timers.disconnected = setTimeout(function () {
        retry(s, 'connection lost', null);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  function startPlayback() {
    var p = video.play();
    if (p && p.catch) {
      p.catch(function () {
        // Autoplay refused even muted: the button starts playback.
        unmute.textContent = 'Play';
      });
    }
  }

  function watchFirstFrame(s) {
    if (typeof video.requestVideoFrameCallback === 'function') {
      video.requestVideoFrameCallback(function (now, meta) {
        if (s.timing.firstFrame === null) {
          var m = meta || {};
          s.timing.firstFrame = typeof m.presentationTime === 'number' ? m.presentationTime : now;
          s.timing.firstFrameMeta = {
            presentationTime: m.presentationTime, expectedDisplayTime: m.expectedDisplayTime,
            receiveTime: m.receiveTime, processingDuration: m.processingDuration,
            rtpTimestamp: m.rtpTimestamp, width: m.width, height: m.height
          };
        }
        firstFrame(s);
      });
    }
  }

  function firstFrame(s) {
    if (s !== session || s.firstFrame) return;
    s.firstFrame = true;
    api.ttffMs = Math.round(performance.now() - s.t0);
    latest.ttffMs = api.ttffMs;
    setText('o-ttff', api.ttffMs + ' ms');
    markPlaying(s);
  }

  function markPlaying(s) {
    if (s !== session || s.closed) return;
    s.playing = true;
    dropPrevious();
    clearTimeout(s.timers.media);
    backoffMs = BACKOFF_MIN_MS;
    if (api.state !== 'playing') setState('playing', '');
  }

  // Fallbacks for browsers without requestVideoFrameCallback, and audio-only
  // streams.
  video.addEventListener('loadeddata', function () {
    if (session && video.videoWidth > 0) firstFrame(session);
  });
  video.addEventListener('resize', function () {
    if (session && video.videoWidth > 0) firstFrame(session);
  });
  video.addEventListener('playing', function () {
    if (session) markPlaying(session);
  });

  function teardown(s, keepalive) {
    if (s.closed) return;
    s.closed = true;
    Object.keys(s.timers).forEach(function (k) { clearTimeout(s.timers[k]); });
    if (s.abort) s.abort.abort();
    if (s.events) {
      s.events.close();
      s.events = null;
      if (s === session) api.events = 'closed';
    }
    if (s.pc) {
      s.pc.ontrack = null;
      s.pc.onconnectionstatechange = null;
      s.pc.oniceconnectionstatechange = null;
      s.pc.close();
    }
    if (s.location) {
      remove(s.location, keepalive);
      s.location = null;
    }
    if (video.srcObject === s.media) video.srcObject = null;
  }

  function remove(location, keepalive) {
    try {
      fetch(location, { method: 'DELETE', headers: authHeaders(), keepalive: !!keepalive, cache: 'no-store' })
        .catch(function () { /* the session times out on the server */ });
    } catch (e) { /* ignore */ }
  }

  function retry(s, reason, retryAfterMs) {
    if (s !== session || s.closed || leaving) return;
    dropPrevious();
    teardown(s, false);
    var delay = backoffMs * (0.8 + 0.4 * Math.random());
    if (retryAfterMs !== null && retryAfterMs !== undefined) delay = Math.max(retryAfterMs, 100);
    backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
    api.retryInMs = Math.round(delay);
    setState('retrying', reason + ' — retrying in ' + (delay / 1000).toFixed(1) + ' s');
    retryTimer = setTimeout(connect, delay);
  }

  function fail(s, reason) {
    if (s !== session) return;
    dropPrevious();
    teardown(s, false);
    setState('failed', reason);
  }

  // Server-sent events (the WHEP extension).

  // eventsLink returns the URL of the Link whose rel is the extension's, or
  // null.
  function eventsLink(header) {
    if (!header) return null;
    var links = header.split(/,\s*(?=<)/);
    for (var i = 0; i < links.length; i++) {
      var m = /^\s*<([^>]*)>(.*)$/.exec(links[i]);
      if (!m) continue;
      var params = m[2].split(';');
      for (var j = 0; j < params.length; j++) {
        var eq = params[j].indexOf('=');
        if (eq < 0 || params[j].slice(0, eq).trim().toLowerCase() !== 'rel') continue;
        var rels = params[j].slice(eq + 1).trim().replace(/^"|"$/g, '').split(/\s+/);
        if (rels.indexOf(SSE_REL) >= 0) return m[1];
      }
    }
    return null;
  }

  function parseData(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }

  // openEvents opens the event stream of session s when the 201's Link
  // header announces the extension: POST the events wanted to the entry
  // point, then read the Location it answers (a server that only serves GET
  // on the entry point answers 405: read the entry point itself).
  async function openEvents(s, linkHeader) {
    var link = eventsLink(linkHeader);
    if (!link || !window.EventSource) return;
    var entry;
    try { entry = new URL(link, whepURL).href; } catch (e) { return; }
    var url = null;
    try {
      var res = await fetch(entry, {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json' }),
        body: JSON.stringify(SSE_EVENTS),
        cache: 'no-store',
        signal: s.abort ? s.abort.signal : undefined
      });
      var loc = res.headers.get('Location');
      if (res.status === 201 && loc) {
        url = new URL(loc, entry).href;
      } else if (res.status === 405) {
        url = entry + (token ? (entry.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token) : '');
      }
    } catch (e) { /* no events: the session plays on without them */ }
    if (!url || s.closed || (s !== session && s !== previous)) return;
    var es = new EventSource(url);
    s.events = es;
    s.eventsURL = url;
    es.onopen = function () { if (s === session) api.events = 'open'; };
    es.onerror = function () {
      // EventSource retries by itself; it gives up on an error status (the
      // stream or its session is gone).
      if (es.readyState === 2 && s.events === es) {
        s.events = null;
        if (s === session) api.events = 'closed';
      }
    };
    es.addEventListener('viewercount', function (ev) {
      var d = parseData(ev);
      if (s !== session || !d || typeof d.viewercount !== 'number') return;
      api.viewers = d.viewercount;
      setViewers(d.viewercount);
    });
    es.addEventListener('active', function () { if (s === session) api.streamActive = true; });
    es.addEventListener('inactive', function () { if (s === session) api.streamActive = false; });
    es.addEventListener('reconnect', function (ev) { onReconnect(s, parseData(ev)); });
    es.addEventListener('position', function (ev) {
      var d = parseData(ev);
      if (s !== session || !d || typeof d.wall_time !== 'string') return;
      api.position = d;
      drawTimeline();
    });
  }

  // onReconnect follows a reconnect event of session s: a new session is
  // POSTed at once (to the event's url, else the same WHEP URL) while s
  // plays on; s is DELETEd when the new one plays, or when it fails.
  function onReconnect(s, data) {
    if (s !== session || s.closed || s.moving || leaving) return;
    s.moving = true;
    api.reconnects++;
    if (data && typeof data.url === 'string' && data.url) {
      try {
        whepURL = new URL(data.url, s.eventsURL || whepURL).href;
        api.whepURL = whepURL;
      } catch (e) { /* keep the WHEP URL */ }
    }
    dropPrevious();
    previous = s;
    backoffMs = BACKOFF_MIN_MS;
    connect();
    setState('connecting', 'the server asked to reconnect: moving');
  }

  // dropPrevious ends the session being replaced, if any.
  function dropPrevious() {
    var p = previous;
    previous = null;
    if (p && p !== session) teardown(p, leaving);
  }

  // setViewers shows n in the overlay's viewers line, made on first use.
  function setViewers(n) {
    var e = $('o-viewers');
    if (!e) {
      var msg = $('o-message');
      if (!msg || !msg.parentNode) return;
      var row = document.createElement('div');
      row.title = 'sessions of this stream on the node serving this one';
      var k = document.createElement('span');
      k.className = 'k';
      k.textContent = 'viewers';
      e = document.createElement('span');
      e.id = 'o-viewers';
      row.appendChild(k);
      row.appendChild(document.createTextNode(' '));
      row.appendChild(e);
      msg.parentNode.insertBefore(row, msg);
    }
    e.textContent = String(n);
  }

  // Statistics.

  function emptyStats() {
    return {
      state: api ? api.state : 'connecting',
      ttffMs: null,
      at: 0,
      bitrateKbps: null,
      lossPercent: null,
      video: null,
      audio: null
    };
  }

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }

  async function sample() {
    var s = session;
    if (!s || !s.pc || s.closed) return latest;
    var report;
    try { report = await s.pc.getStats(); } catch (e) { return latest; }
    if (s !== session) return latest;
    var v = null;
    var a = null;
    report.forEach(function (r) {
      if (r.type !== 'inbound-rtp') return;
      var kind = r.kind || r.mediaType;
      if (kind === 'video' && !v) v = r;
      if (kind === 'audio' && !a) a = r;
    });
    var now = performance.now();
    var cur = {
      at: now,
      bytes: num(v && v.bytesReceived) + num(a && a.bytesReceived),
      lost: num(v && v.packetsLost) + num(a && a.packetsLost),
      received: num(v && v.packetsReceived) + num(a && a.packetsReceived),
      framesDecoded: num(v && v.framesDecoded),
      jbDelay: num(v && v.jitterBufferDelay),
      jbEmitted: num(v && v.jitterBufferEmittedCount),
      aJbDelay: num(a && a.jitterBufferDelay),
      aJbEmitted: num(a && a.jitterBufferEmittedCount)
    };
    var out = emptyStats();
    out.state = api.state;
    out.ttffMs = api.ttffMs;
    out.at = Date.now();
    var dt = prev ? (cur.at - prev.at) / 1000 : 0;
    if (dt > 0) {
      out.bitrateKbps = Math.round((cur.bytes - prev.bytes) * 8 / dt / 1000);
      var dl = cur.lost - prev.lost;
      var dr = cur.received - prev.received;
      out.lossPercent = dl + dr > 0 ? Math.max(0, 100 * dl / (dl + dr)) : 0;
    }
    if (v) {
      var fps = v.framesPerSecond;
      if (typeof fps !== 'number' && dt > 0) fps = (cur.framesDecoded - prev.framesDecoded) / dt;
      out.video = {
        width: num(v.frameWidth) || video.videoWidth,
        height: num(v.frameHeight) || video.videoHeight,
        fps: typeof fps === 'number' ? Math.round(fps * 10) / 10 : null,
        framesDecoded: cur.framesDecoded,
        framesReceived: num(v.framesReceived),
        framesDropped: num(v.framesDropped),
        keyFramesDecoded: num(v.keyFramesDecoded),
        packetsReceived: num(v.packetsReceived),
        packetsLost: num(v.packetsLost),
        bytesReceived: num(v.bytesReceived),
        jitterBufferDelay: cur.jbDelay,
        jitterBufferEmittedCount: cur.jbEmitted,
        jitterBufferTargetDelay: num(v.jitterBufferTargetDelay),
        jitterBufferMs: jbMs(cur.jbDelay, cur.jbEmitted, prev && prev.jbDelay, prev && prev.jbEmitted),
        jitter: num(v.jitter),
        freezeCount: num(v.freezeCount),
        totalFreezesDuration: num(v.totalFreezesDuration),
        pauseCount: num(v.pauseCount),
        codec: codecOf(report, v)
      };
    }
    if (a) {
      out.audio = {
        packetsReceived: num(a.packetsReceived),
        packetsLost: num(a.packetsLost),
        bytesReceived: num(a.bytesReceived),
        totalAudioEnergy: num(a.totalAudioEnergy),
        totalSamplesDuration: num(a.totalSamplesDuration),
        totalSamplesReceived: num(a.totalSamplesReceived),
        audioLevel: num(a.audioLevel),
        concealedSamples: num(a.concealedSamples),
        jitter: num(a.jitter),
        jitterBufferDelay: cur.aJbDelay,
        jitterBufferEmittedCount: cur.aJbEmitted,
        jitterBufferMs: jbMs(cur.aJbDelay, cur.aJbEmitted, prev && prev.aJbDelay, prev && prev.aJbEmitted),
        codec: codecOf(report, a)
      };
    }
    // Fallback first-frame detection, and stall detection.
    if (cur.framesDecoded > 0 && !s.firstFrame) firstFrame(s);
    if (prev && cur.bytes === prev.bytes && s.playing) {
      if (!s.stalledSince) s.stalledSince = now;
      if (now - s.stalledSince >= STALL_TIMEOUT_MS) {
        retry(s, 'no media for ' + STALL_TIMEOUT_MS / 1000 + ' s', null);
      }
    } else {
      s.stalledSince = 0;
    }
    prev = cur;
    latest = out;
    draw(out);
    return out;
  }

  // jbMs is the mean jitter-buffer delay over the last interval (or since the
  // start when there is no previous sample), in ms.
  function jbMs(delay, emitted, pDelay, pEmitted) {
    var d = delay - (pDelay || 0);
    var n = emitted - (pEmitted || 0);
    if (n > 0) return Math.round(1000 * d / n);
    if (emitted > 0) return Math.round(1000 * delay / emitted);
    return null;
  }

  function codecOf(report, r) {
    if (!r.codecId) return '';
    var c = report.get ? report.get(r.codecId) : null;
    return c && c.mimeType ? c.mimeType.replace(/^(video|audio)\//, '') : '';
  }

  function draw(st) {
    var vv = st.video;
    setText('o-res', vv && vv.width ? vv.width + '×' + vv.height : '–');
    setText('o-fps', vv && vv.fps !== null ? '@ ' + vv.fps + ' fps' : '');
    setText('o-bitrate', st.bitrateKbps !== null ? st.bitrateKbps + ' kb/s' : '–');
    setText('o-loss', st.lossPercent !== null ? st.lossPercent.toFixed(1) + ' %' : '–');
    var jb = [];
    if (vv && vv.jitterBufferMs !== null) jb.push('video ' + vv.jitterBufferMs + ' ms');
    if (st.audio && st.audio.jitterBufferMs !== null) jb.push('audio ' + st.audio.jitterBufferMs + ' ms');
    setText('o-jb', jb.length ? jb.join(', ') : '–');
    setText('o-ttff', st.ttffMs !== null ? st.ttffMs + ' ms' : '–');
  }

  // Controls.

  function drawButton() {
    unmute.textContent = video.muted ? 'Unmute' : 'Mute';
  }
  unmute.addEventListener('click', function () {
    if (video.paused) {
      var p = video.play();
      if (p && p.catch) p.catch(function () { /* still refused */ });
    }
    video.muted = !video.muted;
    drawButton();
  });
  video.addEventListener('volumechange', drawButton);

  // Leaving: DELETE the session (keepalive so it survives the unload);
  // coming back from the back-forward cache: connect again.
  window.addEventListener('pagehide', function () {
    leaving = true;
    clearTimeout(retryTimer);
    dropPrevious();
    if (session) teardown(session, true);
  });
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted) {
      leaving = false;
      backoffMs = BACKOFF_MIN_MS;
      connect();
    }
  });

  // The timeline: the retention window (../streams/{stream}: dvr_from and
  // the server's now), the position (position events), seek and live
  // (POST {Location}/seek) and the clip link (../export/{stream}.mp4). With
  // ?whep= (another server) only the video plays.
  var TIMELINE_EVERY_MS = 5000;
  var LIVE_SLACK_MS = 3000; // a seek this close to the live edge goes live
  var timeline = $('timeline');
  var seekInput = $('seek');
  var liveButton = $('live');
  var clipLink = $('clip');
  var clipSeconds = $('clip-seconds');
  var win = null; // the window: from and now (server ms), at (performance.now())
  var dragging = false;
  api.position = null;
  api.window = null;
  api.lastSeek = null;
  // seek moves the session to start ("-10s", an RFC 3339 time or "live")
  // and resolves to the HTTP status (0 without a session or on error).
  api.seek = function (start) { return seekTo(start); };

  function serverNow() { return win ? win.now + (performance.now() - win.at) : Date.now(); }

  async function refreshWindow() {
    try {
      var res = await fetch('../streams/' + encodeURIComponent(streamName), { cache: 'no-store' });
      var v = res.ok ? await res.json() : null;
      // What the stream list notes (e.g. "B-frames: re-encoded").
      api.notes = v && v.notes ? v.notes : [];
      setText('o-notes', api.notes.join('; '));
      if (!v || !v.dvr_from) {
        win = null;
        api.window = null;
        timeline.dataset.window = 'none';
      } else {
        win = { from: Date.parse(v.dvr_from), now: Date.parse(v.now), at: performance.now() };
        api.window = { from: v.dvr_from, now: v.now, seconds: v.dvr_seconds };
        timeline.dataset.window = 'known';
      }
    } catch (e) { /* keep the last window */ }
    drawTimeline();
  }

  function clock(ms) {
    var d = new Date(ms);
    return isNaN(d) ? '' : d.toLocaleTimeString();
  }

  function drawTimeline() {
    var p = api.position;
    var live = !p || p.live;
    var canSeek = !!(win && session && session.location);
    var span = win ? Math.max(0, Math.floor((serverNow() - win.from) / 1000)) : 0;
    seekInput.max = String(span);
    seekInput.disabled = !canSeek;
    liveButton.disabled = !canSeek || live;
    if (!dragging) {
      var at = p && !live && win ? Math.round((Date.parse(p.wall_time) - win.from) / 1000) : span;
      seekInput.value = String(Math.min(span, Math.max(0, at)));
    }
    var text = 'live';
    if (dragging && win) {
      text = 'seek to ' + clock(win.from + Number(seekInput.value) * 1000);
    } else if (p && !live) {
      text = clock(Date.parse(p.wall_time)) + ' (' + (p.lag_ms / 1000).toFixed(1) + ' s behind live)';
    } else if (p) {
      text = 'live (' + clock(Date.parse(p.wall_time)) + ')';
    }
    setText('position', text);
    timeline.dataset.live = live ? 'true' : 'false';
  }

  async function seekTo(start) {
    var s = session;
    if (!s || !s.location) return 0;
    var status = 0;
    try {
      var res = await fetch(s.location + '/seek', {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ start: start }),
        cache: 'no-store'
      });
      status = res.status;
      if (status !== 204) setText('o-message', 'seek: ' + status + ' ' + (await res.text()).trim());
    } catch (e) { /* status 0 */ }
    api.lastSeek = { start: start, status: status };
    return status;
  }

  function drawClip() {
    var n = Math.max(1, Math.min(3600, Math.floor(Number(clipSeconds.value) || 30)));
    clipLink.href = '../export/' + encodeURIComponent(streamName) + '.mp4?from=-' + n + 's' +
      (token ? '&token=' + encodeURIComponent(token) : '');
    clipLink.download = streamName + '-last' + n + 's.mp4';
  }

  if (ownServer) {
    seekInput.addEventListener('input', function () { dragging = true; drawTimeline(); });
    seekInput.addEventListener('change', function () {
      dragging = false;
      if (!win) return;
      var target = win.from + Number(seekInput.value) * 1000;
      seekTo(serverNow() - target < LIVE_SLACK_MS ? 'live' : new Date(target).toISOString());
    });
    liveButton.addEventListener('click', function () { seekTo('live'); });
    clipSeconds.addEventListener('input', drawClip);
    drawClip();
    refreshWindow();
    setInterval(refreshWindow, TIMELINE_EVERY_MS);
    setInterval(drawTimeline, STATS_EVERY_MS);
  } else {
    timeline.hidden = true;
  }

  setInterval(function () { sample(); }, STATS_EVERY_MS);

  if (!window.RTCPeerConnection) {
    setState('failed', 'this browser has no WebRTC (RTCPeerConnection)');
    return;
  }
  video.muted = true;
  drawButton();
  connect();
})();
