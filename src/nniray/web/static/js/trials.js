// Trials: one server-sorted, server-filtered page of the table at a time (the browser never holds
// the whole experiment), a detail panel per trial, compare, kill, copy and customized trials.
// Live: rows on screen are patched from the feed; the page is re-read (throttled) only when the
// feed brings trials it does not show, which may change what the page should contain.
import { api, qs, withToken } from './api.js';
import {
  h, clear, statusPill, fmtTime, fmtDuration, fmtNum, fmtValue, fmtCount, metricValue, STATUSES, toast, modal,
  copyText, throttle, debounce, pythonLiteral,
} from './dom.js';
import { draw, purge } from './plotting.js';

const BASE_COLUMNS = [
  { id: 'sequenceId', label: '#', cell: (r) => r.sequenceId, num: true },
  { id: 'trialJobId', label: 'Trial', cell: (r) => r.trialJobId },
  { id: 'status', label: 'Status', cell: (r) => statusPill(r.status) },
  { id: 'startTime', label: 'Start', cell: (r) => fmtTime(r.startTime) },
  { id: 'endTime', label: 'End', cell: (r) => fmtTime(r.endTime), hidden: true },
  { id: 'duration', label: 'Duration', cell: (r) => fmtDuration(liveDuration(r)), num: true },
  { id: 'final', label: 'Metric', cell: (r) => fmtNum(r.final), num: true },
  { id: 'intermediateCount', label: 'Intermediates', cell: (r) => r.intermediateCount ?? 0, num: true },
];
const KILLABLE = new Set(['WAITING', 'RUNNING']);
const MAX_COMPARE = 8;

function liveDuration(r) {
  if (r.duration !== null && r.duration !== undefined) return r.duration;
  if (r.status === 'RUNNING' && r.startTime) return (Date.now() - r.startTime) / 1000;
  return null;
}

export function mount(root, app, arg, query) {
  const expKey = 'nniray.columns.' + (app.summary ? app.summary.id : '');
  const st = {
    offset: 0, limit: 50, sort: 'sequenceId', order: 'asc',
    statuses: new Set(query && query.get('status') ? query.get('status').split(',') : []),
    search: '', params: {}, selected: new Set(),
    hidden: new Set(JSON.parse(localStorage.getItem(expKey) || 'null') || BASE_COLUMNS.filter((c) => c.hidden).map((c) => c.id)),
    columns: { params: [], final: [] }, total: 0, rows: new Map(), detail: null,
  };
  let loadSeq = 0;

  const searchInput = h('input', { type: 'search', placeholder: 'Search trial id, #, status or parameter value', id: 'tr-search',
    oninput: debounce(() => { st.search = searchInput.value.trim(); st.offset = 0; load(); }, 250) });
  const statusChips = h('div', { class: 'chips', id: 'tr-status' });
  const paramFilters = h('div', { class: 'chips', id: 'tr-param-filters' });
  const paramForm = h('div', { class: 'param-filter' });
  const columnsBtn = h('button', { id: 'tr-columns', onclick: chooseColumns }, 'Columns');
  const compareBtn = h('button', { id: 'tr-compare', onclick: compare, disabled: true }, 'Compare');
  // A read-only view (nniray view) refuses new trials: do not offer one.
  const addBtn = app.summary && app.summary.readonly ? null : h('button', { id: 'tr-add', onclick: () => customTrial(null) }, 'Add trial');
  const totalLabel = h('span', { class: 'total', id: 'tr-total' });
  const table = h('table', { class: 'grid', id: 'tr-table' });
  const pager = h('div', { class: 'pager', id: 'tr-pager' });
  const detail = h('aside', { class: 'detail', id: 'tr-detail', hidden: true });
  const layoutEl = h('div', { class: 'trials-layout' },
    h('div', { class: 'trials-main' },
      h('div', { class: 'toolbar' }, searchInput, columnsBtn, compareBtn, addBtn, totalLabel),
      h('div', { class: 'toolbar' }, statusChips, paramForm, paramFilters),
      h('div', { class: 'table-wrap' }, table), pager),
    detail);
  root.append(layoutEl);

  function renderStatusChips() {
    clear(statusChips).append(h('span', { class: 'k' }, 'Status'));
    for (const s of STATUSES) {
      statusChips.append(h('button', {
        class: 'chip' + (st.statuses.has(s) ? ' on' : ''), dataset: { status: s },
        onclick: () => { st.statuses.has(s) ? st.statuses.delete(s) : st.statuses.add(s); st.offset = 0; renderStatusChips(); load(); },
      }, s.toLowerCase().replace('_', ' ')));
    }
  }

  function renderParamForm() {
    const names = st.columns.params;
    if (!names.length) { clear(paramForm); return; }
    const sel = h('select', { id: 'tr-param-name', 'aria-label': 'parameter' }, names.map((n) => h('option', { value: n }, n)));
    const val = h('input', { type: 'text', id: 'tr-param-value', placeholder: 'value (JSON or text)', size: 12 });
    const add = () => {
      const t = val.value.trim();
      if (!t) return;
      let v;
      try { v = JSON.parse(t); } catch (e) { v = t; }
      st.params[sel.value] = v;
      st.offset = 0;
      renderParamFilters();
      load();
    };
    val.addEventListener('keydown', (e) => { if (e.key === 'Enter') add(); });
    clear(paramForm).append(h('span', { class: 'k' }, 'Parameter'), sel, h('span', {}, '='), val,
      h('button', { class: 'small', id: 'tr-param-add', onclick: add }, 'Filter'));
  }

  function renderParamFilters() {
    clear(paramFilters);
    for (const [k, v] of Object.entries(st.params)) {
      paramFilters.append(h('span', { class: 'chip on' }, `${k} = ${JSON.stringify(v)} `,
        h('button', { class: 'icon', title: 'Remove filter', onclick: () => { delete st.params[k]; st.offset = 0; renderParamFilters(); load(); } }, '×')));
    }
  }

  function allColumns() {
    const cols = [...BASE_COLUMNS];
    for (const k of st.columns.final) {
      if (k === 'default') continue;
      cols.push({ id: 'final.' + k, label: k, cell: (r) => fmtNum(r.finalDict ? r.finalDict[k] : null), num: true });
    }
    for (const p of st.columns.params) {
      cols.push({ id: 'param.' + p, label: p, cell: (r) => fmtValue(r.parameters ? r.parameters[p] : null), param: true });
    }
    return cols;
  }

  const visibleColumns = () => allColumns().filter((c) => !st.hidden.has(c.id));

  function renderHead() {
    const cols = visibleColumns();
    const allBox = h('input', { type: 'checkbox', title: 'Select this page', 'aria-label': 'select page',
      onchange: () => { for (const id of st.rows.keys()) allBox.checked ? st.selected.add(id) : st.selected.delete(id); renderBody(); updateCompare(); } });
    const head = h('thead', {}, h('tr', {}, h('th', { class: 'sel' }, allBox), cols.map((c) => {
      const active = st.sort === c.id;
      return h('th', {
        class: 'sortable' + (active ? ' sorted ' + st.order : '') + (c.num ? ' num' : '') + (c.param ? ' param' : ''),
        dataset: { col: c.id }, title: 'Sort by ' + c.label,
        onclick: () => {
          if (st.sort === c.id) st.order = st.order === 'asc' ? 'desc' : 'asc';
          else { st.sort = c.id; st.order = c.id === 'final' || c.id.startsWith('final.') ? 'desc' : 'asc'; }
          st.offset = 0;
          load();
        },
      }, c.label, active ? h('span', { class: 'arrow' }, st.order === 'asc' ? ' ▲' : ' ▼') : null);
    })));
    return head;
  }

  function rowEl(r) {
    const cols = visibleColumns();
    const box = h('input', { type: 'checkbox', checked: st.selected.has(r.trialJobId), 'aria-label': 'select ' + r.trialJobId,
      onclick: (e) => e.stopPropagation(),
      onchange: () => { box.checked ? st.selected.add(r.trialJobId) : st.selected.delete(r.trialJobId); updateCompare(); } });
    return h('tr', {
      dataset: { trialId: r.trialJobId, status: r.status },
      class: st.detail === r.trialJobId ? 'open' : '',
      onclick: () => { location.hash = '#/trials/' + encodeURIComponent(r.trialJobId); },
    }, h('td', { class: 'sel' }, box), cols.map((c) => h('td', { class: (c.num ? 'num' : '') + (c.param ? ' param' : ''), dataset: { col: c.id } }, c.cell(r))));
  }

  function renderBody() {
    const body = h('tbody', {});
    for (const r of st.rows.values()) body.append(rowEl(r));
    if (!st.rows.size) body.append(h('tr', {}, h('td', { colspan: visibleColumns().length + 1, class: 'muted empty' }, 'No trial matches')));
    clear(table).append(renderHead(), body);
  }

  function renderPager() {
    const page = Math.floor(st.offset / st.limit) + 1;
    const pages = Math.max(1, Math.ceil(st.total / st.limit));
    const go = (off) => { st.offset = Math.max(0, Math.min(off, (pages - 1) * st.limit)); load(); };
    const size = h('select', { 'aria-label': 'rows per page', onchange: () => { st.limit = +size.value; st.offset = 0; load(); } },
      [20, 50, 100, 200].map((n) => h('option', { value: n, selected: n === st.limit ? true : null }, n + ' / page')));
    clear(pager).append(
      h('button', { class: 'small', disabled: page <= 1, onclick: () => go(0) }, '«'),
      h('button', { class: 'small', id: 'tr-prev', disabled: page <= 1, onclick: () => go(st.offset - st.limit) }, '‹'),
      h('span', {}, `page ${fmtCount(page)} of ${fmtCount(pages)}`),
      h('button', { class: 'small', id: 'tr-next', disabled: page >= pages, onclick: () => go(st.offset + st.limit) }, '›'),
      h('button', { class: 'small', disabled: page >= pages, onclick: () => go((pages - 1) * st.limit) }, '»'),
      size);
  }

  function updateCompare() {
    compareBtn.disabled = st.selected.size < 2;
    compareBtn.textContent = st.selected.size ? `Compare (${st.selected.size})` : 'Compare';
  }

  async function load() {
    const mine = ++loadSeq;
    const q = { offset: st.offset, limit: st.limit, sort: st.sort, order: st.order,
      status: [...st.statuses].join(','), search: st.search };
    for (const [k, v] of Object.entries(st.params)) q['param.' + k] = JSON.stringify(v);
    table.classList.add('loading');
    try {
      const page = await api('/trials/page' + qs(q));
      if (mine !== loadSeq) return; // a newer request won
      const paramsChanged = JSON.stringify(page.columns) !== JSON.stringify(st.columns);
      st.columns = page.columns || { params: [], final: [] };
      st.total = page.total;
      st.rows = new Map(page.items.map((r) => [r.trialJobId, r]));
      totalLabel.textContent = `${fmtCount(page.total)} trial${page.total === 1 ? '' : 's'}`;
      if (paramsChanged) renderParamForm();
      renderBody();
      renderPager();
      table.dataset.loaded = String(mine);
      table.dataset.query = qs(q);  // what this table shows (tests and scripts wait on it)
    } catch (e) {
      if (mine === loadSeq) toast(e.message, 'error');
    } finally {
      if (mine === loadSeq) table.classList.remove('loading');
    }
  }
  const reload = throttle(load, 1500);

  function chooseColumns() {
    const m = modal('Columns');
    const list = h('div', { class: 'column-list', id: 'tr-column-list' });
    for (const c of allColumns()) {
      list.append(h('label', {}, h('input', {
        type: 'checkbox', checked: !st.hidden.has(c.id), dataset: { col: c.id },
        onchange: (e) => {
          e.target.checked ? st.hidden.delete(c.id) : st.hidden.add(c.id);
          localStorage.setItem(expKey, JSON.stringify([...st.hidden]));
          renderBody();
        },
      }), ' ', c.id.startsWith('param.') ? `parameter ${c.label}` : c.id.startsWith('final.') ? `metric ${c.label}` : c.label));
    }
    m.body.append(list);
  }

  // ---- detail panel ------------------------------------------------------------------------
  let detailMetrics = [];
  let armedKill = null;
  let detailRow = null;
  const redrawCurve = throttle(() => drawCurve(), 1000);

  async function openDetail(id) {
    st.detail = id;
    for (const tr of table.querySelectorAll('tbody tr')) tr.classList.toggle('open', tr.dataset.trialId === id);
    detail.hidden = false;
    clear(detail).append(h('div', { class: 'muted' }, 'Loading ' + id + '…'));
    try {
      const [row, metrics] = await Promise.all([
        api('/trials/' + encodeURIComponent(id) + '/row'),
        api('/trials/' + encodeURIComponent(id) + '/metrics' + qs({ type: 'PERIODICAL' })),
      ]);
      if (st.detail !== id) return;
      detailRow = row;
      detailMetrics = metrics;
      renderDetail();
    } catch (e) {
      clear(detail).append(closeBtn(), h('div', { class: 'error' }, e.message));
    }
  }

  function closeBtn() {
    return h('button', { class: 'icon close', title: 'Close', id: 'tr-detail-close', onclick: () => { location.hash = '#/trials'; } }, '×');
  }

  function renderDetail() {
    const r = detailRow;
    const readonly = app.summary && app.summary.readonly;
    const params = r.parameters || {};
    // Kill takes a second click within 4 s; the armed state lives outside the button so a
    // re-render from the feed between the two clicks does not lose it.
    const armed = () => armedKill && armedKill.id === r.trialJobId && Date.now() < armedKill.until;
    const killBtn = h('button', { class: 'danger', id: 'tr-kill', 'data-armed': armed() ? '1' : null, onclick: () => {
      if (!armed()) {
        armedKill = { id: r.trialJobId, until: Date.now() + 4000 };
        killBtn.dataset.armed = '1';
        killBtn.textContent = 'Click again to kill';
        setTimeout(() => { if (!armed()) { delete killBtn.dataset.armed; killBtn.textContent = 'Kill'; } }, 4100);
        return;
      }
      armedKill = null;
      kill(r.trialJobId);
    } }, armed() ? 'Click again to kill' : 'Kill');
    const logBox = h('pre', { class: 'log', id: 'tr-log' });
    const logTabs = h('div', { class: 'tabs small' });
    for (const name of ['trial.log', 'stdout', 'stderr']) {
      logTabs.append(h('button', { class: 'tab', dataset: { log: name }, onclick: () => showLog(name, logTabs, logBox) }, name));
    }
    clear(detail).append(
      h('div', { class: 'detail-head' }, h('h2', {}, `#${r.sequenceId} `, h('span', { class: 'mono', id: 'tr-detail-id' }, r.trialJobId)),
        statusPill(r.status), closeBtn()),
      h('div', { class: 'actions' },
        !readonly && KILLABLE.has(r.status) ? killBtn : null,
        h('button', { id: 'tr-copy', onclick: async () => { await copyText(JSON.stringify(params, null, 2)); toast('Parameters copied as JSON'); } }, 'Copy parameters'),
        h('button', { id: 'tr-copy-py', onclick: async () => { await copyText(pythonLiteral(params)); toast('Parameters copied as Python'); } }, 'Copy as Python'),
        readonly ? null : h('button', { id: 'tr-customize', onclick: () => customTrial(params) }, 'Customize & rerun')),
      h('dl', { class: 'facts' },
        fact('Start', fmtTime(r.startTime)), fact('End', fmtTime(r.endTime)), fact('Duration', fmtDuration(liveDuration(r))),
        fact('Metric', r.finalDict ? Object.entries(r.finalDict).map(([k, v]) => `${k} ${fmtNum(v)}`).join(', ') : fmtNum(r.final)), fact('Node', r.node || '—'),
        r.message ? fact('Message', r.message) : null),
      h('h3', {}, 'Parameters'),
      h('table', { class: 'grid compact params', id: 'tr-params' }, h('tbody', {},
        Object.entries(params).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'mono' }, fmtValue(v)))))),
      h('h3', {}, 'Intermediate results ', h('span', { class: 'muted', id: 'tr-inter-count' }, `(${detailMetrics.length})`)),
      h('div', { class: 'plot small-plot', id: 'tr-curve' }),
      h('details', {}, h('summary', {}, 'as a table'), h('div', { id: 'tr-inter-table' })),
      h('h3', {}, 'Logs'), logTabs, logBox,
    );
    drawCurve();
    showLog('trial.log', logTabs, logBox);
  }

  function fact(k, v) { return [h('dt', {}, k), h('dd', {}, v)]; }

  async function drawCurve() {
    const el = detail.querySelector('#tr-curve');
    if (!el) return;
    const xs = detailMetrics.map((m) => m.sequence);
    const ys = detailMetrics.map((m) => metricValue(m.value));
    const cnt = detail.querySelector('#tr-inter-count');
    if (cnt) cnt.textContent = `(${detailMetrics.length})`;
    const tbl = detail.querySelector('#tr-inter-table');
    if (tbl) {
      clear(tbl).append(h('table', { class: 'grid compact' }, h('thead', {}, h('tr', {}, h('th', {}, 'step'), h('th', {}, 'value'))),
        h('tbody', {}, detailMetrics.slice(-500).map((m) => h('tr', {}, h('td', {}, m.sequence), h('td', { class: 'mono' }, fmtValue(m.value)))))));
    }
    if (!detailMetrics.length) { purge(el); clear(el).append(h('div', { class: 'muted' }, 'No intermediate result reported')); return; }
    if (!el.classList.contains('js-plotly-plot')) clear(el);
    await draw(el, [{ x: xs, y: ys, type: 'scatter', mode: 'lines+markers', name: detailRow.trialJobId, line: { color: '#2563eb' } }],
      { height: 220, margin: { l: 50, r: 10, t: 10, b: 35 }, xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'value' } } });
  }

  async function showLog(name, tabs, box) {
    for (const b of tabs.querySelectorAll('button')) b.classList.toggle('active', b.dataset.log === name);
    box.textContent = 'Loading…';
    box.dataset.log = name;
    try {
      const text = await api('/trial-file/' + encodeURIComponent(detailRow.trialJobId) + '/' + name, { text: true });
      if (box.dataset.log !== name) return;
      box.textContent = text || '(empty)';
    } catch (e) {
      box.textContent = e.status === 404 ? `(no ${name} file${name === 'stdout' ? ': a trial\'s stdout is in trial.log' : ''})` : e.message;
    }
    box.append(h('div', {}, h('a', { href: withToken('/api/v1/nni/trial-file/' + encodeURIComponent(detailRow.trialJobId) + '/' + name), target: '_blank' }, 'open raw')));
  }

  async function kill(id) {
    try {
      await api('/trial-jobs/' + encodeURIComponent(id), { method: 'DELETE' });
      toast(`Kill sent to ${id}`);
      // The feed brings the end too; this look-up covers a feed that is reconnecting.  Only a
      // final status is applied: a row read before the kill landed must not undo the feed's.
      for (let i = 0; i < 20 && st.detail === id && KILLABLE.has(detailRow.status); i++) {
        const row = await api('/trials/' + encodeURIComponent(id) + '/row');
        if (!KILLABLE.has(row.status)) {
          if (st.detail === id && KILLABLE.has(detailRow.status)) { detailRow = row; renderDetail(); }
          break;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (e) {
      toast(`Kill ${id}: ${e.message}`, 'error');
    }
  }

  function customTrial(params) {
    const m = modal('Add a customized trial');
    let template = params;
    if (!template) {
      template = {};
      for (const p of st.columns.params) template[p] = null;
    }
    const ta = h('textarea', { rows: 10, id: 'tr-custom-params', spellcheck: 'false' });
    ta.value = JSON.stringify(template, null, 2);
    const err = h('div', { class: 'error', hidden: true });
    const submit = async () => {
      let parameters;
      try { parameters = JSON.parse(ta.value); } catch (e) {
        err.hidden = false; err.textContent = 'Parameters must be a JSON object: ' + e.message; return;
      }
      if (!parameters || typeof parameters !== 'object' || Array.isArray(parameters)) {
        err.hidden = false; err.textContent = 'Parameters must be a JSON object like {"lr": 0.01}'; return;
      }
      try {
        const res = await api('/trial-jobs', { method: 'POST', body: { parameters } });
        toast(`Customized trial ${res && res.trialJobId ? res.trialJobId : ''} added`);
        m.close();
        reload();
      } catch (e) {
        err.hidden = false; err.textContent = e.message;
      }
    };
    m.body.append(h('p', { class: 'muted' }, 'The trial runs with exactly these parameters; as in NNI, its result is not sent to the tuner.'),
      ta, err, h('div', { class: 'actions' }, h('button', { class: 'primary', id: 'tr-custom-submit', onclick: submit }, 'Submit trial'),
        h('button', { onclick: m.close }, 'Cancel')));
    ta.focus();
  }

  async function compare() {
    const ids = [...st.selected].slice(0, MAX_COMPARE);
    const m = modal(`Compare ${ids.length} trials`, { wide: true });
    m.root.id = 'tr-compare-modal';
    m.body.append(h('div', { class: 'muted' }, 'Loading…'));
    try {
      const data = await Promise.all(ids.map(async (id) => ({
        row: await api('/trials/' + encodeURIComponent(id) + '/row'),
        metrics: await api('/trials/' + encodeURIComponent(id) + '/metrics' + qs({ type: 'PERIODICAL' })),
      })));
      const pnames = [...new Set(data.flatMap((d) => Object.keys(d.row.parameters || {})))];
      const fkeys = [...new Set(data.flatMap((d) => Object.keys(d.row.finalDict || {})))].filter((k) => k !== 'default');
      const line = (label, fn) => h('tr', {}, h('th', {}, label), data.map((d) => h('td', { class: 'mono' }, fn(d.row, d))));
      const plotEl = h('div', { class: 'plot', id: 'tr-compare-plot' });
      clear(m.body).append(
        h('table', { class: 'grid compact compare' },
          h('thead', {}, h('tr', {}, h('th', {}, ''), data.map((d) => h('th', {}, `#${d.row.sequenceId} ${d.row.trialJobId}`)))),
          h('tbody', {},
            line('Status', (r) => statusPill(r.status)), line('Metric', (r) => fmtNum(r.final)),
            fkeys.map((k) => line(k, (r) => fmtNum(r.finalDict ? r.finalDict[k] : null))),
            line('Duration', (r) => fmtDuration(liveDuration(r))), line('Intermediates', (r, d) => d.metrics.length),
            pnames.map((p) => line(p, (r) => fmtValue((r.parameters || {})[p]))))),
        h('h3', {}, 'Intermediate results'), plotEl);
      await draw(plotEl, data.map((d) => ({
        x: d.metrics.map((x) => x.sequence), y: d.metrics.map((x) => metricValue(x.value)),
        type: 'scatter', mode: 'lines+markers', name: `#${d.row.sequenceId}`,
      })), { height: 300, xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'value' } } });
    } catch (e) {
      clear(m.body).append(h('div', { class: 'error' }, e.message));
    }
  }

  // ---- live ---------------------------------------------------------------------------------
  const ticker = setInterval(() => {
    // running trials' durations grow without an event
    for (const tr of table.querySelectorAll('tbody tr[data-status="RUNNING"]')) {
      const r = st.rows.get(tr.dataset.trialId);
      const td = tr.querySelector('td[data-col="duration"]');
      if (r && td) td.textContent = fmtDuration(liveDuration(r));
    }
  }, 1000);

  renderStatusChips();
  load();
  if (arg) openDetail(arg);

  return {
    route(newArg) {
      if (newArg) openDetail(newArg);
      else {
        st.detail = null;
        purge(detail.querySelector('#tr-curve'));
        detail.hidden = true;
        for (const tr of table.querySelectorAll('tbody tr.open')) tr.classList.remove('open');
      }
    },
    onTrials(rows) {
      // Sorted or filtered, a changed row may belong elsewhere (or nowhere) on the page: re-read
      // the page instead of patching it out of order.  In the default order rows are patched.
      const sortedByLive = st.sort !== 'sequenceId' || st.order === 'desc' || st.statuses.size || st.search
        || Object.keys(st.params).length;
      let unseen = false;
      for (const r of rows) {
        const old = st.rows.get(r.trialJobId);
        if (old && !sortedByLive) {
          st.rows.set(r.trialJobId, r);
          const tr = table.querySelector(`tbody tr[data-trial-id="${CSS.escape(r.trialJobId)}"]`);
          if (tr) tr.replaceWith(rowEl(r));
        } else if (!old) {
          unseen = true;
        }
        if (st.detail === r.trialJobId && detailRow && r.status !== detailRow.status) {
          detailRow = r;
          renderDetail();
        }
      }
      // Trials not on screen may belong on this page (a new one, or one whose sort key changed).
      if (unseen || sortedByLive) reload();
    },
    onMetrics(rows) {
      if (!st.detail) return;
      let added = false;
      for (const m of rows) {
        if (m.trialJobId === st.detail && m.type === 'PERIODICAL' && !detailMetrics.some((x) => x.sequence === m.sequence)) {
          detailMetrics.push(m);
          added = true;
        }
      }
      if (added) redrawCurve();
    },
    unmount() { clearInterval(ticker); reload.cancel(); redrawCurve.cancel(); purge(detail.querySelector('#tr-curve')); },
  };
}
