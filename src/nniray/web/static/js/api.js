// Talking to the experiment's server: every call carries the page's ?token=, errors become
// exceptions carrying the server's {error} text, and the changes feed is one EventSource that
// resumes from its last cursor after a dropped connection.

const PREFIX = '/api/v1/nni';

export const token = new URLSearchParams(location.search).get('token') || '';

// A URL with the token in its query (for EventSource, links and file views, which cannot set
// headers); plain fetches send it as a header too.
export function withToken(url) {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body, text = false, signal } = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(withToken(PREFIX + path), {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const raw = await resp.text();
  if (!resp.ok) {
    let msg = raw;
    try { msg = JSON.parse(raw).error || raw; } catch (e) { /* plain-text error body */ }
    throw new ApiError(resp.status, msg || `${method} ${path}: HTTP ${resp.status}`);
  }
  if (text) return raw;
  return raw ? JSON.parse(raw) : null;
}

// Query string from an object, skipping empty values.
export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

// The live feed.  `handlers` maps an event name (summary | trials | metrics) to a callback;
// `onState` hears 'live' | 'reconnecting' | 'closed'.  EventSource's own retry cannot change
// the URL, so a dropped connection is reopened here with since=<last cursor> (nothing missed).
export function subscribe(handlers, onState = () => {}) {
  let source = null;
  let lastId = null;
  let stopped = false;
  let retry = 500;
  const open = () => {
    if (stopped) return;
    const q = lastId === null ? '' : '?since=' + encodeURIComponent(lastId);
    source = new EventSource(withToken(PREFIX + '/events' + q));
    source.onopen = () => { retry = 500; onState('live'); };
    for (const name of Object.keys(handlers)) {
      source.addEventListener(name, (ev) => {
        if (ev.lastEventId) lastId = ev.lastEventId;
        let data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        handlers[name](data);
      });
    }
    source.onerror = () => {
      source.close();
      if (stopped) return;
      onState('reconnecting');
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  open();
  return { close() { stopped = true; if (source) source.close(); onState('closed'); } };
}
