// Plots, each from one bounded route (the server downsamples; a plot says when it shows a sample).
// Live: a plot that is on screen is redrawn at most every few seconds while trials finish.
import { api, qs } from './api.js';
import { h, clear, fmtCount, fmtDuration, throttle } from './dom.js';
import { draw, purge } from './plotting.js';

const TABS = [
  { id: 'final', label: 'Final metric', render: finalPlot },
  { id: 'parallel', label: 'Parallel coordinates', render: parallelPlot },
  { id: 'importance', label: 'Parameter importance', render: importancePlot },
  { id: 'intermediate', label: 'Intermediate curves', render: intermediatePlot },
  { id: 'duration', label: 'Trial durations', render: durationPlot },
  { id: 'slice', label: 'Slice', render: slicePlot },
];
const PARALLEL_CAP = 1000;

export function mount(root, app, arg) {
  let current = TABS.find((t) => t.id === arg) || TABS[0];
  const tabs = h('div', { class: 'tabs', id: 'pl-tabs' });
  const controls = h('div', { class: 'toolbar plot-controls', id: 'pl-controls' });
  const note = h('div', { class: 'note', id: 'pl-note' });
  let plotEl = h('div', { class: 'plot big-plot', id: 'pl-plot' });
  root.append(h('div', { class: 'plots' }, tabs, controls, note, plotEl));
  const ctx = { app, controls, note, plotEl, state: {} };
  let drawing = null;

  function renderTabs() {
    clear(tabs);
    for (const t of TABS) {
      tabs.append(h('a', { class: 'tab' + (t === current ? ' active' : ''), href: '#/plots/' + t.id, dataset: { plot: t.id } }, t.label));
    }
  }

  async function show(fresh) {
    if (fresh) {
      // A new element per tab: a slow Plotly call still running on the old one cannot touch it.
      purge(plotEl);
      const next = h('div', { class: 'plot big-plot', id: 'pl-plot' });
      plotEl.replaceWith(next);
      plotEl = next;
      ctx.plotEl = next;
      clear(controls);
      note.textContent = '';
      ctx.state = {};
    }
    plotEl.dataset.plot = current.id;
    plotEl.dataset.ready = '';
    const mine = current;
    const el = plotEl;
    const run = (async () => {
      try {
        // this render draws only into the element of its own tab, even if the tab changes meanwhile
        await mine.render({ ...ctx, plotEl: el }, fresh);
        if (mine === current) el.dataset.ready = mine.id;
      } catch (e) {
        if (mine !== current) return;
        purge(el);
        clear(el).append(h('div', { class: 'error' }, e.message));
        el.dataset.ready = 'error';
      }
    })();
    drawing = run;
    await run;
  }
  ctx.redraw = () => show(false);

  const live = throttle(() => { if (!drawing || plotEl.dataset.ready) show(false); }, 4000);
  renderTabs();
  show(true);

  return {
    route(a) {
      const next = TABS.find((t) => t.id === a) || TABS[0];
      if (next === current) return;
      current = next;
      renderTabs();
      show(true);
    },
    onTrials(rows) {
      if (rows.some((r) => r.final !== null && r.final !== undefined) || current.id === 'intermediate') live();
    },
    onMetrics() { if (current.id === 'intermediate') live(); },
    unmount() { live.cancel(); purge(plotEl); },
  };
}

function mode(app) { return app.summary && app.summary.optimizeMode === 'minimize' ? 'minimize' : 'maximize'; }

function sampleNote(ctx, shown, total, downsampled, what) {
  ctx.note.textContent = downsampled
    ? `Downsampled: showing ${fmtCount(shown)} of ${fmtCount(total)} ${what}.`
    : `${fmtCount(shown)} ${what}.`;
  ctx.note.classList.toggle('downsampled', !!downsampled);
}

// ---- final metric per trial with the best-so-far line --------------------------------------
async function finalPlot(ctx) {
  const data = await api('/trials/finals' + qs({ maxPoints: 5000 }));
  const pts = data.points.filter((p) => typeof p[1] === 'number').sort((a, b) => a[0] - b[0]);
  const maximize = mode(ctx.app) === 'maximize';
  const bestX = [], bestY = [];
  let best = null;
  for (const p of pts) {
    if (best === null || (maximize ? p[1] > best : p[1] < best)) {
      best = p[1];
      bestX.push(p[0]); bestY.push(best);
    }
  }
  if (pts.length) { bestX.push(pts[pts.length - 1][0]); bestY.push(best); }
  sampleNote(ctx, pts.length, data.total, data.downsampled, 'trials with a final metric');
  if (data.downsampled) ctx.note.textContent += ' The best-so-far line is drawn over the sample.';
  await draw(ctx.plotEl, [
    { x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), text: pts.map((p) => p[4]), type: pts.length > 2000 ? 'scattergl' : 'scatter',
      mode: 'markers', name: 'trial', marker: { size: 6, color: '#2563eb', opacity: 0.7 },
      hovertemplate: 'trial #%{x} %{text}<br>metric %{y}<extra></extra>' },
    { x: bestX, y: bestY, type: 'scatter', mode: 'lines', line: { shape: 'hv', color: '#dc2626', width: 2 }, name: 'best so far' },
  ], { xaxis: { title: { text: 'trial sequence id' } }, yaxis: { title: { text: 'final metric' } }, legend: { orientation: 'h', y: 1.1 } });
}

// ---- hyperparameter parallel coordinates coloured by the metric ----------------------------
async function parallelPlot(ctx, fresh) {
  const st = ctx.state;
  if (fresh || !st.pct) {
    st.pct = st.pct || 100;
    const sel = h('select', { id: 'pl-top', 'aria-label': 'top trials', onchange: () => { st.pct = +sel.value; ctx.redraw(); } },
      [100, 50, 20, 10, 5].map((p) => h('option', { value: p, selected: p === st.pct ? true : null }, p === 100 ? 'all trials' : `top ${p}%`)));
    clear(ctx.controls).append(h('span', { class: 'k' }, 'Show'), sel);
  }
  const maximize = mode(ctx.app) === 'maximize';
  const first = await api('/trials/page' + qs({ limit: 1, sort: 'final', order: maximize ? 'desc' : 'asc', status: 'SUCCEEDED' }));
  const finished = first.total;
  const want = Math.ceil(finished * st.pct / 100);
  const take = Math.min(want, PARALLEL_CAP);
  const rows = [];
  for (let off = 0; off < take; off += 500) {
    const page = await api('/trials/page' + qs({ offset: off, limit: Math.min(500, take - off), sort: 'final', order: maximize ? 'desc' : 'asc', status: 'SUCCEEDED' }));
    rows.push(...page.items);
  }
  const good = rows.filter((r) => typeof r.final === 'number');
  if (!good.length) throw new Error('No succeeded trial with a final metric yet.');
  const names = first.columns.params;
  const dims = names.map((n) => dimension(n, good.map((r) => (r.parameters || {})[n])));
  dims.push({ label: 'metric', values: good.map((r) => r.final) });
  ctx.note.textContent = take < want
    ? `Downsampled: the best ${fmtCount(take)} of ${fmtCount(want)} trials (${st.pct === 100 ? 'all' : 'top ' + st.pct + '%'} of ${fmtCount(finished)} succeeded). Drag along an axis to filter.`
    : `${fmtCount(good.length)} succeeded trials (${st.pct === 100 ? 'all' : 'top ' + st.pct + '%'}). Drag along an axis to filter; drag a title to reorder.`;
  ctx.note.classList.toggle('downsampled', take < want);
  await draw(ctx.plotEl, [{
    type: 'parcoords', dimensions: dims,
    line: { color: good.map((r) => r.final), colorscale: 'Viridis', reversescale: !maximize, showscale: true, colorbar: { title: { text: 'metric' } } },
  }], { margin: { l: 70, r: 70, t: 60, b: 30 } });
}

// A parcoords axis: numbers as they are; anything else (choices) as categories with their labels.
function dimension(label, values) {
  if (values.every((v) => typeof v === 'number')) return { label, values };
  const cats = [...new Set(values.map((v) => JSON.stringify(v ?? null)))].sort();
  const idx = new Map(cats.map((c, i) => [c, i]));
  return { label, values: values.map((v) => idx.get(JSON.stringify(v ?? null))), tickvals: cats.map((_, i) => i),
    ticktext: cats.map((c) => { const v = JSON.parse(c); return typeof v === 'string' ? v : c; }) };
}

// ---- parameter importance (random forest, server side) -------------------------------------
async function importancePlot(ctx) {
  const data = await api('/analysis/importance');
  const entries = Object.entries(data.importance || {}).sort((a, b) => a[1] - b[1]);
  if (!entries.length) throw new Error(data.message || 'Not enough finished trials to estimate importance yet.');
  ctx.note.textContent = `Importance of each parameter for the final metric (${data.method}, ${fmtCount(data.trials ?? 0)} trials`
    + (data.downsampled ? `, a sample of ${fmtCount(data.total ?? 0)}` : '') + ').';
  ctx.note.classList.toggle('downsampled', !!data.downsampled);
  await draw(ctx.plotEl, [{ type: 'bar', orientation: 'h', x: entries.map((e) => e[1]), y: entries.map((e) => e[0]),
    marker: { color: '#2563eb' }, hovertemplate: '%{y}: %{x:.3f}<extra></extra>' }],
  { margin: { l: 140, r: 20, t: 20, b: 50 }, xaxis: { title: { text: 'importance' }, rangemode: 'tozero' } });
}

// ---- intermediate curves with a filter -----------------------------------------------------
async function intermediatePlot(ctx, fresh) {
  const st = ctx.state;
  if (fresh || !st.built) {
    st.built = true;
    st.step = ''; st.lo = ''; st.hi = '';
    const inp = (id, ph, key) => {
      const el = h('input', { type: 'text', id, placeholder: ph, size: 6 });
      el.addEventListener('change', () => { st[key] = el.value.trim(); ctx.redraw(); });
      return el;
    };
    clear(ctx.controls).append(h('span', { class: 'k' }, 'Keep trials whose value at step'), inp('pl-step', 'step #', 'step'),
      h('span', {}, 'is between'), inp('pl-lo', 'min', 'lo'), h('span', {}, 'and'), inp('pl-hi', 'max', 'hi'));
  }
  const data = await api('/metrics/series' + qs({ trials: 'all', maxPoints: 200, maxTrials: 200 }));
  let entries = Object.entries(data.series || {});
  const total = entries.length;
  if (st.step !== '') {
    const step = Number(st.step);
    const lo = st.lo === '' ? -Infinity : Number(st.lo);
    const hi = st.hi === '' ? Infinity : Number(st.hi);
    entries = entries.filter(([, pts]) => pts.some(([s, v]) => s === step && v >= lo && v <= hi));
  }
  const what = st.step !== '' ? `trials (of ${fmtCount(total)} shown before the filter)` : 'trials';
  sampleNote(ctx, entries.length, data.totalTrials, data.downsampled, what);
  if (data.downsampled) ctx.note.textContent += ' Each curve has at most 200 points.';
  if (!entries.length && !total) throw new Error('No intermediate result reported yet.');
  await draw(ctx.plotEl, entries.map(([id, pts]) => ({
    x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), type: 'scatter', mode: 'lines', name: id,
    line: { width: 1 }, opacity: 0.7, hovertemplate: id + ' step %{x}: %{y}<extra></extra>',
  })), { showlegend: entries.length <= 20, xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'intermediate result' } } });
}

// ---- trial durations -----------------------------------------------------------------------
async function durationPlot(ctx) {
  const data = await api('/trials/finals' + qs({ maxPoints: 5000 }));
  const pts = data.points.filter((p) => typeof p[3] === 'number').sort((a, b) => a[0] - b[0]);
  sampleNote(ctx, pts.length, data.total, data.downsampled, 'finished trials');
  const mean = pts.length ? pts.reduce((a, p) => a + p[3], 0) / pts.length : 0;
  if (pts.length) ctx.note.textContent += ` Mean duration ${fmtDuration(mean)}.`;
  // A bar per trial is many SVG paths; beyond a thousand, WebGL markers draw the same data.
  const many = pts.length > 1000;
  await draw(ctx.plotEl, [{ type: many ? 'scattergl' : 'bar', mode: many ? 'markers' : undefined,
    x: pts.map((p) => p[0]), y: pts.map((p) => p[3]), text: pts.map((p) => p[4]),
    marker: { color: '#0d9488', size: many ? 4 : undefined }, hovertemplate: 'trial #%{x} %{text}<br>%{y:.2f} s<extra></extra>' }],
  { xaxis: { title: { text: 'trial sequence id' } }, yaxis: { title: { text: 'duration (s)' } }, bargap: 0.1 });
}

// ---- slice plot: one parameter against the metric ------------------------------------------
async function slicePlot(ctx, fresh) {
  const st = ctx.state;
  if (fresh || !st.params) {
    const page = await api('/trials/page' + qs({ limit: 1 }));
    st.params = page.columns.params;
    if (!st.params.length) throw new Error('No trial has parameters yet.');
    st.param = st.param || st.params[0];
    const sel = h('select', { id: 'pl-param', 'aria-label': 'parameter', onchange: () => { st.param = sel.value; ctx.redraw(); } },
      st.params.map((p) => h('option', { value: p, selected: p === st.param ? true : null }, p)));
    clear(ctx.controls).append(h('span', { class: 'k' }, 'Parameter'), sel);
  }
  const data = await api('/analysis/slice' + qs({ param: st.param, maxPoints: 2000 }));
  const pts = data.points;
  sampleNote(ctx, pts.length, data.total ?? pts.length, data.downsampled, `trials with a final metric and ${st.param}`);
  const numeric = pts.every((p) => typeof p[0] === 'number');
  await draw(ctx.plotEl, [{ type: pts.length > 2000 ? 'scattergl' : 'scatter', mode: 'markers',
    x: pts.map((p) => (numeric ? p[0] : String(p[0]))), y: pts.map((p) => p[1]),
    marker: { size: 7, color: pts.map((p) => p[1]), colorscale: 'Viridis', showscale: true, colorbar: { title: { text: 'metric' } }, opacity: 0.8 },
    hovertemplate: st.param + ' %{x}<br>metric %{y}<extra></extra>' }],
  { xaxis: { title: { text: st.param }, type: numeric ? undefined : 'category' }, yaxis: { title: { text: 'final metric' } } });
}
