// weir.js — loaded by every page after htmx. The CSP allows no inline
// script, so pages hand data to scripts in data-* attributes.
(function () {
  'use strict';

  // csrf is the session's CSRF token, from <meta name="csrf-token">.
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : '';
  }

  // Every htmx request carries the token; the server checks it on
  // anything but GET and HEAD authenticated by the session cookie.
  document.addEventListener('htmx:configRequest', function (e) {
    var t = csrf();
    if (t) { e.detail.headers['X-CSRF-Token'] = t; }
  });

  // fmtTime shows an RFC 3339 time as the server renders it
  // ("2026-12-07 20:30:00.123Z").
  function fmtTime(s) {
    if (!s) { return ''; }
    var d = new Date(s);
    if (isNaN(d.getTime())) { return s; }
    return d.toISOString().replace('T', ' ');
  }

  // Connection state. Any successful answer (an htmx swap, a stream
  // event, a poll) calls fresh(); any failure calls lost(), which shows
  // the banner "connection lost — data as of HH:MM:SS" and greys out
  // the figures on screen (body.stale), so that a stopped gateway never
  // leaves "ready, running" looking current. The next success clears it.
  var asOf = new Date(), down = false;
  function hhmmss(d) { return d.toTimeString().slice(0, 8); }
  function banner() {
    var b = document.getElementById('conn-lost');
    if (!b) {
      b = document.createElement('div');
      b.id = 'conn-lost';
      b.className = 'conn-lost';
      b.setAttribute('role', 'alert');
      b.hidden = true;
      document.body.insertBefore(b, document.body.firstChild);
    }
    return b;
  }
  function fresh() {
    asOf = new Date();
    if (!down) { return; }
    down = false;
    banner().hidden = true;
    document.body.classList.remove('stale');
    document.dispatchEvent(new CustomEvent('weir:fresh'));
  }
  function lost() {
    var b = banner();
    b.textContent = 'Connection lost \u2014 data as of ' + hhmmss(asOf) + '; retrying\u2026';
    b.hidden = false;
    if (down) { return; }
    down = true;
    document.body.classList.add('stale');
    document.dispatchEvent(new CustomEvent('weir:lost'));
  }
  document.addEventListener('htmx:sendError', lost);
  document.addEventListener('htmx:timeout', lost);
  document.addEventListener('htmx:responseError', function (e) {
    // A 401/403 is the session ending: htmx follows the server's
    // HX-Redirect. Anything else (5xx, a proxy's 502) means stale data.
    var st = e.detail && e.detail.xhr ? e.detail.xhr.status : 0;
    if (st !== 401 && st !== 403) { lost(); }
  });
  document.addEventListener('htmx:afterRequest', function (e) {
    if (e.detail && e.detail.successful) { fresh(); }
  });

  window.weir = {
    csrf: csrf,
    fmtTime: fmtTime,
    fresh: fresh,
    lost: lost,
    isLost: function () { return down; },
    // api calls the HTTP API with the session cookie and, for unsafe
    // methods, the CSRF token; body (if any) is sent as JSON. It resolves
    // to the fetch Response.
    api: function (method, url, body) {
      var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
      if (method !== 'GET' && method !== 'HEAD') { opts.headers['X-CSRF-Token'] = csrf(); }
      if (body !== undefined) {
        opts.headers['Content-Type'] = 'application/json';
        opts.body = JSON.stringify(body);
      }
      return fetch(url, opts);
    }
  };
})();
