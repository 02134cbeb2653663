// audit.js — the audit viewer: the newest entries (GET /api/v1/audit,
// up to 1,000), newest first, filtered in the page by actor, tag and
// outcome, 50 to a page; and the chain check (GET /api/v1/audit/verify).
(function () {
  'use strict';
  var table = document.getElementById('audit');
  if (!table) { return; }
  var PAGE = 50;
  var body = table.querySelector('tbody');
  var actor = document.getElementById('f-actor');
  var tag = document.getElementById('f-tag');
  var outcome = document.getElementById('f-outcome');
  var count = document.getElementById('audit-count');
  var pageLabel = document.getElementById('audit-page');
  var prev = document.getElementById('audit-prev');
  var next = document.getElementById('audit-next');
  var entries = [], page = 0;
  if (outcome.dataset.value) { outcome.value = outcome.dataset.value; }

  function td(text, cls) {
    var c = document.createElement('td');
    c.textContent = text === undefined || text === null ? '' : String(text);
    if (cls) { c.className = cls; }
    return c;
  }

  function outcomeOf(e) { return e.result || e.outcome || ''; }

  function matches(e) {
    var a = actor.value.trim().toLowerCase(), t = tag.value.trim().toLowerCase(), o = outcome.value;
    if (a && (e.caller || '').toLowerCase().indexOf(a) < 0) { return false; }
    if (t && (e.path || '').toLowerCase().indexOf(t) < 0) { return false; }
    if (o) {
      var x = outcomeOf(e);
      if (o === 'allowed' && x !== 'allowed' && x !== 'ok') { return false; }
      if (o === 'denied' && x !== 'denied' && x !== 'refused') { return false; }
      if (o === 'failed' && x !== 'failed') { return false; }
    }
    return true;
  }

  function render() {
    var list = entries.filter(matches);
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    var rows = document.createDocumentFragment();
    list.slice(page * PAGE, (page + 1) * PAGE).forEach(function (e) {
      var tr = document.createElement('tr');
      tr.dataset.seq = e.seq;
      var o = outcomeOf(e);
      tr.appendChild(td(e.seq, 'n'));
      tr.appendChild(td(window.weir.fmtTime(e.time), 't'));
      tr.appendChild(td(e.caller + (e.role ? ' (' + e.role + ')' : '')));
      tr.appendChild(td(e.kind || 'write'));
      tr.appendChild(td(e.path));
      tr.appendChild(td(e.kind ? '' : JSON.stringify(e.old === undefined ? null : e.old) + ' → ' + JSON.stringify(e.new === undefined ? null : e.new)));
      tr.appendChild(td(o, o === 'allowed' || o === 'ok' ? 'result-ok' : (o ? 'result-bad' : '')));
      tr.appendChild(td([e.reason, e.note, e.detail].filter(function (s) { return s; }).join(' · ')));
      rows.appendChild(tr);
    });
    if (!list.length) {
      var tr = document.createElement('tr');
      var c = td(entries.length ? 'No entry matches the filters.' : 'The trail is empty.', 'muted');
      c.colSpan = 8;
      tr.appendChild(c);
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
    count.textContent = list.length + ' of the newest ' + entries.length + ' entries';
    pageLabel.textContent = 'page ' + (page + 1) + ' of ' + pages;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  function load() {
    window.weir.api('GET', '/api/v1/audit?limit=1000').then(function (r) {
      return r.json().then(function (d) {
        if (!r.ok) { throw new Error(d.error || r.status); }
        entries = (d.entries || []).reverse();
        render();
      });
    }).catch(function (x) { count.textContent = 'Not loaded: ' + x.message; });
  }

  [actor, tag].forEach(function (i) { i.addEventListener('input', function () { page = 0; render(); }); });
  outcome.addEventListener('change', function () { page = 0; render(); });
  document.getElementById('audit-reload').addEventListener('click', load);
  document.getElementById('audit-filters').addEventListener('submit', function (e) { e.preventDefault(); });
  prev.addEventListener('click', function () { page--; render(); });
  next.addEventListener('click', function () { page++; render(); });
  load();

  var vbtn = document.getElementById('verify');
  var vres = document.getElementById('verify-result');
  var vdet = document.getElementById('verify-detail');
  vbtn.addEventListener('click', function () {
    vbtn.disabled = true;
    vres.className = 'muted';
    vres.textContent = 'Verifying…';
    vdet.replaceChildren();
    window.weir.api('GET', '/api/v1/audit/verify').then(function (r) {
      return r.json().then(function (d) {
        if (!r.ok) { throw new Error(d.error || r.status); }
        vres.dataset.ok = d.ok ? '1' : '0';
        if (d.ok) {
          vres.className = 'verify-ok';
          vres.textContent = 'Chain intact: ' + d.entries + ' entries in ' + d.files + ' file(s), seq ' + d.first_seq + '…' + d.last_seq +
            (d.checkpoint ? '; reaches the signed checkpoint at seq ' + d.checkpoint.seq + ' (' + window.weir.fmtTime(d.checkpoint.time) + ')' : '') + '.';
        } else {
          vres.className = 'verify-bad';
          vres.textContent = 'Chain broken' + (d.first_bad_line ? ' at line ' + d.first_bad_line + ' of ' + d.bad_file : '') + ': ' + d.reason +
            ' (' + d.entries + ' entries before it are intact).';
        }
        var ul = document.createElement('ul');
        (d.notes || []).forEach(function (n) { var li = document.createElement('li'); li.textContent = n; ul.appendChild(li); });
        var when = document.createElement('p');
        when.className = 'muted';
        when.textContent = 'Checked at ' + window.weir.fmtTime(d.checked_at) + (d.last_hash ? '; newest hash ' + d.last_hash : '');
        vdet.replaceChildren(ul, when);
      });
    }).catch(function (x) {
      vres.className = 'verify-bad';
      vres.textContent = 'Could not verify: ' + x.message;
    }).then(function () { vbtn.disabled = false; });
  });
})();
