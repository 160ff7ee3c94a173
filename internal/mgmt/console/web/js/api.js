// Talking to the management API: basic-auth credentials kept in
// sessionStorage (gone when the tab closes), JSON in and out, and one
// error type that pages show to the user.

const KEY = 'sluice.console.auth';

export class APIError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

export function credentials() {
  return sessionStorage.getItem(KEY);
}

export function user() {
  const c = credentials();
  if (!c) return '';
  try { return atob(c).split(':')[0]; } catch { return ''; }
}

export function setCredentials(name, pass) {
  // btoa needs Latin-1; encode UTF-8 first so any password works.
  const bytes = new TextEncoder().encode(`${name}:${pass}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  sessionStorage.setItem(KEY, btoa(bin));
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

// request sends one API call. A 401 clears nothing by itself: the handler
// decides (the login form shows the reason).
export async function request(method, path, body, extra) {
  const headers = { 'X-Requested-With': 'XMLHttpRequest', ...extra };
  const c = credentials();
  if (c) headers.Authorization = 'Basic ' + c;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new APIError(0, 'the broker cannot be reached (' + e.message + ')');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) {
    const reason = data && data.reason ? data.reason : `${resp.status} ${resp.statusText}`;
    const err = new APIError(resp.status, reason);
    if (resp.status === 401) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (p) => request('GET', p);
export const post = (p, b) => request('POST', p, b ?? {});
export const put = (p, b) => request('PUT', p, b ?? {});
export const del = (p) => request('DELETE', p);

// seg encodes one path segment the way the API expects ("/" is %2F).
export const seg = (s) => encodeURIComponent(s);
