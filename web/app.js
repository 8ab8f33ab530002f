/* app.js - behaviour of the demo page (index.html) of `onyx serve`: lists the
 * models (KServe v2 repository index, metadata, config), runs them from a
 * drawing pad, an uploaded image or a form generated from the input shape,
 * shows the result, the exact request/response and live /metrics.
 *
 * Owns: the page's logic, including the canvas-to-tensor preprocessing of
 * drawings. Does not own: the protocol (docs/server.md) or server-side image
 * preprocessing (src/server/image.c). Plain browser JavaScript, no build step,
 * no request to anything but the server that served the page.
 */
'use strict';

(function () {
  const METRICS_PERIOD_MS = 2000;
  const TOPK_MAX = 10;          /* classes shown as bars */
  const PAD_LINE = 22;          /* brush width on the 280 px pad */
  const CROP_MARGIN = 0.06;     /* blank border around a cropped drawing, per side */

  const state = {
    server: null,
    models: [],       /* see describeModel() */
    current: null,    /* the selected model */
    seq: 0,           /* results shown so far (tests wait for it to change) */
    lastFile: null,   /* the last uploaded Blob, resent when "invert" changes */
    lastMetrics: null,
    busy: false,
  };

  // --------------------------------------------------------------------------
  // Small helpers

  const $ = (id) => document.getElementById(id);

  /* h('div', {class: 'x', onclick: f}, child, ...) */
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  /* JSON.parse that also takes the NaN / Infinity tokens the server writes
   * for such floats (as Python's json does). */
  function parseJSON(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      try {
        return JSON.parse(text.replace(/(?<=[\[,:]\s*)-?(NaN|Infinity)(?=\s*[\],}])/g, 'null'));
      } catch (e2) {
        return null;
      }
    }
  }

  /* fetch() that never throws: {ok, status, json, text, ms}. */
  async function call(method, path, body, headers) {
    const t0 = performance.now();
    try {
      const r = await fetch(path, { method, body, headers, cache: 'no-store' });
      const text = await r.text();
      return { ok: r.ok, status: r.status, text, json: parseJSON(text), ms: performance.now() - t0 };
    } catch (e) {
      return { ok: false, status: 0, text: String(e), json: null, ms: performance.now() - t0 };
    }
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '–';
    return ms < 10 ? ms.toFixed(2) + ' ms' : ms < 1000 ? ms.toFixed(1) + ' ms' : (ms / 1000).toFixed(2) + ' s';
  }

  function fmtNum(v) {
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toFixed(4));
  }

  /* JSON with one item per line, except arrays of plain values, which stay
   * on one line (a 64-number tensor is one line, not 64). */
  function pretty(obj) {
    /* "[\n" only appears where an array opens: never inside a JSON string */
    return JSON.stringify(obj, null, 1).replace(/\[\n[^\[\]{}]*?\n *\]/g,
      (a) => '[' + a.slice(1, -1).trim().split(/,\n */).join(', ') + ']');
  }

  function shapeText(shape) { return '[' + shape.map((d) => (d < 0 ? '?' : d)).join(',') + ']'; }

  function errorText(r) {
    if (r.json && r.json.error) return r.json.error;
    if (r.status === 0) return 'cannot reach the server: ' + r.text;
    return 'HTTP ' + r.status + ': ' + r.text.slice(0, 300);
  }

  // --------------------------------------------------------------------------
  // Models: what each one takes, decided from metadata + config

  function params(config) {
    const out = {};
    const p = (config && config.parameters) || {};
    for (const [k, v] of Object.entries(p)) out[k] = v && typeof v === 'object' ? v.string_value : v;
    return out;
  }

  const NUMERIC = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64',
    'FP16', 'BF16', 'FP32', 'FP64'];

  /* The settings for feeding pixels to an image input, or null. Mirrors the
   * server's rule (docs/server.md, "Images over the protocol"): one float or
   * uint8 input of rank 4 (batch first) or 3, channels 1 or 3. */
  function imageSpec(meta, p) {
    if (!meta || meta.inputs.length !== 1) return null;
    const inp = meta.inputs[0];
    if (!['FP32', 'FP16', 'FP64', 'UINT8'].includes(inp.datatype)) return null;
    const rank = inp.shape.length;
    if (rank !== 3 && rank !== 4) return null;
    const s = rank === 4 ? inp.shape.slice(1) : inp.shape.slice();
    const isC = (d) => d === 1 || d === 3;
    let layout = p.layout;
    if (layout !== 'nchw' && layout !== 'nhwc') layout = isC(s[2]) && !isC(s[0]) ? 'nhwc' : 'nchw';
    let [c, hh, ww] = layout === 'nchw' ? s : [s[2], s[0], s[1]];
    if (!isC(c)) {
      if (c > 0) return null;
      c = 3;
    }
    if (hh <= 0 || ww <= 0) {
      const m = /^(\d+)(?:x(\d+))?$/.exec(p.image_size || '224');
      hh = m ? +m[1] : 224;
      ww = m ? +(m[2] || m[1]) : 224;
    }
    return { input: inp.name, datatype: inp.datatype, batched: rank === 4, layout, C: c, H: hh, W: ww };
  }

  /* Fields for a form, or null: every input numeric of shape [F], [N,F] or
   * [N] (one field). Names from the "feature_names" parameter when it fits. */
  function tabularSpec(meta, p) {
    if (!meta || !meta.inputs.length) return null;
    const names = (p.feature_names || '').split(',').map((s) => s.trim()).filter(Boolean);
    const example = (p.example_input || '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    const inputs = [];
    let total = 0;
    for (const inp of meta.inputs) {
      if (!NUMERIC.includes(inp.datatype)) return null;
      const s = inp.shape;
      let f, shape;
      if (s.length === 2 && s[1] > 0 && (s[0] < 0 || s[0] === 1)) { f = s[1]; shape = [1, f]; }
      else if (s.length === 1 && s[0] < 0) { f = 1; shape = [1]; }
      else if (s.length === 1 && s[0] > 0) { f = s[0]; shape = [f]; }
      else return null;
      if (f > 64) return null;
      inputs.push({ name: inp.name, datatype: inp.datatype, count: f, shape });
      total += f;
    }
    const fields = [];
    for (const inp of inputs)
      for (let j = 0; j < inp.count; j++) {
        const k = fields.length;
        const label = names.length === total ? names[k]
          : inp.count === 1 ? inp.name : `${inp.name}[${j}]`;
        fields.push({ input: inp.name, label, example: example.length === total ? example[k] : '0' });
      }
    return { inputs, fields };
  }

  async function describeModel(entry) {
    const name = entry.name;
    const [meta, cfg] = await Promise.all([
      call('GET', `/v2/models/${encodeURIComponent(name)}`),
      call('GET', `/v2/models/${encodeURIComponent(name)}/config`),
    ]);
    const m = {
      name,
      state: entry.state,
      reason: entry.reason || (meta.json && meta.json.error) || null,
      versions: (meta.json && meta.json.versions) || [],
      meta: meta.ok ? meta.json : null,
      config: cfg.ok ? cfg.json : null,
    };
    m.params = params(m.config);
    m.image = imageSpec(m.meta, m.params);
    m.tabular = m.image ? null : tabularSpec(m.meta, m.params);
    m.kind = m.image ? 'image' : m.tabular ? 'tabular' : 'raw';
    return m;
  }

  async function loadModels() {
    const [srv, idx] = await Promise.all([call('GET', '/v2'), call('POST', '/v2/repository/index', '{}')]);
    if (srv.ok && srv.json) {
      state.server = srv.json;
      $('server-version').textContent = srv.json.version ? 'version ' + srv.json.version : '';
    }
    const box = $('models');
    if (!idx.ok || !Array.isArray(idx.json)) {
      box.replaceChildren(h('p', { class: 'error-box' }, 'Cannot list models: ' + errorText(idx)));
      return;
    }
    /* One entry per model: the index has one row per version. */
    const byName = new Map();
    for (const e of idx.json) {
      const prev = byName.get(e.name);
      if (!prev || (e.state === 'READY' && prev.state !== 'READY')) byName.set(e.name, e);
    }
    state.models = await Promise.all([...byName.values()].map(describeModel));
    renderModels();
    const wanted = new URLSearchParams(location.hash.slice(1)).get('model');
    const first = state.models.find((m) => m.name === wanted)
      || state.models.find((m) => m.kind === 'image' && m.state === 'READY')
      || state.models[0];
    if (first) selectModel(first.name);
  }

  function ioLines(list, dir) {
    return (list || []).map((io) => h('div', {},
      h('span', { class: 'dir' }, dir), `${io.name}: ${io.datatype}${shapeText(io.shape)}`,
      io.onyx_type ? h('span', { class: 'muted' }, ` (${io.onyx_type})`) : null));
  }

  function renderModels() {
    const box = $('models');
    if (!state.models.length) {
      box.replaceChildren(h('p', { class: 'muted' }, 'No models are loaded.'));
      return;
    }
    box.replaceChildren(...state.models.map((m) => h('div', {
      class: 'model', 'data-model': m.name, tabindex: 0, role: 'button',
      onclick: () => selectModel(m.name),
      onkeydown: (ev) => { if (ev.key === 'Enter') selectModel(m.name); },
    },
    h('div', { class: 'model-head' },
      h('span', { class: 'model-name' }, m.name),
      h('span', { class: 'badge' + (m.state === 'READY' ? '' : ' bad') }, m.state || '?'),
      h('span', { class: 'muted small' }, 'version ' + (m.versions.join(', ') || '–')),
      h('span', { class: 'muted small' }, m.kind === 'image' ? 'image input' : m.kind === 'tabular' ? 'tabular' : '')),
    h('div', { class: 'io' }, ioLines(m.meta && m.meta.inputs, 'in'), ioLines(m.meta && m.meta.outputs, 'out')),
    m.reason ? h('div', { class: 'err' }, m.reason) : null)));
  }

  // --------------------------------------------------------------------------
  // Playground: selecting a model

  function selectModel(name) {
    const m = state.models.find((x) => x.name === name);
    if (!m) return;
    state.current = m;
    state.lastFile = null;
    history.replaceState(null, '', '#model=' + encodeURIComponent(name));
    for (const el of document.querySelectorAll('.model'))
      el.classList.toggle('selected', el.dataset.model === name);
    const tabs = $('model-tabs');
    tabs.replaceChildren(...state.models.map((x) => h('button', {
      type: 'button', role: 'tab', 'data-model': x.name, 'aria-selected': String(x.name === name),
      onclick: () => selectModel(x.name),
    }, x.name)));
    $('model-description').textContent = m.params.description
      || (m.meta ? `Inputs: ${m.meta.inputs.map((i) => i.name + shapeText(i.shape)).join(', ')}` : '');
    $('image-input').hidden = m.kind !== 'image';
    $('tabular-input').hidden = m.kind !== 'tabular';
    $('raw-input').hidden = m.kind !== 'raw';
    $('seen-wrap').hidden = true;
    $('pad-result').replaceChildren();
    showIdle();
    if (m.kind === 'image') setupImage(m);
    if (m.kind === 'tabular') setupForm(m);
    showRequest(`POST /v2/models/${m.name}/infer`, templateRequest(m));
    $('resp-body').textContent = '';
    $('resp-status').textContent = '';
  }

  function templateRequest(m) {
    if (!m.meta) return '';
    const inputs = m.meta.inputs.map((i) => {
      const shape = i.shape.map((d) => (d < 0 ? 1 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      const zero = i.datatype === 'BYTES' ? '' : i.datatype === 'BOOL' ? false : 0;
      return { name: i.name, shape, datatype: i.datatype, data: n <= 4096 ? new Array(n).fill(zero) : [] };
    });
    return pretty({ inputs });
  }

  // --------------------------------------------------------------------------
  // Results

  function showIdle() {
    $('result').replaceChildren(h('p', { class: 'muted' }, 'Run the model to see its output here.'));
  }

  function showRequest(line, body) {
    $('req-line').textContent = line;
    $('req-body').value = body;
  }

  function showResponse(r) {
    $('resp-status').textContent = r.status ? `HTTP ${r.status} in ${fmtMs(r.ms)}` : 'no answer';
    const text = r.json ? pretty(r.json) : r.text;
    $('resp-body').textContent = text.length > 20000 ? text.slice(0, 20000) + '\n…' : text;
  }

  function finish(box, status) {
    const res = $('result');
    state.seq += 1;
    res.dataset.seq = String(state.seq);
    res.dataset.status = status;
    res.dataset.model = state.current ? state.current.name : '';
    res.replaceChildren(...box);
  }

  function showError(msg) {
    finish([h('p', { class: 'error-box', id: 'result-error' }, msg)], 'error');
  }

  /* Bars for [{label, score}], highest first. Scores that are not all
   * within [0, 1] are shown as plain numbers with bars relative to the max. */
  function bars(items) {
    const probs = items.every((x) => x.score >= 0 && x.score <= 1);
    const max = Math.max(...items.map((x) => Math.abs(x.score)), 1e-12);
    return h('div', { class: 'bars', id: 'result-bars' }, items.map((x, i) => h('div', {
      class: 'bar' + (i === 0 ? ' top' : ''), 'data-label': x.label, 'data-score': String(x.score),
    },
    h('span', { class: 'name', title: x.label }, x.label),
    h('span', { class: 'track' }, h('span', {
      class: 'fill', style: `display:block;width:${(100 * (probs ? x.score : Math.abs(x.score) / max)).toFixed(2)}%`,
    })),
    h('span', { class: 'val' }, probs ? (100 * x.score).toFixed(2) + '%' : fmtNum(x.score)))));
  }

  /* "0.912345:281:tabby" -> {score, index, label} */
  function parseClass(s) {
    const a = String(s).split(':');
    const score = parseFloat(a[0]);
    const index = parseInt(a[1], 10);
    return { score, index, label: a.length > 2 ? a.slice(2).join(':') : String(index) };
  }

  /* Renders an inference answer: a headline (label or value), bars for class
   * scores (classification strings or ZipMap maps), other outputs compactly. */
  function showAnswer(r, extra) {
    const outs = (r.json && r.json.outputs) || [];
    let headline = null;
    let headlineWhat = '';
    const parts = [];
    for (const o of outs) {
      const data = Array.isArray(o.data) ? o.data : [];
      if (o.datatype === 'MAP' && data.length && typeof data[0] === 'object') {
        const items = Object.entries(data[0]).map(([label, score]) => ({ label, score: Number(score) }))
          .sort((a, b) => b.score - a.score);
        parts.push(h('h3', {}, o.name), bars(items.slice(0, TOPK_MAX)));
        if (headline === null && items.length) { headline = items[0].label; headlineWhat = 'most likely class'; }
      } else if (o.datatype === 'BYTES' && data.length && /^-?[\d.]+(e[-+]?\d+)?:\d+(:|$)/i.test(String(data[0]))) {
        const k = o.shape[o.shape.length - 1];
        const items = data.slice(0, k).map(parseClass);
        parts.push(h('h3', {}, `${o.name} (top ${items.length})`), bars(items));
        headline = items[0].label;
        headlineWhat = 'top class';
      } else if (data.length === 1 && (o.datatype === 'BYTES' || o.datatype.startsWith('INT') || o.datatype.startsWith('UINT'))) {
        headline = String(data[0]);
        headlineWhat = o.name;
      } else if (data.length === 1) {
        parts.push(h('h3', {}, o.name), h('div', { class: 'value-out', 'data-output': o.name, 'data-value': String(data[0]) },
          fmtNum(Number(data[0]))));
        if (headline === null) { headline = fmtNum(Number(data[0])); headlineWhat = o.name; }
      } else {
        const flat = data.flat(Infinity);
        parts.push(h('h3', {}, `${o.name}: ${o.datatype}${shapeText(o.shape || [])}`),
          h('div', { class: 'tensor-out' }, flat.slice(0, 32).map(fmtNum).join(', ') + (flat.length > 32 ? ', …' : '')));
      }
    }
    const head = h('p', { class: 'prediction' },
      headline !== null ? h('strong', { id: 'result-label' }, headline) : null,
      headline !== null ? h('span', { class: 'muted' }, headlineWhat) : null,
      h('br'),
      h('span', { class: 'latency', id: 'result-latency', 'data-ms': r.ms.toFixed(3) },
        `round trip ${fmtMs(r.ms)}` + (extra ? ' · ' + extra : '')));
    finish([head, ...parts], 'done');
    /* Next to the pad too: on a phone the result pane is a screen further down. */
    const top = $('result-bars') && $('result-bars').querySelector('.bar');
    $('pad-result').replaceChildren(...(extra === 'drawing' && headline !== null
      ? [h('b', {}, headline), top && top.dataset.score >= 0 && top.dataset.score <= 1
        ? `${(100 * Number(top.dataset.score)).toFixed(1)}%` : ''] : []));
    if (extra !== 'drawing' && window.matchMedia('(max-width: 759px)').matches)
      $('output-pane').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  async function infer(m, body, headers, requestText, extra) {
    if (state.busy) return;
    state.busy = true;
    $('result').dataset.status = 'busy';
    const path = `/v2/models/${encodeURIComponent(m.name)}/infer`;
    showRequest('POST ' + path, requestText);
    const r = await call('POST', path, body, headers);
    state.busy = false;
    showResponse(r);
    if (!r.ok || !r.json) showError(errorText(r));
    else showAnswer(r, extra);
    pollMetrics();
  }

  // --------------------------------------------------------------------------
  // Image models: preprocessing of pixels as the server does it
  // (src/io/preprocess.h presets), in float32 steps

  const f32 = Math.fround;
  const IMAGENET_MEAN = [0.485, 0.456, 0.406];
  const IMAGENET_STD = [0.229, 0.224, 0.225];
  const CAFFE_MEAN = [103.939, 116.779, 123.68];

  function numbers(s) {
    return (s || '').split(',').map((x) => parseFloat(x)).filter((x) => isFinite(x));
  }

  /* pixels: (H*W*C) 0..255 integers, HWC order. Returns the input tensor's
   * values in the model's layout, as preprocess.c computes them. */
  function normalize(pixels, spec, p) {
    const { C, H, W } = spec;
    const n = H * W;
    const out = new Array(n * C);
    const put = (i, c, v) => { out[spec.layout === 'nchw' ? c * n + i : i * C + c] = v; };
    if (spec.datatype === 'UINT8') {
      for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) put(i, c, pixels[i * C + c]);
      return out;
    }
    const preset = p.preprocessing || p.preprocess || (C === 3 ? 'imagenet' : 'unit');
    const mean = numbers(p.mean);
    const std = numbers(p.std);
    const custom = mean.length > 0 || std.length > 0;
    let lo = 255, hi = 0;
    if (preset === 'minmax') for (const x of pixels) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++) {
        /* caffe reverses the channels: output channel c reads input 2 - c */
        const x = f32(pixels[i * C + (preset === 'caffe' && C === 3 ? 2 - c : c)]);
        let v;
        switch (preset) {
          case 'imagenet': v = f32(f32(f32(x / 255) - f32(IMAGENET_MEAN[c])) / f32(IMAGENET_STD[c])); break;
          case 'unit': v = f32(x / 255); break;
          case 'tf': v = f32(f32(x / f32(127.5)) - 1); break;
          case 'caffe': v = f32(x - f32(CAFFE_MEAN[c])); break;
          case 'minmax': v = hi > lo ? f32(f32(x - lo) / f32(hi - lo)) : 0; break;
          default: v = x;
        }
        if (custom) {
          const mm = f32(mean.length === 3 ? mean[c] : mean.length ? mean[0] : 0);
          const ss = f32(std.length === 3 ? std[c] : std.length ? std[0] : 1);
          v = f32(f32(v - mm) / ss);
        }
        put(i, c, v);
      }
    return out;
  }

  // --------------------------------------------------------------------------
  // The drawing pad

  const pad = { canvas: null, ctx: null, drawing: false, last: null, dirty: false, timer: 0 };

  function padClear() {
    pad.ctx.fillStyle = '#000';
    pad.ctx.fillRect(0, 0, pad.canvas.width, pad.canvas.height);
    pad.dirty = false;
  }

  function padPoint(ev) {
    const r = pad.canvas.getBoundingClientRect();
    return {
      x: (ev.clientX - r.left) * (pad.canvas.width / r.width),
      y: (ev.clientY - r.top) * (pad.canvas.height / r.height),
    };
  }

  function padStroke(a, b) {
    const c = pad.ctx;
    c.strokeStyle = '#fff';
    c.fillStyle = '#fff';
    c.lineWidth = PAD_LINE;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(a.x, a.y);
    c.lineTo(b.x, b.y);
    c.stroke();
    pad.dirty = true;
  }

  function setupPad() {
    pad.canvas = $('pad');
    pad.ctx = pad.canvas.getContext('2d', { willReadFrequently: true });
    padClear();
    pad.canvas.addEventListener('pointerdown', (ev) => {
      ev.preventDefault();
      pad.canvas.setPointerCapture(ev.pointerId);
      pad.drawing = true;
      pad.last = padPoint(ev);
      padStroke(pad.last, { x: pad.last.x + 0.01, y: pad.last.y });
      clearTimeout(pad.timer);
    });
    pad.canvas.addEventListener('pointermove', (ev) => {
      if (!pad.drawing) return;
      const p = padPoint(ev);
      padStroke(pad.last, p);
      pad.last = p;
    });
    const end = () => {
      if (!pad.drawing) return;
      pad.drawing = false;
      /* Predict when the hand rests, not after every stroke of a "4". */
      clearTimeout(pad.timer);
      pad.timer = setTimeout(predictDrawing, 350);
    };
    pad.canvas.addEventListener('pointerup', end);
    pad.canvas.addEventListener('pointercancel', end);
    $('pad-clear').addEventListener('click', () => {
      clearTimeout(pad.timer);
      padClear();
      showIdle();
      $('pad-result').replaceChildren();
    });
    $('pad-predict').addEventListener('click', predictDrawing);
  }

  /* The drawing as H x W x C pixels 0..255: cropped to the strokes' bounding
   * box (the digits data set's digits fill their frame), made the input's
   * aspect ratio with a small margin, then each output pixel the mean of the
   * pad pixels it covers (area averaging). null when nothing is drawn. */
  function drawingPixels(spec) {
    const { width: PW, height: PH } = pad.canvas;
    const src = pad.ctx.getImageData(0, 0, PW, PH).data;
    let x0 = PW, y0 = PH, x1 = -1, y1 = -1;
    for (let y = 0; y < PH; y++)
      for (let x = 0; x < PW; x++)
        if (src[(y * PW + x) * 4] > 16) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
    if (x1 < 0) return null;
    const { H, W, C } = spec;
    let bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    if (bw * H < bh * W) bw = Math.ceil(bh * W / H); else bh = Math.ceil(bw * H / W);
    bw = Math.round(bw * (1 + 2 * CROP_MARGIN));
    bh = Math.round(bh * (1 + 2 * CROP_MARGIN));
    const cx = Math.floor(x0 + x1 + 1 - bw) >> 1, cy = Math.floor(y0 + y1 + 1 - bh) >> 1;
    const sum = new Float64Array(H * W);
    const colBin = (x) => Math.min(W - 1, Math.floor((x - cx) * W / bw));
    const rowBin = (y) => Math.min(H - 1, Math.floor((y - cy) * H / bh));
    const nx = new Float64Array(W), ny = new Float64Array(H);
    for (let x = cx; x < cx + bw; x++) nx[colBin(x)]++;
    for (let y = cy; y < cy + bh; y++) ny[rowBin(y)]++;
    for (let y = Math.max(0, cy); y < Math.min(PH, cy + bh); y++) {
      const by = rowBin(y);
      for (let x = Math.max(0, cx); x < Math.min(PW, cx + bw); x++)
        sum[by * W + colBin(x)] += src[(y * PW + x) * 4];
    }
    const px = new Array(H * W * C);
    for (let i = 0; i < H * W; i++) {
      const v = Math.min(255, Math.round(sum[i] / (nx[i % W] * ny[Math.floor(i / W)])));
      for (let c = 0; c < C; c++) px[i * C + c] = v;
    }
    return px;
  }

  /* Paints H x W x C pixels on the "input the model saw" canvas, with the
   * tensor's values written in the cells when the image is small and gray. */
  function showSeen(pixels, spec, values, note, exact) {
    const cv = $('seen');
    const { H, W, C } = spec;
    const cell = Math.max(1, Math.floor(208 / Math.max(H, W)));
    cv.width = W * cell;
    cv.height = H * cell;
    const ctx = cv.getContext('2d');
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * C;
        const [r, g, b] = C === 3 ? [pixels[i], pixels[i + 1], pixels[i + 2]] : [pixels[i], pixels[i], pixels[i]];
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(x * cell, y * cell, cell, cell);
      }
    if (values && C === 1 && H * W <= 256 && cell >= 14) {
      /* integers when the values span more than a few units (0..16 for the
       * digits), one decimal otherwise (0..1 inputs) */
      const big = values.some((v) => Math.abs(v) >= 4);
      ctx.font = `${Math.floor(cell * 0.42)}px ${getComputedStyle(document.body).fontFamily}`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const v = values[y * W + x];
          ctx.fillStyle = pixels[y * W + x] > 140 ? '#000' : '#9aa3b0';
          ctx.fillText(big ? String(Math.round(v)) : v.toFixed(1),
            x * cell + cell / 2, y * cell + cell / 2);
        }
    }
    cv.dataset.exact = String(exact);
    cv.dataset.shape = JSON.stringify(values ? [H, W, C] : []);
    cv.dataset.values = values ? JSON.stringify(values) : '';
    $('seen-note').textContent = note;
    $('seen-wrap').hidden = false;
  }

  /* Asks for the first output's top K (the classification extension), with
   * labels when the model has a labels file. */
  function classifyOutputs(m) {
    const out = m.meta && m.meta.outputs[0];
    if (!out || out.datatype === 'MAP' || out.datatype === 'BYTES') return undefined;
    const classes = out.shape[out.shape.length - 1];
    const k = classes > 0 ? Math.min(classes, TOPK_MAX) : 5;
    return [{ name: out.name, parameters: { classification: k } }];
  }

  async function predictDrawing() {
    const m = state.current;
    if (!m || m.kind !== 'image') return;
    clearTimeout(pad.timer);
    const spec = m.image;
    const px = drawingPixels(spec);
    if (!px) {
      showError('Draw something on the pad first.');
      return;
    }
    const data = normalize(px, spec, m.params);
    const shape = spec.layout === 'nchw' ? [spec.C, spec.H, spec.W] : [spec.H, spec.W, spec.C];
    if (spec.batched) shape.unshift(1);
    /* the numbers shown are the tensor sent, in H x W order for one channel */
    showSeen(px, spec, spec.C === 1 ? data : null,
      `Exactly the tensor sent: ${spec.datatype}${shapeText(shape)}, drawing cropped and shrunk by this page.`, true);
    const req = { inputs: [{ name: spec.input, shape, datatype: spec.datatype, data }] };
    const outputs = classifyOutputs(m);
    if (outputs) req.outputs = outputs;
    const text = JSON.stringify(req);
    await infer(m, text, { 'Content-Type': 'application/json' }, pretty(req), 'drawing');
  }

  // --------------------------------------------------------------------------
  // Uploads: encoded image bytes, preprocessed by the server

  function loadBitmap(blob) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(blob);
      const img = new Image();
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('the browser cannot decode this image')); };
      img.src = url;
    });
  }

  /* Mean luma of the image's border: above the middle means a light
   * background (a photo of ink on paper). */
  function lightBackground(img) {
    const cv = document.createElement('canvas');
    cv.width = 32;
    cv.height = 32;
    const ctx = cv.getContext('2d');
    ctx.drawImage(img, 0, 0, 32, 32);
    const d = ctx.getImageData(0, 0, 32, 32).data;
    let s = 0, n = 0;
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        if (x === 0 || y === 0 || x === 31 || y === 31) {
          const i = (y * 32 + x) * 4;
          s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
          n++;
        }
    return s / n > 127;
  }

  function canvasToBlob(cv) {
    return new Promise((resolve) => cv.toBlob(resolve, 'image/png'));
  }

  /* The image with its colours inverted, as a PNG (alpha kept). */
  async function invertedPng(img) {
    const cv = document.createElement('canvas');
    cv.width = img.naturalWidth;
    cv.height = img.naturalHeight;
    const ctx = cv.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, cv.width, cv.height);
    for (let i = 0; i < d.data.length; i += 4) {
      d.data[i] = 255 - d.data[i];
      d.data[i + 1] = 255 - d.data[i + 1];
      d.data[i + 2] = 255 - d.data[i + 2];
    }
    ctx.putImageData(d, 0, 0);
    return canvasToBlob(cv);
  }

  /* A preview of the server's input, resized by the browser (so only close
   * to what Pillow-exact resizing gives). */
  function previewPixels(img, spec, invert) {
    const cv = document.createElement('canvas');
    cv.width = spec.W;
    cv.height = spec.H;
    const ctx = cv.getContext('2d');
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(img, 0, 0, spec.W, spec.H);
    const d = ctx.getImageData(0, 0, spec.W, spec.H).data;
    const px = [];
    for (let i = 0; i < spec.W * spec.H; i++) {
      let [r, g, b] = [d[i * 4], d[i * 4 + 1], d[i * 4 + 2]];
      if (invert) [r, g, b] = [255 - r, 255 - g, 255 - b];
      if (spec.C === 1) px.push(Math.round(0.299 * r + 0.587 * g + 0.114 * b));
      else px.push(r, g, b);
    }
    return px;
  }

  async function predictFile(blob, autoInvert) {
    const m = state.current;
    if (!m || m.kind !== 'image') return;
    const spec = m.image;
    let img;
    try {
      img = await loadBitmap(blob);
    } catch (e) {
      showError(`${e.message}; the server accepts PNG, JPEG, BMP and PNM.`);
      return;
    }
    state.lastFile = blob;
    const inv = $('invert');
    if (autoInvert && spec.C === 1) inv.checked = lightBackground(img);
    const invert = inv.checked;
    const bytes = new Uint8Array(await (invert ? await invertedPng(img) : blob).arrayBuffer());
    const px = previewPixels(img, spec, invert);
    showSeen(px, spec, spec.C === 1 ? normalize(px, spec, m.params) : null,
      `Close to what the model saw: the server resized the ${img.naturalWidth}x${img.naturalHeight} image ` +
      `(Pillow-exact); this preview was resized by the browser.` + (invert ? ' Colours inverted.' : ''), false);

    /* Binary tensor extension: JSON header, then the BYTES element
     * (4-byte little-endian length + the file). */
    const req = { inputs: [{ name: spec.input, shape: [1], datatype: 'BYTES', parameters: { binary_data_size: bytes.length + 4 } }] };
    const outputs = classifyOutputs(m);
    if (outputs) req.outputs = outputs;
    const head = new TextEncoder().encode(JSON.stringify(req));
    const body = new Uint8Array(head.length + 4 + bytes.length);
    body.set(head, 0);
    new DataView(body.buffer).setUint32(head.length, bytes.length, true);
    body.set(bytes, head.length + 4);
    await infer(m, body, {
      'Content-Type': 'application/octet-stream',
      'Inference-Header-Content-Length': String(head.length),
    }, pretty(req) + `\n\n+ ${bytes.length + 4} bytes: length, then the ` +
      `${invert ? 'inverted PNG' : 'file'}`, invert ? 'upload, inverted' : 'upload');
  }

  function setupUpload() {
    const drop = $('drop');
    const file = $('file');
    file.addEventListener('change', () => { if (file.files[0]) predictFile(file.files[0], true); });
    drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      const f = ev.dataTransfer.files[0];
      if (f) predictFile(f, true);
    });
    $('invert').addEventListener('change', () => { if (state.lastFile) predictFile(state.lastFile, false); });
  }

  /* Test-set digits shipped with the page (web/digit-N.png), offered for
   * models that take one 8x8 gray image, as the digits model does. */
  function setupImage(m) {
    const spec = m.image;
    const digits = spec.C === 1 && spec.H === 8 && spec.W === 8;
    $('samples').hidden = !digits;
    $('invert').checked = false;
    if (digits && !$('sample-list').children.length)
      $('sample-list').replaceChildren(...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => h('button', {
        type: 'button', title: `test-set image of a ${d}`, 'data-sample': d,
        onclick: async () => {
          const r = await fetch(`/ui/digit-${d}.png`);
          if (!r.ok) { showError(`/ui/digit-${d}.png: HTTP ${r.status}`); return; }
          $('invert').checked = false;
          predictFile(await r.blob(), false);
        },
      }, h('img', { src: `/ui/digit-${d}.png`, alt: String(d) }))));
  }

  // --------------------------------------------------------------------------
  // Tabular models: a form from the input shapes

  function setupForm(m) {
    const spec = m.tabular;
    $('fields').replaceChildren(...spec.fields.map((f, i) => h('label', {},
      f.label, h('input', { type: 'text', inputmode: 'decimal', name: `f${i}`, 'data-input': f.input, value: f.example }))));
  }

  function formRequest(m) {
    const spec = m.tabular;
    const vals = [...$('fields').querySelectorAll('input')].map((e) => e.value.trim());
    const bad = vals.findIndex((v) => v === '' || !isFinite(Number(v)));
    if (bad >= 0) return { error: `"${spec.fields[bad].label}" must be a number` };
    let k = 0;
    const inputs = spec.inputs.map((inp) => {
      const data = vals.slice(k, k + inp.count).map(Number);
      k += inp.count;
      const isInt = inp.datatype.startsWith('INT') || inp.datatype.startsWith('UINT');
      return { name: inp.name, shape: inp.shape, datatype: inp.datatype,
        data: inp.datatype === 'BOOL' ? data.map((x) => x !== 0) : isInt ? data.map(Math.round) : data };
    });
    return { req: { inputs } };
  }

  function setupFormEvents() {
    $('tabular-input').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const m = state.current;
      if (!m || m.kind !== 'tabular') return;
      const r = formRequest(m);
      if (r.error) { showError(r.error); return; }
      infer(m, JSON.stringify(r.req), { 'Content-Type': 'application/json' }, pretty(r.req), 'form');
    });
    $('form-example').addEventListener('click', () => { if (state.current) setupForm(state.current); });
  }

  function setupRaw() {
    $('raw-send').addEventListener('click', () => {
      const m = state.current;
      if (!m) return;
      const text = $('req-body').value;
      if (!parseJSON(text)) { showError('The request is not valid JSON.'); return; }
      infer(m, text, { 'Content-Type': 'application/json' }, text, 'edited request');
    });
  }

  // --------------------------------------------------------------------------
  // Metrics: Prometheus text -> per-model table

  /* [{name, labels, value}] from the exposition format. */
  function parseProm(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
      out.push({ name: m[1], labels, value: parseFloat(m[3]) });
    }
    return out;
  }

  /* Prometheus' histogram_quantile: linear within the bucket holding the
   * q-th observation; the +Inf bucket answers its lower bound. */
  function quantile(q, buckets) {
    const b = buckets.slice().sort((x, y) => x.le - y.le);
    const total = b.length ? b[b.length - 1].count : 0;
    if (!total) return null;
    const rank = q * total;
    let prevLe = 0, prevCount = 0;
    for (const x of b) {
      if (x.count >= rank) {
        if (!isFinite(x.le)) return prevLe;
        return prevLe + (x.le - prevLe) * ((rank - prevCount) / Math.max(x.count - prevCount, 1e-12));
      }
      prevLe = x.le;
      prevCount = x.count;
    }
    return prevLe;
  }

  function summarize(samples) {
    const models = new Map();
    const get = (l) => {
      const key = `${l.model}\u0000${l.version}`;
      if (!models.has(key)) models.set(key, { model: l.model, version: l.version, ok: 0, failed: 0, buckets: [], computeUs: 0 });
      return models.get(key);
    };
    const g = { http: 0, inflight: 0, connections: 0, loaded: 0, queue: 0 };
    for (const s of samples) {
      const l = s.labels;
      switch (s.name) {
        case 'onyx_inference_request_success_total': get(l).ok += s.value; break;
        case 'onyx_inference_request_failure_total': get(l).failed += s.value; break;
        case 'onyx_inference_compute_duration_us_total': get(l).computeUs += s.value; break;
        case 'onyx_inference_request_duration_seconds_bucket':
          get(l).buckets.push({ le: l.le === '+Inf' ? Infinity : parseFloat(l.le), count: s.value });
          break;
        case 'onyx_http_requests_total': g.http += s.value; break;
        case 'onyx_http_requests_in_flight': g.inflight = s.value; break;
        case 'onyx_http_connections': g.connections = s.value; break;
        case 'onyx_models_loaded': g.loaded = s.value; break;
        case 'onyx_inference_queue_length': g.queue = s.value; break;
        default: break;
      }
    }
    return { at: performance.now(), global: g, models: [...models.values()].filter((x) => x.model) };
  }

  function stat(label, value, id) {
    return h('div', { class: 'stat', id }, h('b', {}, value), h('span', {}, label));
  }

  function renderMetrics(cur, prev) {
    const dt = prev ? (cur.at - prev.at) / 1000 : 0;
    const total = cur.models.reduce((a, x) => a + x.ok + x.failed, 0);
    const g = cur.global;
    $('metrics-summary').replaceChildren(
      stat('inference requests', String(total), 'stat-requests'),
      stat('HTTP requests', String(g.http), 'stat-http'),
      stat('in flight', String(g.inflight)),
      stat('connections', String(g.connections)),
      stat('queued', String(g.queue)),
      stat('model versions loaded', String(g.loaded)));
    const rows = cur.models.slice().sort((a, b) => (a.model + a.version).localeCompare(b.model + b.version)).map((x) => {
      const p = prev && prev.models.find((y) => y.model === x.model && y.version === x.version);
      const rate = p && dt > 0 ? (x.ok + x.failed - p.ok - p.failed) / dt : null;
      const q = (v) => { const s = quantile(v, x.buckets); return s === null ? '–' : fmtMs(s * 1000); };
      return h('tr', { 'data-model': x.model },
        h('td', {}, x.model), h('td', {}, x.version), h('td', { class: 'm-ok' }, String(x.ok)),
        h('td', {}, String(x.failed)), h('td', {}, rate === null ? '–' : rate.toFixed(1)),
        h('td', {}, q(0.5)), h('td', {}, q(0.9)), h('td', {}, q(0.99)),
        h('td', {}, x.ok ? fmtMs(x.computeUs / x.ok / 1000) : '–'));
    });
    $('metrics-table').tBodies[0].replaceChildren(...(rows.length ? rows
      : [h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No inference requests yet.'))]));
  }

  let metricsTimer = 0;
  async function pollMetrics() {
    clearTimeout(metricsTimer);
    const [r, ready] = await Promise.all([call('GET', '/metrics'), call('GET', '/v2/health/ready')]);
    const dot = $('health-dot');
    dot.className = 'dot ' + (ready.ok ? 'ok' : 'bad');
    $('health-text').textContent = ready.ok ? 'ready' : ready.status ? `not ready (HTTP ${ready.status})` : 'server unreachable';
    if (r.ok) {
      const cur = summarize(parseProm(r.text));
      renderMetrics(cur, state.lastMetrics);
      state.lastMetrics = cur;
    }
    metricsTimer = setTimeout(pollMetrics, document.hidden ? 4 * METRICS_PERIOD_MS : METRICS_PERIOD_MS);
  }

  // --------------------------------------------------------------------------

  function start() {
    setupPad();
    setupUpload();
    setupFormEvents();
    setupRaw();
    loadModels();
    pollMetrics();
  }

  /* For the browser test and the curious: the page's state. */
  window.onyxDemo = { state, normalize, parseProm, quantile };
  start();
})();
