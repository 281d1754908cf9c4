// deepgo tracking dashboard: a single-page app over the JSON API under /api/
// (docs/ui-api.md). Plain JavaScript, no dependencies; charts are SVG drawn
// here. Every text from the store goes through textContent, never innerHTML.
'use strict';
(() => {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2563eb', '#e11d48', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c'];
  const STATUSES = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'];
  const CLASS_KEY = /^(test_|val_)?class_.+_(precision|recall|f1|support)$/;
  const KEY_ORDER = ['loss', 'val_loss', 'acc', 'val_acc', 'accuracy', 'val_accuracy', 'batch_loss', 'test_loss', 'test_acc', 'lr'];

  // ---------- DOM helpers ----------
  function build(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
  const s = (tag, attrs, ...kids) => build(document.createElementNS(SVGNS, tag), attrs, kids);

  async function api(path) {
    const res = await fetch(path, { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  // ---------- formatting ----------
  function num(v) {
    if (typeof v === 'number') return v;
    if (v === 'NaN') return NaN;
    if (v === 'Infinity' || v === '+Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    if (v === null || v === undefined) return null;
    return Number(v);
  }
  function fmtNum(v) {
    v = num(v);
    if (v === null) return '—';
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return '+Inf';
    if (v === -Infinity) return '-Inf';
    if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, 'e');
    return String(parseFloat(v.toPrecision(5)));
  }
  function fmtTick(v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(0);
    return String(parseFloat(v.toPrecision(4)));
  }
  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return '—';
    if (sec < 1) return `${Math.round(sec * 1000)} ms`;
    if (sec < 60) return `${sec.toFixed(1)} s`;
    const m = Math.floor(sec / 60);
    if (m < 60) return `${m}m ${Math.round(sec % 60)}s`;
    return `${Math.floor(m / 60)}h ${m % 60}m`;
  }
  function fmtBytes(n) {
    if (n < 1024) return `${n} B`;
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return `${n.toFixed(1)} ${u[i]}`;
  }
  const shortId = (id) => (id || '').slice(0, 8);
  const statusBadge = (st) => h('span', { class: `badge status-${st}`, text: st });
  const aliasBadge = (a) => h('span', { class: `badge alias${a === 'production' ? ' production' : ''}`, text: `@${a}` });
  const runLink = (id, name) => h('a', { href: `#/runs/${encodeURIComponent(id)}`, class: 'run-name', text: name || shortId(id) });
  const errorBox = (err) => h('div', { class: 'error', role: 'alert', text: String(err && err.message ? err.message : err) });

  const colors = new Map();
  function colorOf(id) {
    if (!colors.has(id)) colors.set(id, PALETTE[colors.size % PALETTE.length]);
    return colors.get(id);
  }
  const swatch = (id) => h('span', { class: 'swatch', style: `background:${colorOf(id)}` });

  function sortKeys(keys) {
    const rank = (k) => { const i = KEY_ORDER.indexOf(k); return i < 0 ? KEY_ORDER.length : i; };
    return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }
  const plainKeys = (keys) => sortKeys(keys.filter((k) => !CLASS_KEY.test(k)));

  // ---------- preferences ----------
  const prefs = { log: false, smoothing: 0, hidden: new Set() };
  try {
    const p = JSON.parse(localStorage.getItem('deepgo.ui.prefs') || '{}');
    prefs.log = !!p.log;
    prefs.smoothing = Number(p.smoothing) || 0;
    prefs.hidden = new Set(Array.isArray(p.hidden) ? p.hidden : []);
  } catch (e) { /* no storage */ }
  function savePrefs() {
    try {
      localStorage.setItem('deepgo.ui.prefs', JSON.stringify({ log: prefs.log, smoothing: prefs.smoothing, hidden: [...prefs.hidden] }));
    } catch (e) { /* no storage */ }
  }

  // ---------- metric histories ----------
  let histCache = new Map();
  function history(id) {
    if (!histCache.has(id)) {
      const p = api(`/api/runs/${encodeURIComponent(id)}/metrics`).then((d) => d.metrics);
      p.catch(() => histCache.delete(id));
      histCache.set(id, p);
    }
    return histCache.get(id);
  }

  // ---------- chart scales ----------
  function niceStep(raw) {
    const e = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / e;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
  }
  function niceTicks(lo, hi, count) {
    const step = niceStep((hi - lo) / count);
    const start = Math.floor(lo / step + 1e-9) * step;
    const end = Math.ceil(hi / step - 1e-9) * step;
    const ticks = [];
    for (let v = start; v <= end + step * 1e-6; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : parseFloat(v.toPrecision(12)));
    return ticks;
  }
  function ema(pts, w) {
    let last = null, n = 0;
    return pts.map((p) => {
      if (!Number.isFinite(p.y)) return p;
      last = last === null ? p.y * (1 - w) : last * w + (1 - w) * p.y;
      n++;
      return { x: p.x, y: last / (1 - Math.pow(w, n)), raw: p.y };
    });
  }
  function nearest(pts, x) {
    let lo = 0, hi = pts.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pts[mid].x < x) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(pts[lo - 1].x - x) <= Math.abs(pts[lo].x - x)) lo--;
    return pts[lo];
  }

  // lineChart draws the series [{id, name, color, points: [{step, value}]}]
  // of one metric key as SVG: one path.curve per run (data-run, data-key).
  function lineChart(key, series, opts) {
    const W = 460, H = 250, m = { l: 56, r: 16, t: 14, b: 34 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const log = !!opts.log;
    const data = series.map((se) => {
      let pts = se.points.map((p) => ({ x: p.step, y: num(p.value) }));
      if (opts.smoothing > 0 && pts.length > 2) pts = ema(pts, opts.smoothing);
      return { ...se, pts };
    });
    let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
    const usable = (y) => Number.isFinite(y) && (!log || y > 0);
    for (const se of data) {
      for (const p of se.pts) {
        xmin = Math.min(xmin, p.x); xmax = Math.max(xmax, p.x);
        if (usable(p.y)) { ymin = Math.min(ymin, p.y); ymax = Math.max(ymax, p.y); }
      }
    }
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, 'data-key': key, role: 'img', 'aria-label': `${key} by step` });
    if (!Number.isFinite(xmin)) {
      svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'no points' }));
      return h('div', { class: 'chart-wrap' }, svg);
    }
    if (!Number.isFinite(ymin)) {
      svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', text: log ? 'no positive values: turn off log scale' : 'no finite values' }));
    }
    if (xmin === xmax) { xmin -= 1; xmax += 1; }
    let yticks, y0, y1;
    if (!Number.isFinite(ymin)) { ymin = 0; ymax = 1; }
    if (log) {
      if (ymax / ymin < 10) {
        // less than a decade: linear-spaced round ticks on the log axis
        if (ymin === ymax) { ymin /= 1.5; ymax *= 1.5; }
        yticks = niceTicks(ymin, ymax, 4).filter((t) => t > 0);
        y0 = Math.log10(Math.min(ymin, yticks[0])); y1 = Math.log10(Math.max(ymax, yticks[yticks.length - 1]));
      } else {
        const lo = Math.floor(Math.log10(ymin)), hi = Math.ceil(Math.log10(ymax));
        y0 = lo; y1 = hi;
        const step = Math.max(1, Math.ceil((hi - lo) / 6));
        yticks = [];
        for (let k = lo; k <= hi; k += step) yticks.push(Math.pow(10, k));
      }
    } else {
      if (ymin === ymax) { const d = Math.abs(ymin) * 0.1 || 1; ymin -= d; ymax += d; }
      yticks = niceTicks(ymin, ymax, 5);
      y0 = yticks[0]; y1 = yticks[yticks.length - 1];
    }
    const sx = (x) => m.l + ((x - xmin) / (xmax - xmin)) * iw;
    const sy = (y) => {
      const t = log ? (Math.log10(y) - y0) / (y1 - y0) : (y - y0) / (y1 - y0);
      return m.t + ih - t * ih;
    };
    const g = s('g', {});
    for (const t of yticks) {
      const y = sy(t).toFixed(1);
      g.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y, y2: y }));
      g.append(s('text', { x: m.l - 8, y: Number(y) + 4, 'text-anchor': 'end', text: fmtTick(t) }));
    }
    const xt = niceTicks(xmin, xmax, 6).filter((t) => t >= xmin && t <= xmax && Number.isInteger(t));
    for (const t of xt) {
      const x = sx(t).toFixed(1);
      g.append(s('line', { class: 'axis', x1: x, x2: x, y1: m.t + ih, y2: m.t + ih + 4 }));
      g.append(s('text', { x, y: m.t + ih + 17, 'text-anchor': 'middle', text: fmtTick(t) }));
    }
    g.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
    g.append(s('text', { x: W - m.r, y: H - 3, 'text-anchor': 'end', text: 'step' }));
    if (log) g.append(s('text', { x: W - m.r, y: m.t - 4, 'text-anchor': 'end', text: 'log scale' }));
    svg.append(g);
    for (const se of data) {
      let d = '', pen = false;
      const dots = [], specials = [];
      for (const p of se.pts) {
        if (usable(p.y)) {
          const x = sx(p.x).toFixed(1), y = sy(p.y).toFixed(1);
          d += `${pen ? 'L' : 'M'}${x} ${y}`;
          pen = true;
          dots.push([x, y]);
        } else {
          pen = false;
          specials.push(p);
        }
      }
      if (d) {
        svg.append(s('path', { class: 'curve', d, stroke: se.color, 'data-run': se.id, 'data-key': key },
          s('title', { text: `${se.name} · ${key}` })));
      }
      if (dots.length <= 40 || dots.length === 1) {
        for (const [x, y] of dots) svg.append(s('circle', { class: 'dot', cx: x, cy: y, r: 2.6, fill: se.color }));
      }
      for (const p of specials) {
        const x = sx(p.x);
        const what = Number.isNaN(p.y) ? 'NaN' : p.y === Infinity ? '+Inf' : p.y === -Infinity ? '-Inf' : fmtNum(p.y);
        const top = !(p.y === -Infinity || (log && p.y <= 0));
        const y = top ? m.t : m.t + ih;
        const tri = top ? `M${x - 4} ${y - 6}L${x + 4} ${y - 6}L${x} ${y}Z` : `M${x - 4} ${y + 6}L${x + 4} ${y + 6}L${x} ${y}Z`;
        svg.append(s('path', { class: 'special', d: tri, fill: se.color, 'data-run': se.id },
          s('title', { text: `${se.name}: ${what} at step ${p.x}` })));
      }
    }
    // hover: crosshair and a tooltip with every run's value at the nearest step
    const wrap = h('div', { class: 'chart-wrap' }, svg);
    const tip = h('div', { class: 'tooltip', hidden: true });
    const cross = s('line', { class: 'cross', y1: m.t, y2: m.t + ih, visibility: 'hidden' });
    const overlay = s('rect', { x: m.l, y: m.t, width: iw, height: ih, fill: 'transparent' });
    svg.append(cross, overlay);
    wrap.append(tip);
    overlay.addEventListener('mousemove', (ev) => {
      const ctm = svg.getScreenCTM();
      if (!ctm) return;
      const pt = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
      const step = xmin + ((pt.x - m.l) / iw) * (xmax - xmin);
      let best = null;
      for (const se of data) {
        const p = nearest(se.pts, step);
        if (p && (best === null || Math.abs(p.x - step) < Math.abs(best - step))) best = p.x;
      }
      if (best === null) return;
      const rows = [h('div', { class: 't-step', text: `step ${best}` })];
      for (const se of data) {
        const p = nearest(se.pts, best);
        if (!p || p.x !== best) continue;
        rows.push(h('div', {}, h('span', { class: 'swatch', style: `background:${se.color}` }), `${se.name}: ${fmtNum(p.y)}`));
      }
      tip.replaceChildren(...rows);
      const x = sx(best);
      cross.setAttribute('x1', x); cross.setAttribute('x2', x); cross.setAttribute('visibility', 'visible');
      tip.hidden = false;
      const rect = svg.getBoundingClientRect();
      const px = (x / W) * rect.width;
      tip.style.top = '8px';
      if (px > rect.width / 2) { tip.style.left = ''; tip.style.right = `${rect.width - px + 12}px`; } else { tip.style.right = ''; tip.style.left = `${px + 12}px`; }
    });
    overlay.addEventListener('mouseleave', () => { tip.hidden = true; cross.setAttribute('visibility', 'hidden'); });
    return wrap;
  }

  // chartsPanel: a card with metric-key chips, log-scale and smoothing
  // controls, a legend and one overlaid chart per chosen key for runs.
  function chartsPanel(runs, title) {
    const card = h('section', { class: 'card', id: 'charts' });
    const body = h('div', {}, h('div', { class: 'empty', text: 'Loading metric histories…' }));
    card.append(h('div', { class: 'card-head' }, h('h2', { text: title || 'Metrics' })), body);
    if (runs.length === 0) {
      body.replaceChildren(h('div', { class: 'empty', text: 'Select runs in the table to plot their metrics.' }));
      return card;
    }
    Promise.all(runs.map((r) => history(r.id))).then((hists) => {
      const keySet = new Set();
      hists.forEach((hm) => Object.keys(hm || {}).forEach((k) => keySet.add(k)));
      const keys = plainKeys([...keySet]);
      if (keys.length === 0) {
        body.replaceChildren(h('div', { class: 'empty', text: 'These runs logged no metrics.' }));
        return;
      }
      const chips = h('div', { class: 'chips' });
      const grid = h('div', { class: 'charts' });
      const draw = () => {
        chips.replaceChildren(...keys.map((k) => h('button', {
          class: `chip${prefs.hidden.has(k) ? '' : ' on'}`, type: 'button', 'data-key': k, text: k,
          onclick: () => { if (prefs.hidden.has(k)) prefs.hidden.delete(k); else prefs.hidden.add(k); savePrefs(); draw(); },
        })));
        const shown = keys.filter((k) => !prefs.hidden.has(k));
        grid.replaceChildren(...shown.map((k) => {
          const series = [];
          runs.forEach((r, i) => {
            const pts = (hists[i] || {})[k];
            if (pts && pts.length) series.push({ id: r.id, name: r.name || shortId(r.id), color: colorOf(r.id), points: pts });
          });
          return h('div', { class: 'chart-card' }, h('div', { class: 'chart-title', text: k }), lineChart(k, series, prefs));
        }));
        if (shown.length === 0) grid.replaceChildren(h('div', { class: 'empty', text: 'Choose metrics above.' }));
      };
      const logBox = h('input', { type: 'checkbox', id: 'log-scale', checked: prefs.log, onchange: (e) => { prefs.log = e.target.checked; savePrefs(); draw(); } });
      const smooth = h('select', { id: 'smoothing', title: 'Exponential moving average', onchange: (e) => { prefs.smoothing = Number(e.target.value); savePrefs(); draw(); } },
        [0, 0.6, 0.8, 0.9, 0.95].map((v) => h('option', { value: v, selected: prefs.smoothing === v, text: v === 0 ? 'No smoothing' : `Smoothing ${v}` })));
      const legend = h('div', { class: 'legend' }, runs.map((r) => h('span', { class: 'legend-item' }, swatch(r.id), r.name || shortId(r.id))));
      body.replaceChildren(
        h('div', { class: 'card-body chart-controls' }, chips, h('div', { class: 'toolbar', style: 'margin:0' }, h('label', { class: 'toggle' }, logBox, 'Log scale'), smooth)),
        h('div', { class: 'card-body', style: 'padding-top:0;padding-bottom:0' }, legend),
        grid);
      draw();
    }).catch((err) => body.replaceChildren(errorBox(err)));
    return card;
  }

  // ---------- runs page ----------
  const runsState = { experiment: '', status: '', q: '', sort: 'start_time', order: 'desc', selected: null };

  async function viewRuns() {
    const { experiments } = await api('/api/experiments');
    const page = h('div', {});
    const count = h('span', { class: 'muted' });
    const expSel = h('select', { id: 'f-experiment', 'aria-label': 'Experiment', onchange: (e) => { runsState.experiment = e.target.value; reload(); } },
      h('option', { value: '', text: 'All experiments' }),
      experiments.map((e) => h('option', { value: e.id, selected: runsState.experiment === e.id, text: `${e.name} (${e.run_count})` })));
    const statusSel = h('select', { id: 'f-status', 'aria-label': 'Status', onchange: (e) => { runsState.status = e.target.value; reload(); } },
      h('option', { value: '', text: 'Any status' }),
      STATUSES.map((st) => h('option', { value: st, selected: runsState.status === st, text: st[0] + st.slice(1).toLowerCase() })));
    let timer = 0;
    const search = h('input', { type: 'search', id: 'f-q', placeholder: 'Search name, id, param=value…', value: runsState.q,
      oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => { runsState.q = e.target.value; reload(); }, 250); } });
    const compareBtn = h('button', { class: 'btn', type: 'button', id: 'compare',
      onclick: () => { location.hash = `#/compare?runs=${[...runsState.selected].map(encodeURIComponent).join(',')}`; } });
    const tableCard = h('section', { class: 'card' });
    const chartsBox = h('div', {});
    page.append(
      h('div', { class: 'page-head' }, h('h1', { text: 'Runs' }), count),
      h('div', { class: 'toolbar' }, expSel, statusSel, search, h('div', { class: 'spacer' }), compareBtn),
      tableCard, chartsBox);

    let runs = [], data = null;
    const updateCompare = () => {
      const n = runsState.selected.size;
      compareBtn.textContent = `Compare selected (${n})`;
      compareBtn.disabled = n < 2;
    };
    const renderCharts = () => chartsBox.replaceChildren(chartsPanel(runs.filter((r) => runsState.selected.has(r.id)), 'Metric curves of the selected runs'));

    function header(label, key, cls) {
      const sorted = runsState.sort === key;
      return h('th', {
        class: `sortable${sorted ? ' sorted' : ''}${cls ? ' ' + cls : ''}`, 'data-sort': key, title: `Sort by ${label}`,
        onclick: () => {
          if (runsState.sort === key) runsState.order = runsState.order === 'asc' ? 'desc' : 'asc';
          else { runsState.sort = key; runsState.order = key === 'start_time' || key === 'duration' || key.startsWith('metrics.') ? 'desc' : 'asc'; }
          reload();
        },
      }, label, sorted ? h('span', { class: 'arrow', text: runsState.order === 'asc' ? '▲' : '▼' }) : null);
    }

    function renderTable() {
      const mkeys = plainKeys(data.metric_keys).slice(0, 8);
      const pkeys = data.param_keys.slice(0, 6);
      count.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'}`;
      if (runs.length === 0) {
        tableCard.replaceChildren(h('div', { class: 'empty', text: 'No runs match. Train with `deepgo train mnist` to record one.' }));
        return;
      }
      const all = h('input', { type: 'checkbox', 'aria-label': 'Select all', checked: runs.every((r) => runsState.selected.has(r.id)),
        onchange: (e) => { runs.forEach((r) => (e.target.checked ? runsState.selected.add(r.id) : runsState.selected.delete(r.id))); renderTable(); renderCharts(); updateCompare(); } });
      const head = h('tr', {}, h('th', {}, all), header('Name', 'name'), header('Status', 'status'), header('Experiment', 'experiment'),
        header('Started', 'start_time'), header('Duration', 'duration', 'num'),
        mkeys.map((k, i) => header(k, `metrics.${k}`, `num${i === 0 ? ' sep' : ''}`)),
        pkeys.map((k, i) => header(k, `params.${k}`, i === 0 ? 'sep' : '')));
      const rows = runs.map((r) => {
        const sel = runsState.selected.has(r.id);
        return h('tr', { class: sel ? 'selected' : '', 'data-run': r.id },
          h('td', {}, h('input', { type: 'checkbox', checked: sel, 'aria-label': `Select ${r.name}`,
            onchange: (e) => { if (e.target.checked) runsState.selected.add(r.id); else runsState.selected.delete(r.id); renderTable(); renderCharts(); updateCompare(); } })),
          h('td', {}, swatch(r.id), runLink(r.id, r.name), ' ', h('span', { class: 'mono muted', text: shortId(r.id) })),
          h('td', {}, statusBadge(r.status)),
          h('td', { text: r.experiment }),
          h('td', { class: 'muted', text: fmtTime(r.start_time) }),
          h('td', { class: 'num', text: fmtDuration(r.duration_s) }),
          mkeys.map((k, i) => h('td', { class: `num mono${i === 0 ? ' sep' : ''}`, text: r.metrics[k] ? fmtNum(r.metrics[k].value) : '—' })),
          pkeys.map((k, i) => h('td', { class: `mono${i === 0 ? ' sep' : ''}`, text: k in r.params ? r.params[k] : '—' })));
      });
      tableCard.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { id: 'runs-table' }, h('thead', {}, head), h('tbody', {}, rows))));
    }

    async function reload() {
      const q = new URLSearchParams();
      if (runsState.experiment) q.set('experiment', runsState.experiment);
      if (runsState.status) q.set('status', runsState.status);
      if (runsState.q.trim()) q.set('q', runsState.q.trim());
      q.set('sort', runsState.sort);
      q.set('order', runsState.order);
      try {
        data = await api(`/api/runs?${q}`);
      } catch (err) {
        tableCard.replaceChildren(errorBox(err));
        return;
      }
      runs = data.runs;
      runs.forEach((r) => colorOf(r.id));
      if (runsState.selected === null) runsState.selected = new Set(runs.slice(0, 5).map((r) => r.id));
      updateCompare();
      renderTable();
      renderCharts();
    }
    await reload();
    return page;
  }

  // ---------- run page ----------
  function kvTable(entries, emptyText) {
    if (entries.length === 0) return h('div', { class: 'empty', text: emptyText });
    return h('table', { class: 'kv' }, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('td', { class: 'key' }, k), h('td', { class: 'val' }, v)))));
  }
  const cardOf = (title, ...body) => h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: title })), ...body);

  function cmColor(t) {
    const stops = [[248, 250, 252], [191, 219, 254], [59, 130, 246], [30, 58, 138]];
    const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
    const c = stops[i].map((v, j) => Math.round(v + (stops[i + 1][j] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  // confusionChart draws counts[true][pred] as a heat map coloured by the
  // share of each true class (row-normalised), with the counts written in.
  function confusionChart(cm) {
    const n = cm.labels.length;
    const cell = n <= 6 ? 56 : n <= 12 ? 44 : Math.max(6, Math.floor(520 / n));
    const showText = cell >= 24;
    const longest = Math.max(...cm.labels.map((l) => l.length));
    const lw = Math.min(120, 14 + longest * 7);
    const m = { l: lw + 22, t: 12, r: 70, b: lw + 24 };
    const W = m.l + n * cell + m.r, H = m.t + n * cell + m.b;
    const svg = s('svg', { class: 'cm', id: 'confusion-matrix', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'Confusion matrix' });
    const rowSum = cm.counts.map((r) => r.reduce((a, b) => a + b, 0));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const c = cm.counts[i][j];
        const t = rowSum[i] ? c / rowSum[i] : 0;
        const x = m.l + j * cell, y = m.t + i * cell;
        svg.append(s('rect', { class: 'cm-cell', x, y, width: cell, height: cell, fill: cmColor(t), 'data-true': i, 'data-pred': j },
          s('title', { text: `true ${cm.labels[i]} → predicted ${cm.labels[j]}: ${c} (${(t * 100).toFixed(1)}% of true ${cm.labels[i]})` })));
        if (showText && c > 0) {
          svg.append(s('text', { class: 'cm-count', x: x + cell / 2, y: y + cell / 2 + 4, 'text-anchor': 'middle', style: `fill:${t > 0.5 ? '#fff' : '#1f2937'}`, text: c }));
        }
      }
      if (cell >= 12 || i % Math.ceil(12 / cell) === 0) {
        svg.append(s('text', { x: m.l - 6, y: m.t + i * cell + cell / 2 + 4, 'text-anchor': 'end', text: cm.labels[i] }));
        const x = m.l + i * cell + cell / 2, y = m.t + n * cell + 8;
        svg.append(s('text', { x, y: y + 4, 'text-anchor': 'end', transform: `rotate(-45 ${x} ${y})`, text: cm.labels[i] }));
      }
    }
    svg.append(s('text', { class: 'axis-title', x: m.l + (n * cell) / 2, y: H - 4, 'text-anchor': 'middle', text: 'Predicted' }));
    const ty = m.t + (n * cell) / 2;
    svg.append(s('text', { class: 'axis-title', x: 12, y: ty, 'text-anchor': 'middle', transform: `rotate(-90 12 ${ty})`, text: 'True' }));
    // colour scale
    const lx = m.l + n * cell + 18, lh = Math.min(n * cell, 200);
    const grad = s('linearGradient', { id: 'cm-grad', x1: 0, y1: 1, x2: 0, y2: 0 });
    for (let k = 0; k <= 4; k++) grad.append(s('stop', { offset: k / 4, 'stop-color': cmColor(k / 4) }));
    svg.append(s('defs', {}, grad), s('rect', { x: lx, y: m.t, width: 12, height: lh, fill: 'url(#cm-grad)', stroke: '#e5e7eb' }),
      s('text', { x: lx + 16, y: m.t + 9, text: '100%' }), s('text', { x: lx + 16, y: m.t + lh, text: '0%' }));
    return h('div', { class: 'cm-wrap' }, svg);
  }

  function perClassTable(pc) {
    const cols = ['precision', 'recall', 'f1', 'support'];
    const present = cols.filter((c) => pc.classes.some((k) => k[c] !== null && k[c] !== undefined));
    const maxSupport = Math.max(1, ...pc.classes.map((k) => num(k.support) || 0));
    return h('table', { id: 'per-class' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Class' }), present.map((c) => h('th', { class: 'num', text: c === 'f1' ? 'F1' : c[0].toUpperCase() + c.slice(1) })))),
      h('tbody', {}, pc.classes.map((k) => h('tr', {}, h('td', { class: 'mono', text: k.label }), present.map((c) => {
        const v = num(k[c]);
        const frac = v === null || !Number.isFinite(v) ? 0 : c === 'support' ? v / maxSupport : v;
        return h('td', { class: 'num mono' }, h('span', { class: 'bar', style: `width:${Math.round(Math.max(0, Math.min(1, frac)) * 60)}px` }), fmtNum(v));
      })))));
  }

  async function viewRun(id) {
    const r = await api(`/api/runs/${encodeURIComponent(id)}`);
    colorOf(r.id);
    const page = h('div', {});
    page.append(h('div', { class: 'page-head' },
      h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Runs' }), ' / ', r.experiment),
      h('h1', {}, swatch(r.id), r.name || shortId(r.id)), statusBadge(r.status), h('span', { class: 'mono muted', text: r.id })));
    if (r.status === 'RUNNING') page.append(h('div', { class: 'muted section', text: 'This run is still being written; use Refresh to update.' }));
    const sys = Object.entries(r.tags).filter(([k]) => k.startsWith('sys.')).sort();
    const tags = Object.entries(r.tags).filter(([k]) => !k.startsWith('sys.')).sort();
    const overview = [
      ['Experiment', r.experiment],
      ['Status', statusBadge(r.status)],
      ['Started', fmtTime(r.start_time)],
      ['Ended', r.end_time ? fmtTime(r.end_time) : '—'],
      ['Duration', fmtDuration(r.duration_s)],
      ['Host', r.host ? `${r.host}${r.pid > 0 ? ` (pid ${r.pid})` : ''}` : '—'],
      ['Artifacts', r.artifact_dir || '—'],
    ];
    const latest = plainKeys(Object.keys(r.metrics)).map((k) => [k, h('span', {}, fmtNum(r.metrics[k].value), h('span', { class: 'muted', text: `  step ${r.metrics[k].step}` }))]);
    page.append(h('div', { class: 'grid2 section' },
      cardOf('Overview', kvTable(overview, '')),
      cardOf('Parameters', kvTable(Object.entries(r.params).sort(), 'No parameters.')),
      cardOf('Latest metrics', kvTable(latest, 'No metrics.')),
      cardOf('Tags', kvTable(tags.concat(sys), 'No tags.'))));
    page.append(chartsPanel([r], 'Metric curves'));
    if (r.confusion_matrix || r.per_class || r.confusion_matrix_error) {
      const parts = [];
      if (r.confusion_matrix_error) parts.push(h('div', { class: 'card-body' }, errorBox(r.confusion_matrix_error)));
      const grid = h('div', { class: 'grid2 section' });
      if (r.confusion_matrix) {
        grid.append(cardOf(`Confusion matrix (${r.confusion_matrix.path})`, h('div', { class: 'card-body' }, confusionChart(r.confusion_matrix))));
      }
      if (r.per_class) {
        const src = r.per_class.source === 'metrics' ? `from metrics ${r.per_class.prefix}class_*` : 'computed from the confusion matrix';
        grid.append(h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: 'Per-class metrics' }), h('span', { class: 'muted', text: src })),
          h('div', { class: 'table-wrap' }, perClassTable(r.per_class))));
      }
      page.append(...parts, grid);
    }
    const arts = r.artifacts.map((a) => [h('a', { href: `/api/runs/${encodeURIComponent(r.id)}/artifacts/${a.path.split('/').map(encodeURIComponent).join('/')}`, class: 'mono', text: a.path }), fmtBytes(a.size)]);
    const models = r.models.map((v) => [h('a', { href: `#/models/${encodeURIComponent(v.name)}`, text: `${v.name} v${v.version}` }), h('span', { class: 'aliases' }, v.aliases.map(aliasBadge))]);
    page.append(h('div', { class: 'grid2 section' },
      cardOf('Artifacts', kvTable(arts, 'No artifacts.')),
      cardOf('Registered models', kvTable(models, 'No model version was registered from this run.'))));
    return page;
  }

  // ---------- compare page ----------
  async function viewCompare(ids) {
    if (ids.length === 0) throw new Error('Nothing to compare: select runs on the Runs page.');
    const d = await api(`/api/compare?runs=${ids.map(encodeURIComponent).join(',')}`);
    d.runs.forEach((r) => colorOf(r.id));
    const page = h('div', {});
    let onlyDiff = false;
    const tableBox = h('div', { class: 'table-wrap' });
    const draw = () => {
      const rows = (title, list) => {
        const shown = list.filter((row) => !onlyDiff || row.differs);
        if (shown.length === 0) return [];
        return [h('tr', {}, h('th', { colspan: d.runs.length + 1, text: title }))].concat(shown.map((row) => h('tr', { class: row.differs ? 'diff' : '' },
          h('td', { class: 'mono', text: row.key }),
          row.values.map((v) => h('td', { class: 'mono', text: v === null ? '—' : title === 'Metrics' ? fmtNum(v) : v })))));
      };
      tableBox.replaceChildren(h('table', { id: 'compare-table' },
        h('thead', {}, h('tr', {}, h('th', { text: '' }), d.runs.map((r) => h('th', {}, swatch(r.id), runLink(r.id, r.name), ' ', statusBadge(r.status))))),
        h('tbody', {}, rows('Parameters', d.params), rows('Metrics', d.metrics.filter((m) => !CLASS_KEY.test(m.key))))));
    };
    draw();
    page.append(
      h('div', { class: 'page-head' }, h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Runs' }), ' / compare'), h('h1', { text: `Comparing ${d.runs.length} runs` })),
      h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: 'Parameters and final metrics' }),
        h('label', { class: 'toggle' }, h('input', { type: 'checkbox', onchange: (e) => { onlyDiff = e.target.checked; draw(); } }), 'Only differences')), tableBox),
      chartsPanel(d.runs, 'Metric curves'));
    return page;
  }

  // ---------- models ----------
  function modelCard(m, link) {
    const aliases = Object.entries(m.aliases).sort((a, b) => a[0].localeCompare(b[0]));
    const head = h('div', { class: 'card-head' },
      h('h2', {}, link ? h('a', { href: `#/models/${encodeURIComponent(m.name)}`, text: m.name }) : m.name),
      h('span', { class: 'muted', text: `${m.versions.length} version${m.versions.length === 1 ? '' : 's'}` }),
      h('span', { class: 'aliases' }, aliases.map(([a, v]) => h('span', { class: `badge alias${a === 'production' ? ' production' : ''}`, title: `alias ${a} → version ${v}`, text: `@${a} → v${v}` }))));
    const rows = [...m.versions].reverse().map((v) => h('tr', { 'data-version': v.version },
      h('td', {}, h('span', { class: 'badge version-tag', text: `v${v.version}` })),
      h('td', {}, h('span', { class: 'aliases' }, v.aliases.map(aliasBadge))),
      h('td', {}, v.run_id ? [runLink(v.run_id, v.run_name || shortId(v.run_id)), ' ', v.run_status ? statusBadge(v.run_status) : h('span', { class: 'muted', text: '(run deleted)' })] : h('span', { class: 'muted', text: 'no run' })),
      h('td', { class: 'mono', text: v.source }),
      h('td', { class: 'muted', text: fmtTime(v.created_at) })));
    return h('section', { class: 'card model-card', 'data-model': m.name }, head,
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Version', 'Aliases', 'Run', 'Source', 'Registered'].map((t) => h('th', { text: t })))),
        h('tbody', {}, rows))));
  }

  async function viewModels() {
    const { models } = await api('/api/models');
    const page = h('div', {}, h('div', { class: 'page-head' }, h('h1', { text: 'Model registry' }),
      h('span', { class: 'muted', text: `${models.length} model${models.length === 1 ? '' : 's'}` })));
    if (models.length === 0) page.append(h('section', { class: 'card' }, h('div', { class: 'empty', text: 'No registered models. Register one with `deepgo models register`.' })));
    models.forEach((m) => page.append(modelCard(m, true)));
    return page;
  }

  async function viewModel(name) {
    const m = await api(`/api/models/${encodeURIComponent(name)}`);
    return h('div', {}, h('div', { class: 'page-head' }, h('div', { class: 'crumbs' }, h('a', { href: '#/models', text: 'Models' }), ' / ', m.name), h('h1', { text: m.name })),
      modelCard(m, false));
  }

  // ---------- router ----------
  let renderToken = 0;
  function route() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const [p, qs] = raw.split('?');
    const q = new URLSearchParams(qs || '');
    const parts = p.split('/').filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch (e) { return x; } });
    const section = parts[0] === 'models' ? 'models' : 'runs';
    document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === section));
    const token = ++renderToken;
    const app = document.getElementById('app');
    let view;
    if (parts.length === 0 || (parts[0] === 'runs' && parts.length === 1)) view = viewRuns();
    else if (parts[0] === 'runs' && parts.length === 2) view = viewRun(parts[1]);
    else if (parts[0] === 'compare') view = viewCompare((q.get('runs') || '').split(',').filter(Boolean));
    else if (parts[0] === 'models' && parts.length === 1) view = viewModels();
    else if (parts[0] === 'models' && parts.length === 2) view = viewModel(parts[1]);
    else view = Promise.reject(new Error(`No page ${raw}`));
    document.title = `deepgo · ${section === 'models' ? 'models' : 'runs'}`;
    view.then((el) => { if (token === renderToken) app.replaceChildren(el); })
      .catch((err) => { if (token === renderToken) app.replaceChildren(errorBox(err)); });
  }
  window.addEventListener('hashchange', route);
  document.getElementById('refresh').addEventListener('click', (e) => {
    e.preventDefault();
    histCache = new Map();
    route();
  });
  route();
})();
