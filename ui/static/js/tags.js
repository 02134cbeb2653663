// tags.js — keeps the values of the tag browser live. It subscribes to
// GET /api/v1/stream (server-sent events, the session cookie
// authenticates it) for the tags on screen and updates their cells in
// place; without the stream it polls /ui/tags/values once a second.
(function () {
  'use strict';
  var table = document.getElementById('tags');
  if (!table || !table.dataset.stream) { return; }
  var rows = {};
  table.querySelectorAll('tr[data-tag]').forEach(function (tr) { rows[tr.dataset.tag] = tr; });

  function update(item) {
    var tr = rows[item.path];
    if (!tr) { return; }
    var v = JSON.stringify(item.value);
    var vc = tr.querySelector('.v');
    if (vc.textContent !== v) { vc.textContent = v; }
    var q = tr.querySelector('.q');
    q.textContent = item.quality;
    q.className = 'q ' + (item.quality === 'good' ? 'good' : 'bad');
    q.title = item.reason || '';
    tr.querySelector('.t').textContent = window.weir.fmtTime(item.source_time);
    tr.classList.remove('stale');
  }

  // stale greys out every value row while the connection is lost; the
  // next value or poll answer clears it (weir.js sends the events).
  function stale(on) {
    Object.keys(rows).forEach(function (k) { rows[k].classList.toggle('stale', on); });
  }
  document.addEventListener('weir:lost', function () { stale(true); });
  document.addEventListener('weir:fresh', function () { stale(false); });

  var polling = false;
  function poll() {
    if (polling) { return; }
    polling = true;
    var url = '/ui/tags/values?path=' + encodeURIComponent(table.dataset.path) + '&q=' + encodeURIComponent(table.dataset.q) +
      '&page=' + encodeURIComponent(table.dataset.page);
    setInterval(function () {
      fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 401 || r.status === 403) { location.reload(); return null; }
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      }).then(function (d) {
        if (!d) { return; }
        d.values.forEach(update);
        window.weir.fresh();
      }).catch(function () { window.weir.lost(); });
    }, 1000);
  }

  if (!window.EventSource) { poll(); return; }
  var es = new EventSource('/api/v1/stream?tags=' + encodeURIComponent(table.dataset.stream));
  es.addEventListener('open', function () { window.weir.fresh(); });
  es.addEventListener('sample', function (e) {
    window.weir.fresh();
    try { update(JSON.parse(e.data)); } catch (err) { /* a malformed event changes nothing */ }
  });
  es.addEventListener('error', function (e) {
    // An "event: error" the server sent (too many tags) is no lost
    // connection: the server is up and answered.
    if (e && e.data) { return; }
    // The values on screen are no longer current: say so. While the
    // EventSource retries by itself (readyState CONNECTING) the banner
    // stays; once it gives up (CLOSED: the server refused the stream, or
    // an older server without one) poll instead, which also notices the
    // server coming back.
    window.weir.lost();
    if (es.readyState === EventSource.CLOSED) { poll(); }
  });
  window.addEventListener('pagehide', function () { es.close(); });
})();
