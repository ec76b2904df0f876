// The app shell: hash routing between pages, the experiment summary every page shares, and one
// changes feed whose events are handed to whichever page is open (pages patch what they show
// instead of re-fetching everything).
import { api, subscribe } from './api.js';
import { h, clear, statusPill, toast } from './dom.js';
import * as overview from './overview.js';
import * as trials from './trials.js';
import * as plots from './plots.js';
import * as experiments from './experiments.js';

const PAGES = { overview, trials, plots, experiments };

export const app = {
  summary: null,
  page: null,
  pageName: null,
  feed: null,
};

function route() {
  // `/experiments` (a path the server maps to this page) opens the experiments list too.
  let hash = location.hash.replace(/^#\/?/, '');
  if (!hash) hash = location.pathname.replace(/\/+$/, '').endsWith('/experiments') ? 'experiments' : 'overview';
  const [path, query = ''] = hash.split('?');
  const [name, ...rest] = path.split('/');
  return { name: PAGES[name] ? name : 'overview', arg: rest.map(decodeURIComponent).join('/'),
    query: new URLSearchParams(query) };
}

function show() {
  const { name, arg, query } = route();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  if (app.pageName === name && app.page && app.page.route) {
    app.page.route(arg, query);
    return;
  }
  if (app.page && app.page.unmount) app.page.unmount();
  const main = clear(document.getElementById('main'));
  app.pageName = name;
  app.page = PAGES[name].mount(main, app, arg, query) || null;
  document.body.dataset.page = name;
}

function setTitle(s) {
  const el = clear(document.getElementById('exp-title'));
  if (!s) return;
  el.append(h('span', { class: 'exp-name', title: 'experiment name' }, s.experimentName || '(unnamed)'),
    h('span', { class: 'exp-id', title: 'experiment id' }, s.id), statusPill(s.status));
  if (s.readonly) el.append(h('span', { class: 'pill readonly', title: 'nniray view: changes are refused' }, 'read-only'));
  document.title = `${s.experimentName || s.id} · nniray`;
}

function onSummary(s) {
  app.summary = s;
  setTitle(s);
  if (app.page && app.page.onSummary) app.page.onSummary(s);
}

function setLive(state) {
  const el = document.getElementById('live');
  el.className = 'live ' + state;
  el.textContent = { live: 'live', reconnecting: 'reconnecting…', closed: 'offline' }[state] || state;
  document.body.dataset.live = state;
}

async function start() {
  try {
    onSummary(await api('/summary'));
  } catch (e) {
    const banner = document.getElementById('banner');
    banner.hidden = false;
    banner.textContent = e.status === 401 || e.status === 403
      ? `Not authorized: open the URL printed by nniray, with its ?token=… (${e.message})`
      : `Cannot read the experiment: ${e.message}`;
  }
  window.addEventListener('hashchange', show);
  show();
  app.feed = subscribe({
    summary: onSummary,
    trials: (rows) => { if (app.page && app.page.onTrials) app.page.onTrials(rows); },
    metrics: (rows) => { if (app.page && app.page.onMetrics) app.page.onMetrics(rows); },
  }, setLive);
}

window.addEventListener('unhandledrejection', (e) => {
  toast(String(e.reason && e.reason.message || e.reason), 'error');
});

start();
