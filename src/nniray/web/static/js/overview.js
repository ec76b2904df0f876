// Overview: what the experiment is, how far it has got, its best trial, and the three limits
// NNI lets a user change while it runs (edited in place through NNI's PUT /experiment).
import { api, qs } from './api.js';
import { h, clear, statusPill, fmtTime, fmtDuration, fmtNum, fmtCount, STATUSES, toast, modal } from './dom.js';

// update_type → the profile field NNI's PUT /experiment reads, and how to show / parse it.
const EDITS = {
  trialConcurrency: { type: 'TRIAL_CONCURRENCY', label: 'Concurrency', parse: (t) => parseInt(t, 10), show: (v) => v ?? '—' },
  maxTrialNumber: { type: 'MAX_TRIAL_NUM', label: 'Max trial number', parse: (t) => parseInt(t, 10), show: (v) => v ?? 'unlimited' },
  maxExperimentDuration: {
    type: 'MAX_EXEC_DURATION', label: 'Max duration',
    // NNI's duration text ("90s", "30m", "2h", "1d"); a bare number means seconds.
    parse: (t) => (/^\d+(\.\d+)?$/.test(t.trim()) ? t.trim() + 's' : t.trim()),
    show: (v) => (v === null || v === undefined ? 'unlimited' : fmtDuration(v)),
  },
};

export function mount(root, app) {
  const el = h('div', { class: 'overview' });
  root.append(el);
  let top = null;
  let editing = null;
  const topRefresh = { timer: null };

  function render(s) {
    if (!s || editing) return;
    clear(el);
    const elapsed = s.execDuration ?? 0;
    const max = s.maxExperimentDuration;
    const done = s.total ?? 0;
    el.append(
      h('section', { class: 'card info', id: 'ov-info' },
        h('h2', {}, 'Experiment'),
        kv('Name', s.experimentName || '(unnamed)', 'ov-name'),
        kv('ID', s.id, 'ov-id'),
        h('div', { class: 'kv' }, h('span', { class: 'k' }, 'Status'), h('span', { class: 'v', id: 'ov-status' }, statusPill(s.status))),
        s.errors && s.errors.length ? h('div', { class: 'errors', id: 'ov-errors' },
          s.errors.map((e) => h('div', { class: 'error' }, e))) : null,
        kv('Start', fmtTime(s.startTime), 'ov-start'),
        kv('End', s.endTime ? fmtTime(s.endTime) : '—', 'ov-end'),
        kv('Optimize', s.optimizeMode || '—'),
        h('div', { class: 'actions' },
          h('button', { onclick: showProfile }, 'Config & search space')),
      ),
      h('section', { class: 'card progress', id: 'ov-progress' },
        h('h2', {}, 'Progress'),
        h('div', { class: 'meter-label' }, 'Elapsed ', h('b', { id: 'ov-elapsed' }, fmtDuration(elapsed)),
          max ? ` of ${fmtDuration(max)}` : ' (no duration limit)'),
        meter(max ? elapsed / max : null),
        h('div', { class: 'meter-label' }, 'Trials ', h('b', { id: 'ov-total' }, fmtCount(done)),
          s.maxTrialNumber ? ` of ${fmtCount(s.maxTrialNumber)}` : ' (no trial limit)'),
        meter(s.maxTrialNumber ? done / s.maxTrialNumber : null),
        statusBar(s.counts || {}, done),
        h('div', { class: 'limits' }, Object.keys(EDITS).map((f) => editable(f, s))),
      ),
      h('section', { class: 'card best', id: 'ov-best' },
        h('h2', {}, 'Best metric'),
        s.best ? [
          h('div', { class: 'big', id: 'ov-best-value' }, fmtNum(s.best.value)),
          h('div', {}, 'Trial ', h('a', { href: '#/trials/' + encodeURIComponent(s.best.trialJobId), id: 'ov-best-trial' },
            `#${s.best.sequenceId} ${s.best.trialJobId}`)),
        ] : h('div', { class: 'muted', id: 'ov-best-value' }, 'No final result yet'),
      ),
      h('section', { class: 'card top', id: 'ov-top' }, h('h2', {}, 'Top trials'), top || h('div', { class: 'muted' }, 'Loading…')),
    );
  }

  function kv(k, v, id) {
    return h('div', { class: 'kv' }, h('span', { class: 'k' }, k), h('span', { class: 'v', id }, v));
  }

  function meter(frac) {
    const pct = frac === null ? 0 : Math.max(0, Math.min(1, frac)) * 100;
    return h('div', { class: 'meter' + (frac === null ? ' none' : '') }, h('div', { style: `width:${pct.toFixed(1)}%` }));
  }

  function statusBar(counts, total) {
    const bar = h('div', { class: 'statusbar' });
    const legend = h('div', { class: 'legend', id: 'ov-counts' });
    for (const st of STATUSES) {
      const n = counts[st] || 0;
      if (total && n) bar.append(h('div', { class: 'seg s-' + st.toLowerCase(), style: `flex:${n}`, title: `${st}: ${n}` }));
      legend.append(h('a', { href: '#/trials?status=' + st, class: 'count', dataset: { status: st } },
        statusPill(st), ' ', h('b', {}, fmtCount(n))));
    }
    return [bar, legend];
  }

  function editable(field, s) {
    const spec = EDITS[field];
    const value = s[field];
    const wrap = h('div', { class: 'limit', id: 'ov-edit-' + field });
    const showView = () => {
      clear(wrap).append(h('span', { class: 'k' }, spec.label), h('span', { class: 'v' }, String(spec.show(value))),
        s.readonly ? null : h('button', { class: 'small', title: 'Change while the experiment runs', onclick: showEdit }, 'Edit'));
    };
    const showEdit = () => {
      editing = field;
      const input = h('input', { type: 'text', value: field === 'maxExperimentDuration' ? (value ? value + 's' : '') : (value ?? ''),
        placeholder: field === 'maxExperimentDuration' ? 'e.g. 30m, 2h' : 'number', 'aria-label': spec.label });
      const save = async () => {
        const text = input.value.trim();
        if (!text) { toast(`${spec.label}: give a value`, 'error'); return; }
        const parsed = spec.parse(text);
        if (typeof parsed === 'number' && (!Number.isFinite(parsed) || parsed < 1)) {
          toast(`${spec.label} must be a whole number ≥ 1`, 'error');
          return;
        }
        try {
          // NNI's route takes the whole profile with the changed field in `params`.
          const profile = await api('/experiment');
          profile.params = { ...(profile.params || {}), [field]: parsed };
          await api('/experiment' + qs({ update_type: spec.type }), { method: 'PUT', body: profile });
          toast(`${spec.label} set to ${text}`);
          editing = null;
          app.summary = await api('/summary');
          render(app.summary);
        } catch (e) {
          toast(`${spec.label}: ${e.message}`, 'error');
        }
      };
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') save();
        if (e.key === 'Escape') { editing = null; render(app.summary); }
      });
      clear(wrap).append(h('span', { class: 'k' }, spec.label), input,
        h('button', { class: 'small primary', onclick: save }, 'Save'),
        h('button', { class: 'small', onclick: () => { editing = null; render(app.summary); } }, 'Cancel'));
      input.focus();
      input.select();
    };
    showView();
    return wrap;
  }

  async function showProfile() {
    const m = modal('Config & search space', { wide: true });
    try {
      const p = await api('/experiment');
      m.body.append(h('pre', { class: 'json' }, JSON.stringify(p.params || p, null, 2)));
    } catch (e) {
      m.body.append(h('div', { class: 'error' }, e.message));
    }
  }

  async function loadTop() {
    const s = app.summary;
    const order = s && s.optimizeMode === 'minimize' ? 'asc' : 'desc';
    try {
      const page = await api('/trials/page' + qs({ limit: 10, sort: 'final', order, status: 'SUCCEEDED' }));
      const params = page.columns ? page.columns.params : [];
      top = h('table', { class: 'grid compact' },
        h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Trial'), h('th', {}, 'Metric'), h('th', {}, 'Duration'),
          params.slice(0, 4).map((p) => h('th', {}, p)))),
        h('tbody', {}, page.items.map((r) => h('tr', {},
          h('td', {}, r.sequenceId),
          h('td', {}, h('a', { href: '#/trials/' + encodeURIComponent(r.trialJobId) }, r.trialJobId)),
          h('td', { class: 'num' }, fmtNum(r.final)),
          h('td', { class: 'num' }, fmtDuration(r.duration)),
          params.slice(0, 4).map((p) => h('td', {}, fmtNum(r.parameters[p])))))));
      if (!page.items.length) top = h('div', { class: 'muted' }, 'No succeeded trial yet');
    } catch (e) {
      top = h('div', { class: 'error' }, e.message);
    }
    const slot = el.querySelector('#ov-top');
    if (slot) { clear(slot).append(h('h2', {}, 'Top trials'), top); }
  }

  render(app.summary);
  loadTop();
  // The elapsed time moves between summaries; the feed's summary resets it.
  const tick = setInterval(() => {
    const s = app.summary;
    const e = el.querySelector('#ov-elapsed');
    if (s && e && s.status === 'RUNNING' && s._seenAt) e.textContent = fmtDuration(s.execDuration + (Date.now() - s._seenAt) / 1000);
  }, 1000);

  return {
    onSummary(s) {
      s._seenAt = Date.now();
      const changedBest = !top || JSON.stringify(s.best) !== JSON.stringify(this._best);
      this._best = s.best;
      render(s);
      if (changedBest) {
        clearTimeout(topRefresh.timer);
        topRefresh.timer = setTimeout(loadTop, 1000);
      }
    },
    unmount() { clearInterval(tick); clearTimeout(topRefresh.timer); },
  };
}
