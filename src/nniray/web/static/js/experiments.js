// All experiments on this machine (the registry, via NNI's /experiments-info), with a filter and
// a link to each one that a process is serving now.
import { api } from './api.js';
import { h, clear, statusPill, fmtTime, debounce, toast } from './dom.js';

export function mount(root, app) {
  const filter = h('input', { type: 'search', id: 'ex-filter', placeholder: 'Filter by id, name, status or directory' });
  const table = h('table', { class: 'grid', id: 'ex-table' });
  const count = h('span', { class: 'total', id: 'ex-total' });
  root.append(h('div', { class: 'experiments' },
    h('div', { class: 'toolbar' }, h('h2', {}, 'All experiments'), filter, count), h('div', { class: 'table-wrap' }, table)));
  let all = [];

  function render() {
    const q = filter.value.trim().toLowerCase();
    const rows = all.filter((e) => !q || [e.id, e.experimentName, e.status, e.logDir, e.platform].some((x) => String(x ?? '').toLowerCase().includes(q)));
    count.textContent = `${rows.length} of ${all.length}`;
    const current = app.summary ? app.summary.id : null;
    clear(table).append(
      h('thead', {}, h('tr', {}, ['ID', 'Name', 'Status', 'Platform', 'Start', 'End', 'Port', 'Directory'].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((e) => {
        const served = e.port && e.pid;
        const url = Array.isArray(e.webuiUrl) && e.webuiUrl.length ? e.webuiUrl[0] : (e.port ? `http://127.0.0.1:${e.port}` : null);
        const idCell = e.id === current
          ? h('a', { href: '#/overview' }, e.id, h('span', { class: 'muted' }, ' (this one)'))
          : served && url ? h('a', { href: url + '/', target: '_blank', rel: 'noopener' }, e.id) : e.id;
        return h('tr', { dataset: { expId: e.id }, class: e.id === current ? 'current' : '' },
          h('td', { class: 'mono' }, idCell), h('td', {}, e.experimentName || '—'), h('td', {}, statusPill(e.status)),
          h('td', {}, e.platform || '—'), h('td', {}, fmtTime(e.startTime)), h('td', {}, fmtTime(e.endTime)),
          h('td', { class: 'num' }, served ? e.port : '—'), h('td', { class: 'mono small' }, e.logDir || '—'));
      })));
    if (!rows.length) table.append(h('tbody', {}, h('tr', {}, h('td', { colspan: 8, class: 'muted empty' }, 'No experiment'))));
  }

  async function load() {
    try {
      all = (await api('/experiments-info')) || [];
      all.sort((a, b) => (b.startTime || 0) - (a.startTime || 0));
      render();
      table.dataset.loaded = '1';
    } catch (e) {
      toast(e.message, 'error');
    }
  }
  filter.addEventListener('input', debounce(render, 150));
  load();
  const timer = setInterval(load, 10000);  // other experiments are not on this one's feed
  return { unmount() { clearInterval(timer); } };
}
