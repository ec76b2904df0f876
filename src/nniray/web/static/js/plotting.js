// Plotly, loaded on first use (it is ~4.5 MB: the overview and the table must not wait for it),
// from the copy the `plotly` Python package ships, served by our own server.
import { withToken } from './api.js';

let loading = null;

export function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = withToken('/static/vendor/plotly.min.js');
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { loading = null; reject(new Error('could not load /static/vendor/plotly.min.js')); };
      document.head.append(s);
    });
  }
  return loading;
}

export const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ['lasso2d', 'select2d'] };

export function layout(extra = {}) {
  return {
    margin: { l: 60, r: 20, t: 30, b: 50 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#fff',
    font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#1f2933' },
    hovermode: 'closest',
    ...extra,
    xaxis: { zeroline: false, ...(extra.xaxis || {}) },
    yaxis: { zeroline: false, ...(extra.yaxis || {}) },
  };
}

export async function draw(el, traces, lay = {}) {
  const P = await plotly();
  await P.react(el, traces, layout(lay), CONFIG);
  return P;
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}
