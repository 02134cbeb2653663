// config.js — the configuration editor: the running text (GET
// /api/v1/config) in a textarea with line numbers; Validate posts it to
// /api/v1/config/validate and marks every error's line and lists it,
// with the diff from the running text; Apply posts it to
// /api/v1/config/apply (hot reload) and shows what changed, what
// restarted, and what only a restart applies.
(function () {
  'use strict';
  var text = document.getElementById('cfg-text');
  if (!text) { return; }
  var gutter = document.getElementById('cfg-gutter');
  var errorsBox = document.getElementById('cfg-errors');
  var resultBox = document.getElementById('cfg-result');
  var diffBox = document.getElementById('cfg-diff');
  var running = document.getElementById('cfg-running');
  var state = document.getElementById('cfg-state');
  var applyBtn = document.getElementById('cfg-apply');
  var runningText = '', validatedText = null, bad = {};

  function el(name, t, cls) {
    var e = document.createElement(name);
    if (t !== undefined) { e.textContent = t; }
    if (cls) { e.className = cls; }
    return e;
  }

  // drawGutter numbers the lines and marks those with errors.
  function drawGutter() {
    var n = text.value.split('\n').length;
    var frag = document.createDocumentFragment();
    for (var i = 1; i <= n; i++) {
      var s = el('span', String(i) + '\n');
      if (bad[i]) { s.className = 'bad'; s.title = bad[i]; s.dataset.line = String(i); }
      frag.appendChild(s);
    }
    gutter.replaceChildren(frag);
    text.rows = n + 1;
  }

  function post(url, body) {
    var headers = { 'Accept': 'application/json', 'X-CSRF-Token': window.weir.csrf() };
    if (body !== undefined) { headers['Content-Type'] = 'application/yaml'; }
    return fetch(url, { method: 'POST', credentials: 'same-origin', headers: headers, body: body });
  }

  function showDiff(diff) {
    if (!diff) { diffBox.replaceChildren(el('span', '(no change)')); return; }
    var frag = document.createDocumentFragment();
    diff.split('\n').forEach(function (line) {
      var c = line.charAt(0);
      frag.appendChild(el('span', line + '\n', c === '+' && line.indexOf('+++') !== 0 ? 'add' :
        c === '-' && line.indexOf('---') !== 0 ? 'del' : ''));
    });
    diffBox.replaceChildren(frag);
  }

  function showProblems(res) {
    bad = {};
    var list = el('ul', undefined, 'errors');
    list.id = 'cfg-error-list';
    (res.errors || []).forEach(function (p) {
      if (p.line && !p.warning) { bad[p.line] = (bad[p.line] ? bad[p.line] + '; ' : '') + p.message; }
      var li = el('li', (p.warning ? 'warning: ' : '') + (p.line ? 'line ' + p.line + ': ' : '') + (p.key ? p.key + ': ' : '') + p.message);
      if (p.warning) { li.className = 'muted'; }
      if (p.line) { li.dataset.line = String(p.line); }
      list.appendChild(li);
    });
    errorsBox.replaceChildren();
    if (list.children.length) { errorsBox.appendChild(list); }
    drawGutter();
  }

  function load() {
    window.weir.api('GET', '/api/v1/config').then(function (r) {
      return r.json().then(function (d) {
        if (!r.ok) { throw new Error(d.error || r.status); }
        runningText = d.yaml;
        text.value = d.yaml;
        validatedText = null;
        applyBtn.disabled = true;
        running.textContent = 'Running: ' + (d.path || 'built-in configuration') + ', sha256 ' + (d.sha256 || '').slice(0, 12) +
          (d.applied_at ? ', applied ' + window.weir.fmtTime(d.applied_at) : '') +
          (d.restart_needed && d.restart_needed.length ? '. Waiting for a restart: ' + d.restart_needed.join(', ') : '');
        bad = {};
        drawGutter();
      });
    }).catch(function (x) { running.textContent = 'Could not read the running configuration: ' + x.message; });
  }

  function validate() {
    state.textContent = 'Validating…';
    var sent = text.value;
    return post('/api/v1/config/validate', sent).then(function (r) {
      return r.json().then(function (res) {
        if (!r.ok) { throw new Error(res.error || r.status); }
        showProblems(res);
        if (res.valid || res.diff) { showDiff(res.diff); } else { diffBox.replaceChildren(el('span', '(not compared: the text is not valid)')); }
        validatedText = res.valid ? sent : null;
        applyBtn.disabled = !res.valid || !res.diff;
        state.textContent = res.valid ? ('Valid. ' + (res.summary || (res.diff ? '' : 'Nothing changes.'))) : 'Not valid: ' + res.errors.filter(function (p) { return !p.warning; }).length + ' error(s).';
        state.dataset.valid = res.valid ? '1' : '0';
        return res;
      });
    }).catch(function (x) { state.textContent = 'Could not validate: ' + x.message; });
  }

  function apply() {
    if (validatedText !== text.value) { validate(); return; }
    applyBtn.disabled = true;
    state.textContent = 'Applying…';
    post('/api/v1/config/apply', text.value).then(function (r) {
      return r.json().then(function (res) {
        if (r.status === 422) { showProblems(res); state.textContent = 'Refused: not valid; the running configuration stays.'; return; }
        // 409: the file cannot be written (read-only /etc): the message
        // names the file, why and the ways out; nothing was applied.
        if (r.status === 409) { state.textContent = 'Not applied: ' + (res.error || r.status); applyBtn.disabled = false; return; }
        if (!r.ok) { throw new Error(res.error || r.status); }
        var box = document.createDocumentFragment();
        var p = el('p', res.applied ? 'Applied. ' + (res.summary || '') : 'Not applied.', res.applied ? 'result-ok' : 'result-bad');
        p.id = 'cfg-applied';
        p.dataset.applied = res.applied ? '1' : '0';
        box.appendChild(p);
        if (res.not_persisted) {
          box.appendChild(el('p', 'Not saved to the file: runs until the next restart.'));
        }
        if (res.restart_needed && res.restart_needed.length) {
          box.appendChild(el('p', 'Only a restart applies: ' + res.restart_needed.join(', ')));
        }
        resultBox.replaceChildren(box);
        state.textContent = '';
        load();
      });
    }).catch(function (x) { state.textContent = 'Apply failed: ' + x.message; applyBtn.disabled = false; });
  }

  text.addEventListener('input', function () {
    applyBtn.disabled = true;
    drawGutter();
  });
  // Tab inserts two spaces (YAML has no tabs) instead of leaving the field.
  text.addEventListener('keydown', function (e) {
    if (e.key !== 'Tab' || e.shiftKey) { return; }
    e.preventDefault();
    var s = text.selectionStart;
    text.setRangeText('  ', s, text.selectionEnd, 'end');
    drawGutter();
  });
  document.getElementById('cfg-validate').addEventListener('click', validate);
  applyBtn.addEventListener('click', apply);
  document.getElementById('cfg-revert').addEventListener('click', function () {
    text.value = runningText;
    bad = {};
    errorsBox.replaceChildren();
    showDiff('');
    drawGutter();
  });
  load();
})();
