// whepcast: the live stream list, kept current by server-sent events from
// streams/events ("snapshot" = the full list, "entry" = one change).
(function () {
  'use strict';

  var list = document.getElementById('streams');
  var status = document.getElementById('status');
  var streams = new Map();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // bitrate and ago mirror the page's Go formatting (pages.go).
  function bitrate(bps) {
    if (bps >= 1e6) return (bps / 1e6).toFixed(1) + ' Mb/s';
    if (bps >= 1000) return Math.floor(bps / 1000) + ' kb/s';
    return (bps || 0) + ' b/s';
  }

  function ago(s) {
    s = Math.floor(s || 0);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    var m = Math.floor(s / 60) % 60;
    return Math.floor(s / 3600) + ' h ' + (m < 10 ? '0' : '') + m + ' min';
  }

  function meta(s) {
    var m = el('span', 'meta');
    if (s.protocol) {
      m.appendChild(el('span', 'protocol', s.protocol));
      m.appendChild(document.createTextNode(' '));
    }
    m.appendChild(el('span', 'bitrate', bitrate(s.bitrate)));
    m.appendChild(document.createTextNode(' '));
    var h = el('span', 'health ' + (s.health || ''), s.health || '');
    if (s.health_note) h.title = s.health_note;
    m.appendChild(h);
    if (typeof s.viewers === 'number') {
      m.appendChild(document.createTextNode(' '));
      m.appendChild(el('span', 'viewers', s.viewers + ' watching'));
    }
    if (s.dvr_from) {
      m.appendChild(document.createTextNode(' '));
      m.appendChild(el('span', 'dvr', ago(s.dvr_seconds) + ' back'));
    }
    return m;
  }

  function render() {
    var names = Array.from(streams.keys()).sort();
    var frag = document.createDocumentFragment();
    names.forEach(function (name) {
      var s = streams.get(name);
      var li = el('li', 'stream' + (s.playable ? '' : ' unplayable'));
      li.dataset.stream = s.stream;
      if (s.play) {
        var a = el('a', 'name', s.stream);
        a.href = s.play;
        li.appendChild(a);
      } else {
        li.appendChild(el('span', 'name', s.stream));
      }
      var tracks = el('span', 'tracks');
      (s.tracks || []).forEach(function (t, i) {
        if (i) tracks.appendChild(document.createTextNode(' · '));
        tracks.appendChild(el('span', 'track' + (t.carried ? '' : ' off'), t.codec + (t.detail ? ' (' + t.detail + ')' : '')));
      });
      li.appendChild(tracks);
      li.appendChild(meta(s));
      var started = new Date(s.started);
      var time = el('time', 'started', 'since ' + (isNaN(started) ? s.started : started.toLocaleString()));
      time.dateTime = s.started;
      li.appendChild(time);
      (s.notes || []).forEach(function (n) { li.appendChild(el('p', 'note', n)); });
      frag.appendChild(li);
    });
    list.replaceChildren(frag);
    status.textContent = names.length ? names.length + ' live' : 'No live stream';
    document.body.dataset.count = String(names.length);
  }

  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }

  if (!window.EventSource) return;
  var es = new EventSource('streams/events');
  es.addEventListener('snapshot', function (ev) {
    var all = parse(ev);
    if (!Array.isArray(all)) return;
    streams.clear();
    all.forEach(function (s) { streams.set(s.stream, s); });
    render();
  });
  es.addEventListener('entry', function (ev) {
    var s = parse(ev);
    if (!s || typeof s.stream !== 'string') return;
    if (s.state === 'live') streams.set(s.stream, s); else streams.delete(s.stream);
    render();
  });
  es.addEventListener('error', function () {
    status.textContent = 'Reconnecting to the catalog…';
  });
})();
