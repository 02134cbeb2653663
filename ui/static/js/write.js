// write.js — the write page: shows the policy for the tag (GET
// /api/v1/write/policy), sends the write (POST /api/v1/write) with its
// reason, then shows the result and the audit entry it produced, read
// back from GET /api/v1/audit by its seq.
(function () {
  'use strict';
  var form = document.getElementById('write-form');
  if (!form) { return; }
  var tag = document.getElementById('w-tag');
  var value = document.getElementById('w-value');
  var reason = document.getElementById('w-reason');
  var policyBox = document.getElementById('w-policy');
  var resultBox = document.getElementById('w-result');
  var auditBox = document.getElementById('w-audit');
  var policy = null;

  function el(name, text, cls) {
    var e = document.createElement(name);
    if (text !== undefined) { e.textContent = text; }
    if (cls) { e.className = cls; }
    return e;
  }

  function kv(pairs, id) {
    var dl = el('dl', undefined, 'kv');
    if (id) { dl.id = id; }
    pairs.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === '') { return; }
      dl.appendChild(el('dt', p[0]));
      var dd = el('dd', typeof p[1] === 'string' ? p[1] : JSON.stringify(p[1]));
      if (p[2]) { dd.dataset.field = p[2]; }
      dl.appendChild(dd);
    });
    return dl;
  }

  function showPolicy(v) {
    policy = v;
    var box = document.createDocumentFragment();
    var p = v.policy;
    var verdict = el('p', v.you.allowed ? 'You may write this tag.' : 'You may not write this tag: ' + v.you.reason,
      v.you.allowed ? 'result-ok' : 'result-bad');
    verdict.id = 'w-verdict';
    box.appendChild(verdict);
    if (p) {
      box.appendChild(kv([
        ['Policy', 'write_policies[' + p.index + '] match ' + p.match + (p.allow ? '' : ' (denies)')],
        ['Roles', (p.roles || []).join(', ')],
        ['Callers', (p.callers || []).join(', ')],
        ['Type', p.type],
        ['Range', (p.min !== undefined || p.max !== undefined) ? (p.min !== undefined ? p.min : '−∞') + ' … ' + (p.max !== undefined ? p.max : '∞') : ''],
        ['Rate limit', p.max_rate],
        ['Max age', p.max_age]
      ], 'w-policy-table'));
    }
    policyBox.replaceChildren(box);
    document.getElementById('w-send').disabled = !v.you.allowed;
  }

  var seq = 0;
  function lookup() {
    var t = tag.value.trim();
    if (!t) { return; }
    var my = ++seq;
    window.weir.api('GET', '/api/v1/write/policy?tag=' + encodeURIComponent(t)).then(function (r) {
      return r.json().then(function (d) {
        if (my !== seq) { return; }
        if (!r.ok) { policyBox.replaceChildren(el('p', d.error || String(r.status), 'error')); return; }
        showPolicy(d);
      });
    }).catch(function (x) { policyBox.replaceChildren(el('p', String(x), 'error')); });
  }
  tag.addEventListener('change', lookup);
  lookup();

  // parse turns the typed text into the JSON value the policy's type wants.
  function parse(text) {
    var type = policy && policy.policy ? policy.policy.type : '';
    text = text.trim();
    switch (type) {
      case 'string': return text;
      case 'bool':
        if (/^(true|1|on)$/i.test(text)) { return true; }
        if (/^(false|0|off)$/i.test(text)) { return false; }
        throw new Error('enter true or false');
      case 'int': case 'float':
        if (text === '' || isNaN(Number(text))) { throw new Error('enter a number'); }
        return Number(text);
    }
    if (text !== '' && !isNaN(Number(text))) { return Number(text); }
    if (text === 'true' || text === 'false') { return text === 'true'; }
    return text;
  }

  function entryTable(e, id) {
    return kv([
      ['Seq', String(e.seq), 'seq'], ['Time', window.weir.fmtTime(e.time)], ['Caller', e.caller, 'caller'], ['Role', e.role],
      ['Tag', e.path, 'path'], ['Old', e.old], ['New', e.new, 'new'], ['Result', e.result, 'result'],
      ['Reason', e.reason], ['Note', e.note, 'note'], ['Hash', e.hash]
    ], id);
  }

  function showAudit(entry) {
    auditBox.replaceChildren(el('p', 'Reading the audit trail…', 'muted'));
    if (!entry || !entry.seq) {
      auditBox.replaceChildren(el('p', 'This refusal was counted, not recorded one by one (per-caller limit): no entry of its own.', 'muted'));
      return;
    }
    window.weir.api('GET', '/api/v1/audit?limit=200').then(function (r) {
      return r.json().then(function (d) {
        var found = (d.entries || []).filter(function (e) { return e.seq === entry.seq; })[0];
        var box = document.createDocumentFragment();
        box.appendChild(el('h2', 'Audit entry'));
        if (found) {
          box.appendChild(entryTable(found, 'w-audit-entry'));
          var link = el('a', 'Open the audit viewer');
          link.href = '/ui/audit?tag=' + encodeURIComponent(found.path);
          box.appendChild(link);
        } else {
          box.appendChild(el('p', 'Entry ' + entry.seq + ' is not among the newest 200 (a busy trail).', 'muted'));
        }
        auditBox.replaceChildren(box);
      });
    }).catch(function (x) { auditBox.replaceChildren(el('p', String(x), 'error')); });
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var v;
    try { v = parse(value.value); } catch (x) { resultBox.replaceChildren(el('p', 'Value: ' + x.message, 'error')); return; }
    var why = reason.value.trim();
    if (!why) { resultBox.replaceChildren(el('p', 'A reason is required.', 'error')); return; }
    var btn = document.getElementById('w-send');
    btn.disabled = true;
    resultBox.replaceChildren(el('p', 'Writing…', 'muted'));
    window.weir.api('POST', '/api/v1/write', { path: tag.value.trim(), value: v, reason: why }).then(function (r) {
      return r.json().then(function (d) {
        var entry = r.ok ? d : d.result;
        var msg = r.ok ? 'Written: ' + JSON.stringify(d.new) + ' (was ' + JSON.stringify(d.old) + ')' : 'Not written: ' + (d.error || r.status);
        var p = el('p', msg, r.ok ? 'result-ok' : 'result-bad');
        p.id = 'w-outcome';
        p.dataset.outcome = r.ok ? 'ok' : 'refused';
        resultBox.replaceChildren(p);
        showAudit(entry);
      });
    }).catch(function (x) {
      resultBox.replaceChildren(el('p', String(x), 'error'));
    }).then(function () { btn.disabled = !(policy && policy.you.allowed); });
  });
})();
