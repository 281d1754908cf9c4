// deepgo model server page: draw a digit, see the model's prediction live,
// plus server metrics and drift status. Plain JavaScript, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d", { willReadFrequently: true });
const preview = $("preview"), pctx = preview.getContext("2d");

const state = {
  models: [], model: null, meta: null, inputName: null, inputShape: null,
  probsOutput: false, imageInput: false,
  drawing: false, last: null, dirty: false, inflight: false, hasInk: false,
  lastInput: null, lastResult: null, requests: 0, prev: null, rps: [],
};
// Exposed for tests and the curious.
window.deepgo = { state, preprocess, predictNow: () => predict() };

// ---------------------------------------------------------------- drawing

const BRUSH = 0.075; // stroke width as a share of the pad side

function pos(ev) {
  const r = pad.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * pad.width / r.width, y: (ev.clientY - r.top) * pad.height / r.height };
}

function stroke(a, b) {
  ctx.strokeStyle = "#ffffff";
  ctx.fillStyle = "#ffffff";
  ctx.lineWidth = pad.width * BRUSH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (a.x === b.x && a.y === b.y) {
    ctx.beginPath();
    ctx.arc(a.x, a.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  }
  state.hasInk = true;
  $("hint").style.display = "none";
  schedule();
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  state.drawing = true;
  state.last = pos(ev);
  stroke(state.last, state.last);
});
pad.addEventListener("pointermove", (ev) => {
  if (!state.drawing) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of (events.length ? events : [ev])) {
    const p = pos(e);
    stroke(state.last, p);
    state.last = p;
  }
});
for (const t of ["pointerup", "pointercancel", "pointerleave"]) {
  pad.addEventListener(t, () => {
    if (state.drawing) { state.drawing = false; schedule(); }
  });
}
// Touch devices: keep the page from scrolling while drawing.
pad.addEventListener("touchstart", (ev) => ev.preventDefault(), { passive: false });
pad.addEventListener("touchmove", (ev) => ev.preventDefault(), { passive: false });

$("clear").addEventListener("click", () => {
  ctx.clearRect(0, 0, pad.width, pad.height);
  pctx.clearRect(0, 0, 28, 28);
  state.hasInk = false;
  state.lastInput = null;
  state.lastResult = null;
  $("hint").style.display = "";
  $("pred-digit").textContent = "–";
  $("pred-conf").textContent = "draw something";
  $("pred-lat").textContent = "";
  renderBars(null);
});

// ------------------------------------------------------ MNIST preprocessing
// The same steps as deepgo's data/image package (Preprocess with the MNIST
// options): ink from the alpha channel, contrast stretch, crop to the
// pixels above 0.1, scale the longer side to 20 pixels (area averaging when
// shrinking, linear when enlarging), paste into 28×28 so that the centre of
// mass falls on pixel (14, 14).

function resampleWeights(n, m) {
  const out = [];
  const s = n / m;
  for (let j = 0; j < m; j++) {
    const taps = [];
    if (s >= 1) {
      const lo = j * s, hi = (j + 1) * s;
      for (let i = Math.floor(lo); i < n && i < hi; i++) {
        const cover = Math.min(hi, i + 1) - Math.max(lo, i);
        if (cover > 1e-9) taps.push([i, cover / s]);
      }
    } else {
      let x = (j + 0.5) * s - 0.5;
      x = Math.min(Math.max(x, 0), n - 1);
      const i0 = Math.floor(x), f = x - i0;
      if (i0 + 1 < n && f > 1e-9) taps.push([i0, 1 - f], [i0 + 1, f]);
      else taps.push([i0, 1]);
    }
    out.push(taps);
  }
  return out;
}

function resize(pix, w, h, nw, nh) {
  const wx = resampleWeights(w, nw), wy = resampleWeights(h, nh);
  const tmp = new Float32Array(nw * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < nw; x++) {
      let s = 0;
      for (const [i, wt] of wx[x]) s += wt * pix[y * w + i];
      tmp[y * nw + x] = s;
    }
  }
  const out = new Float32Array(nw * nh);
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      let s = 0;
      for (const [i, wt] of wy[y]) s += wt * tmp[i * nw + x];
      out[y * nw + x] = Math.min(Math.max(s, 0), 1);
    }
  }
  return out;
}

// preprocess turns w×h ink values in [0, 1] into 784 MNIST-style values.
function preprocess(g, w, h, size = 28, box = 20, threshold = 0.1) {
  const out = new Float32Array(size * size);
  const border = [];
  for (let x = 0; x < w; x++) { border.push(g[x]); border.push(g[(h - 1) * w + x]); }
  for (let y = 1; y < h - 1; y++) { border.push(g[y * w]); border.push(g[y * w + w - 1]); }
  border.sort((a, b) => a - b);
  const bg = border[Math.floor(border.length / 2)];
  let peak = 0;
  for (const v of g) peak = Math.max(peak, v);
  if (peak - bg < 1e-3) return out;
  const scale = 1 / (peak - bg);
  const c = new Float32Array(w * h);
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = Math.min(Math.max((g[y * w + x] - bg) * scale, 0), 1);
      if (v <= threshold) v = 0;
      else { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
      c[y * w + x] = v;
    }
  }
  if (x1 < 0) return out;
  const cw = x1 - x0 + 1, ch = y1 - y0 + 1;
  const crop = new Float32Array(cw * ch);
  for (let y = 0; y < ch; y++) crop.set(c.subarray((y0 + y) * w + x0, (y0 + y) * w + x1 + 1), y * cw);
  let sw, sh;
  if (cw >= ch) { sw = box; sh = Math.max(1, Math.round(ch * box / cw)); }
  else { sh = box; sw = Math.max(1, Math.round(cw * box / ch)); }
  const small = resize(crop, cw, ch, sw, sh);
  let m = 0, mx = 0, my = 0;
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) {
    const v = small[y * sw + x]; m += v; mx += v * x; my += v * y;
  }
  const ctr = Math.floor(size / 2);
  let ox = Math.floor((size - sw) / 2), oy = Math.floor((size - sh) / 2);
  if (m > 0) { ox = Math.round(ctr - mx / m); oy = Math.round(ctr - my / m); }
  ox = Math.min(Math.max(ox, 0), size - sw);
  oy = Math.min(Math.max(oy, 0), size - sh);
  for (let y = 0; y < sh; y++) out.set(small.subarray(y * sw, (y + 1) * sw), (oy + y) * size + ox);
  return out;
}

function padInk() {
  const d = ctx.getImageData(0, 0, pad.width, pad.height).data;
  const g = new Float32Array(pad.width * pad.height);
  for (let i = 0; i < g.length; i++) g[i] = d[4 * i + 3] / 255;
  return g;
}

function drawPreview(x) {
  const img = pctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(255 * x[i]);
    img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  pctx.putImageData(img, 0, 0);
}

// ------------------------------------------------------------- inference

function schedule() {
  state.dirty = true;
  if (!state.inflight) requestAnimationFrame(() => predict());
}

function softmax(v) {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

async function predict() {
  if (state.inflight || !state.dirty || !state.model || !state.imageInput || !state.hasInk) return;
  state.dirty = false;
  state.inflight = true;
  const x = preprocess(padInk(), pad.width, pad.height);
  state.lastInput = Array.from(x);
  drawPreview(x);
  const shape = state.inputShape.map((d) => (d < 0 ? 1 : d));
  const body = {
    id: "web-" + (++state.requests),
    inputs: [{ name: state.inputName, shape, datatype: "FP32", data: state.lastInput }],
  };
  if (state.probsOutput) body.outputs = [{ name: "probabilities" }];
  const t0 = performance.now();
  try {
    const r = await fetch(`/v2/models/${encodeURIComponent(state.model)}/infer`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    let p = j.outputs[0].data.map(Number);
    if (!state.probsOutput) p = softmax(p);
    let best = 0;
    p.forEach((v, i) => { if (v > p[best]) best = i; });
    state.lastResult = { digit: best, probs: p, ms: performance.now() - t0 };
    $("pred-digit").textContent = String(best);
    $("pred-conf").textContent = `${(100 * p[best]).toFixed(1)}% confident`;
    $("pred-lat").textContent = `round trip ${state.lastResult.ms.toFixed(1)} ms · model ${j.model_name} v${j.model_version || "?"}`;
    renderBars(p, best);
  } catch (e) {
    $("pred-conf").textContent = "error";
    $("pred-lat").textContent = String(e.message || e);
  } finally {
    state.inflight = false;
    if (state.dirty) requestAnimationFrame(() => predict());
  }
}

function renderBars(p, best) {
  const el = $("bars");
  const n = p ? p.length : 10;
  if (el.children.length !== n) {
    el.innerHTML = "";
    for (let i = 0; i < n; i++) {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = `<span class="lbl">${i}</span><div class="track"><div class="fill"></div></div><span class="pct">–</span>`;
      el.appendChild(row);
    }
  }
  [...el.children].forEach((row, i) => {
    const v = p ? p[i] : 0;
    row.classList.toggle("top", p != null && i === best);
    row.querySelector(".fill").style.width = `${(100 * v).toFixed(1)}%`;
    row.querySelector(".pct").textContent = p ? `${(100 * v).toFixed(1)}%` : "–";
  });
}

// ---------------------------------------------------------- models, status

async function loadModels() {
  try {
    const r = await fetch("/v2/models");
    const j = await r.json();
    state.models = (j.models || []).map((m) => m.name);
  } catch (e) {
    state.models = [];
  }
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of state.models) {
    const o = document.createElement("option");
    o.value = o.textContent = m;
    sel.appendChild(o);
  }
  // Prefer a model that takes 28×28 images.
  for (const m of state.models) {
    if (await selectModel(m)) { sel.value = m; return; }
  }
  if (state.models.length) { sel.value = state.models[0]; await selectModel(state.models[0]); }
  else $("draw-note").textContent = "no model is loaded";
}

async function selectModel(name) {
  state.model = name;
  try {
    const r = await fetch(`/v2/models/${encodeURIComponent(name)}`);
    const md = await r.json();
    state.meta = md;
    const inp = md.inputs[0];
    state.inputName = inp.name;
    state.inputShape = inp.shape;
    const s = inp.shape.filter((d) => d !== 1 && d !== -1);
    state.imageInput = inp.datatype === "FP32" && s.length === 2 && s[0] === 28 && s[1] === 28;
    state.probsOutput = (md.outputs || []).some((o) => o.name === "probabilities");
    $("draw-note").textContent = state.imageInput
      ? `input “${inp.name}” [${inp.shape.join(", ")}] · drawings are preprocessed like MNIST in the browser`
      : `model ${name} does not take 28×28 images (input ${inp.name} [${inp.shape.join(", ")}]): drawing is off`;
    state.dirty = true;
    predict();
    return state.imageInput;
  } catch (e) {
    state.imageInput = false;
    return false;
  }
}
$("model").addEventListener("change", (ev) => selectModel(ev.target.value));

function fmtNum(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v));
}
function fmtMs(v) { return v > 0 ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) + " ms" : "–"; }
function fmtUp(s) {
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}
function psiColor(v) { return v >= 0.25 ? "var(--bad)" : v >= 0.1 ? "var(--warn)" : "var(--ok)"; }
function esc(s) { return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }
function setBadge(el, cls, text) { el.className = "badge " + cls; el.textContent = text; }

async function poll() {
  try {
    const r = await fetch("/monitor/status");
    const st = await r.json();
    renderStatus(st);
  } catch (e) {
    setBadge($("ready"), "bad", "offline");
  } finally {
    setTimeout(poll, 2000);
  }
}

function renderStatus(st) {
  const srv = st.server;
  setBadge($("ready"), srv.ready ? "ok" : "bad", srv.ready ? "ready" : "not ready");
  $("footer").textContent = `${srv.name} ${srv.version} · ${srv.goroutines} goroutines · extensions: ${(srv.extensions || []).join(", ")}`;
  const m = (st.models || []).find((x) => x.name === state.model) || (st.models || [])[0];
  if (m) {
    const total = m.success + m.failed, now = Date.parse(st.time);
    if (state.prev && state.prev.model === m.name && now > state.prev.t) {
      const rps = Math.max(0, (total - state.prev.total) / ((now - state.prev.t) / 1000));
      $("m-rps").textContent = rps.toFixed(1);
      state.rps.push(rps);
      if (state.rps.length > 60) state.rps.shift();
      drawSpark();
    }
    state.prev = { model: m.name, total, t: now };
    $("m-p50").textContent = fmtMs(m.latency_p50_ms);
    $("m-p99").textContent = fmtMs(m.latency_p99_ms);
    $("m-batch").textContent = m.avg_batch ? m.avg_batch.toFixed(2) : "–";
    $("m-inf").textContent = fmtNum(m.inferences);
    $("m-fail").textContent = fmtNum(m.failed);
    $("m-queue").textContent = `${m.queue_depth} / ${m.inflight}`;
  }
  $("m-up").textContent = fmtUp(srv.uptime_seconds);
  renderDrift(st, m ? m.name : null);
}

// drawSpark plots the recent requests/s samples.
function drawSpark() {
  const c = $("spark"), g = c.getContext("2d"), v = state.rps;
  const w = c.width, h = c.height, pad = 10;
  g.clearRect(0, 0, w, h);
  const mx = Math.max(1, ...v);
  g.strokeStyle = "#263049";
  g.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = pad + (h - 2 * pad) * i / 4;
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
  }
  if (v.length < 2) return;
  const x = (i) => (w * i) / 59, y = (r) => h - pad - (h - 2 * pad) * r / mx;
  const off = 60 - v.length;
  g.beginPath();
  v.forEach((r, i) => (i ? g.lineTo(x(off + i), y(r)) : g.moveTo(x(off + i), y(r))));
  g.lineWidth = 2.5;
  g.strokeStyle = "#5b9dff";
  g.stroke();
  g.lineTo(x(59), h - pad); g.lineTo(x(off), h - pad); g.closePath();
  const grad = g.createLinearGradient(0, 0, 0, h);
  grad.addColorStop(0, "rgba(91,157,255,.35)");
  grad.addColorStop(1, "rgba(91,157,255,0)");
  g.fillStyle = grad;
  g.fill();
  g.fillStyle = "#8a96b0";
  g.font = "20px system-ui, sans-serif";
  g.fillText(`max ${mx.toFixed(1)}/s`, 10, 28);
}

function renderDrift(st, name) {
  const badge = $("drift-badge"), body = $("drift-body");
  if (!st.drift_enabled) {
    setBadge(badge, "", "off");
    body.innerHTML = `<p class="muted">Drift monitoring is off. Start the server with <code>--drift</code> (on by default in <code>deepgo serve</code>).</p>`;
    return;
  }
  const d = (st.drift || []).find((x) => x.model === name);
  if (!d) {
    setBadge(badge, "", "idle");
    body.innerHTML = `<p class="muted">No traffic seen for ${esc(name || "this model")} yet.</p>`;
    return;
  }
  if (!d.monitored) {
    setBadge(badge, "", "no profile");
    body.innerHTML = `<p class="muted">${esc(d.reason || "no reference profile")}</p>`;
    return;
  }
  const firing = d.alerts.filter((a) => a.state === "firing");
  const pending = d.alerts.filter((a) => a.state === "pending");
  if (firing.some((a) => a.severity === "critical")) setBadge(badge, "bad", "drift");
  else if (firing.length) setBadge(badge, "warn", "warning");
  else if (!d.last) setBadge(badge, "", `collecting ${d.window_rows}/${d.window_size}`);
  else if (pending.length) setBadge(badge, "warn", "pending");
  else setBadge(badge, "ok", "stable");
  const w = d.last;
  const kv = [
    ["window", `${d.window_rows} / ${d.window_size} rows`],
    ["windows", d.windows],
    ["rows seen", fmtNum(d.rows_total)],
  ];
  if (w) {
    kv.push(["max input PSI", `<b style="color:${psiColor(w.feature_psi_max)}">${w.feature_psi_max.toFixed(3)}</b> (${esc(w.max_feature)})`]);
    if (w.has_predictions) {
      kv.push(["prediction PSI", `<b style="color:${psiColor(w.prediction_psi)}">${w.prediction_psi.toFixed(3)}</b>`]);
      kv.push(["confidence PSI", `<b style="color:${psiColor(w.confidence_psi)}">${w.confidence_psi.toFixed(3)}</b>`]);
      kv.push(["confidence", `${(100 * w.confidence_mean).toFixed(1)}% (train ${(100 * d.ref_confidence_mean).toFixed(1)}%)`]);
    }
  }
  const alerts = d.alerts.map((a) => {
    const cls = a.state === "firing" ? (a.severity === "critical" ? "bad" : "warn") : a.state === "pending" ? "warn" : "ok";
    return `<li><span>${esc(a.name)} <span class="muted">${esc(a.metric)} ${esc(a.op)} ${a.threshold}</span></span><span class="badge ${cls}">${esc(a.state)}</span></li>`;
  }).join("");
  let feats = "";
  if (w) {
    const top = [...w.features].sort((a, b) => b.psi - a.psi).slice(0, 8);
    const scale = Math.max(0.5, top.length ? top[0].psi : 0);
    feats = top.map((f) => `<div class="psi-row"><span>${esc(f.name)}</span><div class="track"><div class="fill" style="width:${(100 * Math.min(f.psi / scale, 1)).toFixed(1)}%;background:${psiColor(f.psi)}"></div></div><span>${f.psi.toFixed(3)}</span></div>`).join("");
  } else {
    feats = `<p class="muted small">The first window is evaluated after ${d.window_size} rows.</p>`;
  }
  let dist = "";
  if (d.ref_class_share) {
    const live = w && w.class_share ? w.class_share : null;
    const mx = Math.max(...d.ref_class_share, ...(live || [0]), 0.01);
    dist = `<div class="dist">` + d.ref_class_share.map((r, i) => {
      const lbl = d.labels && d.labels[i] ? d.labels[i] : i;
      const lv = live ? live[i] : 0;
      return `<div class="col"><div class="pair"><div class="ref" style="height:${(100 * r / mx).toFixed(0)}%"></div><div class="live" style="height:${(100 * lv / mx).toFixed(0)}%"></div></div><span class="c">${esc(lbl)}</span></div>`;
    }).join("") + `</div><p class="muted small"><span style="color:#6f7fa8">■</span> training &nbsp; <span style="color:var(--accent)">■</span> live window</p>`;
  }
  body.className = "";
  body.innerHTML = `<div class="drift-grid">
    <div><h3>Window</h3><div class="kv">${kv.map(([k, v]) => `<span class="k">${k}</span><span>${v}</span>`).join("")}</div>
      <h3 style="margin-top:12px">Alert rules</h3><ul class="alerts">${alerts}</ul></div>
    <div><h3>Input feature PSI</h3>${feats}</div>
    <div><h3>Predicted classes</h3>${dist || '<p class="muted small">no class outputs</p>'}</div>
  </div>`;
}

renderBars(null);
loadModels().then(poll);
