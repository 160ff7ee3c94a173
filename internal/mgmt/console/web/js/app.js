// The console's shell: login, navigation, hash routing and the per-page
// context that stops a page's polling when the user leaves it.
import { h } from './util.js';
import { get, credentials, setCredentials, clearCredentials, setUnauthorizedHandler, user, APIError } from './api.js';
import * as metrics from './metrics.js';
import { overview } from './overview.js';
import { queues, queueDetail } from './queues.js';
import { exchanges, exchangeDetail, bindings } from './exchanges.js';
import { connections, connectionDetail } from './connections.js';
import { topics, topicDetail, groups, groupDetail } from './kafka.js';
import { policies } from './policies.js';
import { acls } from './acls.js';
import { nodes } from './nodes.js';

const ROUTES = [
  ['', overview, 'overview'],
  ['queues', queues, 'queues'],
  ['queues/:vhost/:name', queueDetail, 'queues'],
  ['exchanges', exchanges, 'exchanges'],
  ['exchanges/:vhost/:name', exchangeDetail, 'exchanges'],
  ['bindings', bindings, 'bindings'],
  ['policies', policies, 'policies'],
  ['connections', connections, 'connections'],
  ['connections/:name', connectionDetail, 'connections'],
  ['topics', topics, 'topics'],
  ['topics/:name', topicDetail, 'topics'],
  ['groups', groups, 'groups'],
  ['groups/:id', groupDetail, 'groups'],
  ['acls', acls, 'acls'],
  ['nodes', nodes, 'nodes'],
];

const NAV = [
  ['overview', '#/', 'Overview', 'M3 13h4v8H3zM10 3h4v18h-4zM17 8h4v13h-4z'],
  ['queues', '#/queues', 'Queues', 'M4 6h16M4 12h16M4 18h10'],
  ['exchanges', '#/exchanges', 'Exchanges', 'M5 7h11l-3-3M19 17H8l3 3'],
  ['bindings', '#/bindings', 'Bindings', 'M9 12h6M7 8a4 4 0 000 8M17 8a4 4 0 010 8'],
  ['policies', '#/policies', 'Policies', 'M6 4h9l3 3v13H6zM9 10h6M9 14h6'],
  ['connections', '#/connections', 'Connections', 'M5 12h4M15 12h4M9 8v8M15 8v8'],
  ['topics', '#/topics', 'Topics', 'M4 5h16v4H4zM4 10h16v4H4zM4 15h16v4H4z'],
  ['groups', '#/groups', 'Consumer groups', 'M8 11a3 3 0 100-6 3 3 0 000 6M16 11a3 3 0 100-6 3 3 0 000 6M3 20c0-3 2-5 5-5s5 2 5 5M11 20c0-3 2-5 5-5s5 2 5 5'],
  ['acls', '#/acls', 'Kafka ACLs', 'M12 3l7 3v6c0 4-3 7-7 9-4-2-7-5-7-9V6zM9 12l2 2 4-4'],
  ['nodes', '#/nodes', 'Nodes', 'M4 4h16v6H4zM4 14h16v6H4zM8 7h.01M8 17h.01'],
];

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const status = document.getElementById('status');
let current = null; // the page context in effect

function icon(d) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  svg.append(p);
  return svg;
}

function buildNav() {
  nav.replaceChildren(...NAV.map(([id, href, label, d]) =>
    h('a', { href, dataset: { nav: id } }, icon(d), h('span', null, label))));
}

function match(path) {
  const parts = path.split('/').filter((p, i) => p !== '' || i > 0);
  for (const [pattern, page, section] of ROUTES) {
    const pp = pattern ? pattern.split('/') : [];
    if (pp.length !== parts.length) continue;
    const params = {};
    let ok = true;
    pp.forEach((p, i) => {
      if (p.startsWith(':')) {
        try { params[p.slice(1)] = decodeURIComponent(parts[i]); } catch { ok = false; }
      } else if (p !== parts[i]) ok = false;
    });
    if (ok) return { page, section, params };
  }
  return null;
}

// Context is what a page gets: its element, its parameters, and timers
// and subscriptions that end when the page does.
class Context {
  constructor(el, params) {
    this.el = el;
    this.params = params;
    this.timers = [];
    this.cleanups = [];
    this.alive = true;
  }
  // poll runs f now and then every ms while the page is shown; a failing
  // poll shows its error in the page's banner and keeps polling.
  poll(f, ms) {
    let t;
    const run = async () => {
      if (!this.alive) return;
      try {
        await f();
        this.banner(null);
      } catch (e) {
        if (!(e instanceof APIError && e.status === 401)) this.banner(e);
      }
      if (this.alive) t = setTimeout(run, ms);
      this.timers.push(() => clearTimeout(t));
    };
    run();
  }
  onMetrics(f) {
    this.cleanups.push(metrics.subscribe(f));
    f();
  }
  onCleanup(f) { this.cleanups.push(f); }
  banner(err) {
    let b = this.el.querySelector(':scope > .page-error');
    if (!err) { if (b) b.remove(); return; }
    if (!b) { b = h('div.page-error', { role: 'alert' }); this.el.prepend(b); }
    b.textContent = err.status === 404 ? 'Not found: it may have been deleted.' : err.message;
  }
  close() {
    this.alive = false;
    this.timers.forEach((f) => f());
    this.cleanups.forEach((f) => f());
  }
}

function route() {
  if (!credentials()) return showLogin();
  const path = location.hash.replace(/^#\/?/, '');
  const m = match(path);
  if (current) current.close();
  view.replaceChildren();
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', m && a.dataset.nav === m.section);
  if (!m) {
    view.append(h('div.empty-page', null, h('h1', null, 'Page not found'), h('a', { href: '#/' }, 'Back to the overview')));
    return;
  }
  const el = h('div.page');
  view.append(el);
  current = new Context(el, m.params);
  m.page(current);
  view.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function showLogin(reason) {
  if (current) { current.close(); current = null; }
  document.body.classList.add('logged-out');
  const name = h('input', { name: 'username', autocomplete: 'username', required: true, value: 'guest' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('div.login-error', { role: 'alert' }, reason || '');
  const btn = h('button.primary', { type: 'submit' }, 'Log in');
  const form = h('form.login-card', {
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      btn.disabled = true;
      setCredentials(name.value, pass.value);
      try {
        const who = await get('/api/whoami');
        document.body.classList.remove('logged-out');
        document.getElementById('who').textContent = who.name;
        route();
      } catch (ex) {
        clearCredentials();
        err.textContent = ex.status === 401 ? `Login refused: ${ex.message}` : ex.message;
        btn.disabled = false;
        pass.select();
      }
    },
  },
  h('div.brand.big', null, h('span.logo'), 'Sluice'),
  h('p.muted', null, 'Sign in with a Sluice user that has a management, monitoring or administrator tag.'),
  h('label.field', null, h('span', null, 'Username'), name),
  h('label.field', null, h('span', null, 'Password'), pass),
  err, btn);
  view.replaceChildren(h('div.login-wrap', null, form));
  (name.value ? pass : name).focus();
}

setUnauthorizedHandler((e) => {
  if (document.body.classList.contains('logged-out')) return; // the form reports it
  // A 401 on a page means the stored credentials stopped working (user
  // deleted, password changed) or lack a tag: back to the login form.
  clearCredentials();
  showLogin(`Session ended: ${e.message}`);
});

function setupTheme() {
  const stored = localStorage.getItem('sluice.console.theme');
  if (stored) document.documentElement.dataset.theme = stored;
  document.getElementById('theme').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === 'dark'
      : matchMedia('(prefers-color-scheme: dark)').matches;
    const next = dark ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('sluice.console.theme', next);
    if (current) route();
  });
}

function setupStatus() {
  metrics.subscribe(() => {
    const s = metrics.history.last();
    status.replaceChildren();
    if (metrics.lastError) {
      status.append(h('span.dot.bad'), 'metrics unavailable');
      return;
    }
    if (!s) return;
    if (s.alarms.length) {
      status.append(h('span.dot.bad'), h('span.alarm', { dataset: { alarms: s.alarms.join(',') } }, 'alarm: ' + s.alarms.join(', ')));
    } else {
      status.append(h('span.dot.ok'), 'live');
    }
  });
}

document.getElementById('logout').addEventListener('click', () => {
  clearCredentials();
  location.hash = '#/';
  showLogin();
});

buildNav();
setupTheme();
setupStatus();
metrics.start();
window.addEventListener('hashchange', () => { if (credentials()) route(); });
if (credentials()) {
  document.getElementById('who').textContent = user();
  document.body.classList.remove('logged-out');
  route();
} else {
  showLogin();
}
