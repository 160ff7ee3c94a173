// DOM and formatting helpers shared by the pages.

// h builds an element: h('a.link', {href}, child, ...). Children that are
// strings become text nodes, so data from the broker is never parsed as HTML.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const e = document.createElement(name || 'div');
  if (classes.length) e.className = classes.join(' ');
  if (attrs instanceof Node || typeof attrs !== 'object' || Array.isArray(attrs)) {
    children.unshift(attrs); // h(tag, child, ...) without attributes
    attrs = null;
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k in e && k !== 'list' && typeof v !== 'string') e[k] = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const UNITS = ['', 'k', 'M', 'G', 'T'];

// num formats a count: 1234 -> "1,234"; fractional rates get one decimal.
export function num(v) {
  if (v == null || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 1e6) return compact(v);
  if (!Number.isInteger(v)) return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
  return v.toLocaleString('en-US');
}

// compact: 1234567 -> "1.2M".
export function compact(v) {
  if (v == null || Number.isNaN(v)) return '–';
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1000 && i < UNITS.length - 1) { x /= 1000; i++; }
  const s = i === 0 ? (Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 1 : 0)) : x.toFixed(x < 10 ? 1 : 0);
  return (v < 0 ? '-' : '') + s + UNITS[i];
}

export function rate(v) {
  return v == null || Number.isNaN(v) ? '–' : compact(Math.round(v * 10) / 10) + '/s';
}

export function bytes(v) {
  if (v == null || Number.isNaN(v)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 && (v >= 10 || Number.isInteger(v)) ? String(Math.round(v)) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + u[i];
}

export function ms(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return '–';
  const m = seconds * 1000;
  return m >= 100 ? Math.round(m) + ' ms' : m >= 1 ? m.toFixed(1) + ' ms' : m.toFixed(2) + ' ms';
}

export function ago(t) {
  if (!t) return '–';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return Math.round(s) + 's ago';
  if (s < 3600) return Math.round(s / 60) + 'm ago';
  if (s < 86400) return Math.round(s / 3600) + 'h ago';
  return Math.round(s / 86400) + 'd ago';
}

export function vhostLabel(v) {
  return v === '/' ? '/' : v;
}

// Ring keeps the last n samples of something.
export class Ring {
  constructor(n) { this.n = n; this.items = []; }
  push(x) { this.items.push(x); if (this.items.length > this.n) this.items.shift(); }
  last() { return this.items[this.items.length - 1]; }
  get length() { return this.items.length; }
}

// RateTracker turns cumulative counters into per-second rates between two
// polls, one key at a time; a counter that goes down (a broker restart)
// restarts from there instead of showing a negative rate.
export class RateTracker {
  constructor() { this.prev = new Map(); }
  rate(key, value, t) {
    const p = this.prev.get(key);
    this.prev.set(key, [value, t]);
    if (!p || t <= p[1] || value < p[0]) return NaN;
    return ((value - p[0]) * 1000) / (t - p[1]);
  }
}
