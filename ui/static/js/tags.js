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
  }

  var polling = false;
  function poll() {
    if (polling) { return; }
    polling = true;
    var url = '/ui/tags/values?path=' + encodeURIComponent(table.dataset.path) + '&q=' + encodeURIComponent(table.dataset.q) +
      '&page=' + encodeURIComponent(table.dataset.page);
    setInterval(function () {
      fetch(url, { credentials: 'same-origin' }).then(function (r) {
        return r.ok ? r.json() : { values: [] };
      }).then(function (d) { d.values.forEach(update); }).catch(function () {});
    }, 1000);
  }

  if (!window.EventSource) { poll(); return; }
  var got = false;
  var es = new EventSource('/api/v1/stream?tags=' + encodeURIComponent(table.dataset.stream));
  es.addEventListener('sample', function (e) {
    got = true;
    try { update(JSON.parse(e.data)); } catch (err) { /* a malformed event changes nothing */ }
  });
  es.addEventListener('error', function () {
    // Never connected (an older server without the stream): poll instead.
    // After a break EventSource reconnects by itself.
    if (!got && es.readyState === EventSource.CLOSED) { poll(); }
  });
  window.addEventListener('pagehide', function () { es.close(); });
})();
