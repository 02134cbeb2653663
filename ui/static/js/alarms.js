// alarms.js — the alarm list: GET /api/v1/alarms every two seconds (and
// at once after a command), rendered into #alarms. Operators get
// acknowledge / shelve / unshelve buttons that open a dialog asking for
// the required comment; the API decides, and its refusal is shown.
(function () {
  'use strict';
  var table = document.getElementById('alarms');
  if (!table) { return; }
  var body = table.querySelector('tbody');
  var operator = table.dataset.operator === '1';
  var updated = document.getElementById('alarm-updated');
  var filters = ['state', 'priority', 'shelved'].map(function (k) { return document.getElementById('f-' + k); });
  var RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  var STATE = { unack: 'unacknowledged, active', acked: 'acknowledged, active', rtn_unack: 'returned, unacknowledged', normal: 'normal' };

  function td(text, cls) {
    var c = document.createElement('td');
    c.textContent = text || '';
    if (cls) { c.className = cls; }
    return c;
  }

  function button(label, action, name) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.action = action;
    b.dataset.alarm = name;
    return b;
  }

  function render(list) {
    list.sort(function (a, b) {
      var ua = a.state === 'unack' || a.state === 'rtn_unack', ub = b.state === 'unack' || b.state === 'rtn_unack';
      if (ua !== ub) { return ua ? -1 : 1; }
      if (RANK[a.priority] !== RANK[b.priority]) { return RANK[a.priority] - RANK[b.priority]; }
      return (b.changed_at || '').localeCompare(a.changed_at || '');
    });
    var rows = document.createDocumentFragment();
    list.forEach(function (a) {
      var tr = document.createElement('tr');
      tr.dataset.alarm = a.name;
      tr.dataset.state = a.state;
      tr.dataset.shelved = a.shelved ? '1' : '';
      var p = td('');
      var pill = document.createElement('span');
      pill.className = 'prio prio-' + a.priority;
      pill.textContent = a.priority;
      p.appendChild(pill);
      tr.appendChild(p);
      tr.appendChild(td(a.name, 'name'));
      tr.appendChild(td(STATE[a.state] || a.state, 'state state-' + a.state));
      tr.appendChild(td(a.message));
      tr.appendChild(td(window.weir.fmtTime(a.raised_at || a.changed_at), 't'));
      tr.appendChild(td(a.acked_by ? a.acked_by + (a.ack_comment ? ': ' + a.ack_comment : '') : ''));
      tr.appendChild(td(a.shelved ? 'until ' + window.weir.fmtTime(a.shelved_until) + ' by ' + (a.shelved_by || '?') : '', 'shelved'));
      if (operator) {
        var c = td('');
        var box = document.createElement('div');
        box.className = 'alarm-actions';
        if (a.state === 'unack' || a.state === 'rtn_unack') { box.appendChild(button('Acknowledge', 'ack', a.name)); }
        box.appendChild(a.shelved ? button('Unshelve', 'unshelve', a.name) : button('Shelve…', 'shelve', a.name));
        c.appendChild(box);
        tr.appendChild(c);
      }
      rows.appendChild(tr);
    });
    if (!list.length) {
      var tr = document.createElement('tr');
      var c = td('No alarm matches.', 'muted');
      c.colSpan = 8;
      tr.appendChild(c);
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
  }

  var inflight = false;
  function refresh() {
    if (inflight) { return; }
    inflight = true;
    var q = [];
    filters.forEach(function (f) { if (f && f.value) { q.push(f.id.slice(2) + '=' + encodeURIComponent(f.value)); } });
    window.weir.api('GET', '/api/v1/alarms' + (q.length ? '?' + q.join('&') : '')).then(function (r) {
      // The session ended (logout, expiry, a revoked token): go to the
      // login form, as the htmx pages do (HX-Redirect).
      if (r.status === 401) { location.assign('/ui/login'); return null; }
      return r.json().then(function (d) {
        if (!r.ok) { throw new Error(d.error || r.status); }
        render(d.alarms || []);
        updated.textContent = 'updated ' + new Date().toLocaleTimeString();
        window.weir.fresh();
      });
    }).catch(function (err) {
      updated.textContent = 'not updated: ' + err.message;
      window.weir.lost();
    }).then(function () { inflight = false; });
  }
  filters.forEach(function (f) { if (f) { f.addEventListener('change', refresh); } });
  refresh();
  var timer = setInterval(refresh, 2000);
  window.addEventListener('pagehide', function () { clearInterval(timer); });

  if (!operator) { return; }
  var dlg = document.getElementById('alarm-dialog');
  var form = document.getElementById('alarm-form');
  var comment = document.getElementById('alarm-comment');
  var err = document.getElementById('alarm-error');
  var dur = document.getElementById('alarm-duration');
  var durLabel = document.getElementById('alarm-duration-label');
  var current = null;

  table.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-action]');
    if (!b) { return; }
    current = { action: b.dataset.action, name: b.dataset.alarm };
    document.getElementById('alarm-dialog-title').textContent =
      { ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve' }[current.action];
    document.getElementById('alarm-dialog-name').textContent = current.name;
    durLabel.hidden = current.action !== 'shelve';
    comment.value = '';
    err.textContent = '';
    dlg.showModal();
    comment.focus();
  });
  document.getElementById('alarm-cancel').addEventListener('click', function () { dlg.close(); });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = comment.value.trim();
    if (!text) { err.textContent = 'A comment is required.'; return; }
    var body = current.action === 'ack' ? { comment: text } :
      current.action === 'shelve' ? { duration: dur.value, reason: text } : { reason: text };
    window.weir.api('POST', '/api/v1/alarms/' + encodeURIComponent(current.name) + '/' + current.action, body).then(function (r) {
      return r.json().then(function (d) {
        if (!r.ok) { err.textContent = d.error || ('refused: ' + r.status); return; }
        dlg.close();
        refresh();
      });
    }).catch(function (x) { err.textContent = String(x); });
  });
})();
