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

  window.weir = {
    csrf: csrf,
    fmtTime: fmtTime,
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
