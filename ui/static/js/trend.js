// trend.js — a uPlot chart of one or more tags: history from
// GET /api/v1/history (aggregates per interval, as many intervals as the
// chart is pixels wide: points=), then a live tail appended from
// GET /api/v1/stream (server-sent events). The window keeps its length:
// points older than its start are dropped as new ones arrive.
//
// Markup (no inline script; data-* attributes):
//   <div class="trend" data-tags="a/b,c/d" data-range="1h"></div>
//   <button data-trend-range="8h">…</button>   (range picker, any number)
// After each history load the chart element carries data-loaded="1" and
// data-points="N" (the non-empty points drawn), which the browser tests read.
(function () {
  'use strict';

  var RANGES = { '1h': 3600, '8h': 8 * 3600, '24h': 86400, '7d': 7 * 86400 };
  var MAX_POINTS = 4000;     // the API's bound is 10,000; a chart needs its width
  var MAX_LIVE = 20000;      // rows kept at most, whatever the range
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

  function Trend(el) {
    this.el = el;
    this.tags = (el.dataset.tags || '').split(',').filter(function (s) { return s; });
    this.range = RANGES[el.dataset.range] ? el.dataset.range : '1h';
    this.rows = [];          // [t, v0, v1, …] sorted by t (seconds)
    this.plot = null;
    this.es = null;
    this.gen = 0;            // a newer load wins over an older one still in flight
    this.status = el.parentNode.querySelector('.trend-status');
  }

  Trend.prototype.width = function () {
    return Math.max(240, Math.floor(this.el.clientWidth || this.el.parentNode.clientWidth || 600));
  };

  Trend.prototype.height = function () {
    return window.innerWidth < 640 ? 240 : Math.max(260, Math.min(480, Math.floor(window.innerHeight * 0.5)));
  };

  Trend.prototype.say = function (msg) {
    if (this.status) { this.status.textContent = msg; }
  };

  // load fetches the window's history of every tag and redraws.
  Trend.prototype.load = function () {
    var self = this, gen = ++this.gen;
    var to = new Date(), from = new Date(to.getTime() - RANGES[this.range] * 1000);
    var points = Math.min(MAX_POINTS, this.width());
    this.el.dataset.loaded = '';
    this.say('Loading…');
    var qs = '&from=' + encodeURIComponent(from.toISOString()) + '&to=' + encodeURIComponent(to.toISOString()) +
      '&points=' + points + '&agg=mean';
    Promise.all(this.tags.map(function (tag) {
      return window.weir.api('GET', '/api/v1/history?tag=' + encodeURIComponent(tag) + qs).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).catch(function (err) { return { ok: false, body: { error: String(err) } }; });
    })).then(function (answers) {
      if (gen !== self.gen) { return; }
      var byT = {}, errs = [];
      answers.forEach(function (a, i) {
        if (!a.ok) { errs.push(self.tags[i] + ': ' + (a.body.error || 'failed')); return; }
        (a.body.buckets || []).forEach(function (b) {
          if (b.mean === null || b.mean === undefined) { return; }
          var t = Date.parse(b.start) / 1000;
          var row = byT[t];
          if (!row) { row = byT[t] = self.emptyRow(t); }
          row[i + 1] = b.mean;
        });
      });
      self.rows = Object.keys(byT).map(Number).sort(function (a, b) { return a - b; }).map(function (t) { return byT[t]; });
      self.draw();
      self.el.dataset.loaded = '1';
      self.say(errs.length ? errs.join('; ') : '');
      self.live();
    });
  };

  Trend.prototype.emptyRow = function (t) {
    var row = [t];
    for (var i = 0; i < this.tags.length; i++) { row.push(null); }
    return row;
  };

  // data turns the rows into uPlot's columns.
  Trend.prototype.data = function () {
    var cols = [[]];
    for (var i = 0; i < this.tags.length; i++) { cols.push([]); }
    var n = 0;
    this.rows.forEach(function (row) {
      for (var c = 0; c < row.length; c++) {
        cols[c].push(row[c]);
        if (c > 0 && row[c] !== null) { n++; }
      }
    });
    this.el.dataset.points = String(n);
    // The newest row's time (s): a test sees the live tail arrive even when
    // the window's start moving on trims as many rows as it appends.
    this.el.dataset.last = this.rows.length ? String(this.rows[this.rows.length - 1][0]) : '';
    return cols;
  };

  Trend.prototype.draw = function () {
    var data = this.data();
    if (this.plot) { this.plot.setData(data); return; }
    var series = [{}];
    this.tags.forEach(function (tag, i) {
      series.push({ label: tag, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false } });
    });
    this.el.textContent = '';
    this.plot = new window.uPlot({
      width: this.width(), height: this.height(), series: series,
      scales: { x: { time: true } }, legend: { live: true },
      cursor: { drag: { x: true, y: false } }
    }, data, this.el);
  };

  // trim drops rows older than the window, and the oldest beyond MAX_LIVE.
  Trend.prototype.trim = function (now) {
    var start = now - RANGES[this.range], i = 0;
    while (i < this.rows.length && this.rows[i][0] < start) { i++; }
    if (this.rows.length - i > MAX_LIVE) { i = this.rows.length - MAX_LIVE; }
    if (i > 0) { this.rows.splice(0, i); }
  };

  // append adds one live sample of tag index i at time t (seconds).
  Trend.prototype.append = function (i, t, v) {
    var last = this.rows[this.rows.length - 1];
    if (last && last[0] === t) {
      last[i + 1] = v;
    } else {
      var row = this.emptyRow(t);
      row[i + 1] = v;
      if (last && t < last[0]) { // out of order: insert in place
        var j = this.rows.length - 1;
        while (j > 0 && this.rows[j - 1][0] > t) { j--; }
        this.rows.splice(j, 0, row);
      } else {
        this.rows.push(row);
      }
    }
    this.trim(Date.now() / 1000);
  };

  // live subscribes to the tags' samples; drawing is batched per frame.
  Trend.prototype.live = function () {
    var self = this;
    if (this.es || !window.EventSource || !this.tags.length) { return; }
    var pending = false;
    this.es = new EventSource('/api/v1/stream?tags=' + encodeURIComponent(this.tags.join(',')));
    // A broken stream shows the connection banner (weir.js) and greys
    // the chart; the EventSource reconnects by itself and the next event
    // clears it.
    this.es.addEventListener('open', function () { window.weir.fresh(); });
    this.es.addEventListener('error', function (e) { if (!(e && e.data)) { window.weir.lost(); } });
    this.es.addEventListener('sample', function (e) {
      window.weir.fresh();
      var s;
      try { s = JSON.parse(e.data); } catch (err) { return; }
      var i = self.tags.indexOf(s.path);
      var v = typeof s.value === 'boolean' ? (s.value ? 1 : 0) : s.value;
      if (i < 0 || typeof v !== 'number' || !isFinite(v)) { return; }
      var t = Date.parse(s.source_time || s.edge_time) / 1000;
      if (!isFinite(t)) { return; }
      self.append(i, t, v);
      if (!pending) {
        pending = true;
        window.requestAnimationFrame(function () { pending = false; self.draw(); });
      }
    });
  };

  Trend.prototype.setRange = function (r) {
    if (!RANGES[r] || r === this.range) { return; }
    this.range = r;
    this.el.dataset.range = r;
    this.load();
  };

  Trend.prototype.resize = function () {
    if (this.plot) { this.plot.setSize({ width: this.width(), height: this.height() }); }
  };

  Trend.prototype.close = function () {
    if (this.es) { this.es.close(); this.es = null; }
  };

  function init() {
    var trends = [];
    document.querySelectorAll('.trend[data-tags]').forEach(function (el) {
      var tr = new Trend(el);
      if (!tr.tags.length) { return; }
      trends.push(tr);
      tr.load();
    });
    document.querySelectorAll('[data-trend-range]').forEach(function (b) {
      b.addEventListener('click', function () {
        var r = b.dataset.trendRange;
        document.querySelectorAll('[data-trend-range]').forEach(function (o) {
          o.setAttribute('aria-pressed', o.dataset.trendRange === r ? 'true' : 'false');
        });
        trends.forEach(function (t) { t.setRange(r); });
      });
    });
    var timer = null;
    window.addEventListener('resize', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { trends.forEach(function (t) { t.resize(); }); }, 150);
    });
    window.addEventListener('pagehide', function () { trends.forEach(function (t) { t.close(); }); });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
})();
