// Exchanges (list and page with bindings and publish) and all bindings.
import { h, num } from './util.js';
import { get, del, seg } from './api.js';
import { Table } from './table.js';
import { card, kv, badge, pageHead, confirmDialog, toast, publishForm } from './ui.js';
import { queueHref } from './queues.js';

const exName = (n) => n || 'amq.default';
export const exchangeHref = (vh, name) => `#/exchanges/${seg(vh)}/${seg(exName(name))}`;
const exLabel = (n) => (n ? n : '(AMQP default)');

function flags(e) {
  return h('span', null, badge(e.type, 'info'), e.durable ? null : badge('transient', 'warn'),
    e.auto_delete ? badge('auto-delete') : null, e.internal ? badge('internal') : null);
}

export function exchanges(ctx) {
  const table = new Table({
    name: 'exchanges',
    filterText: (e) => [e.name, e.type, e.vhost],
    columns: [
      { key: 'name', label: 'Name', render: (e) => h('a.strong', { href: exchangeHref(e.vhost, e.name) }, exLabel(e.name)) },
      { key: 'vhost', label: 'Vhost' },
      { key: 'type', label: 'Type', render: flags },
      { key: 'args', label: 'Arguments', nosort: true, render: (e) => Object.keys(e.arguments || {}).length ? h('code', null, JSON.stringify(e.arguments)) : '' },
    ],
  });
  const count = h('span');
  ctx.el.append(pageHead('Exchanges', count), card(null, table.el));
  ctx.poll(async () => {
    const es = await get('/api/exchanges');
    count.textContent = `${num(es.length)} exchanges`;
    table.setRows(es);
  }, 8000);
}

function bindingRows(bs, vhost, sourceSide) {
  if (!bs.length) return h('p.muted', null, 'None.');
  return h('table.data.compact', null,
    h('thead', null, h('tr', null, [sourceSide ? 'To' : 'From', 'Routing key', 'Arguments'].map((x) => h('th', null, x)))),
    h('tbody', null, bs.map((b) => {
      const other = sourceSide ? b.destination : b.source;
      const kind = sourceSide ? b.destination_type : 'exchange';
      return h('tr', null,
        h('td', null, kind === 'queue' ? h('a', { href: queueHref(vhost, other) }, other) : h('a', { href: exchangeHref(vhost, other) }, exLabel(other)),
          ' ', badge(kind)),
        h('td', null, h('code', null, b.routing_key)),
        h('td', null, Object.keys(b.arguments || {}).length ? JSON.stringify(b.arguments) : ''));
    })));
}

export function exchangeDetail(ctx) {
  const { vhost, name } = ctx.params;
  const real = name === 'amq.default' ? '' : name;
  const base = `/api/exchanges/${seg(vhost)}/${seg(name)}`;
  const info = h('div'), src = h('div'), dst = h('div');
  const deleteBtn = h('button.danger', { onclick: async () => {
    const ok = await confirmDialog({
      title: `Delete exchange “${name}”?`,
      body: 'The exchange and every binding from or to it are deleted. Publishers to it will get channel errors. This cannot be undone.',
      action: 'Delete exchange', typeToConfirm: name,
    });
    if (!ok) return;
    try {
      await del(base);
      toast(`Exchange ${name} deleted`);
      location.hash = '#/exchanges';
    } catch (e) { toast(e.message, 'error'); }
  } }, 'Delete');
  const predeclared = real === '' || real.startsWith('amq.');
  ctx.el.append(
    pageHead(exLabel(real), h('span', null, h('a', { href: '#/exchanges' }, 'Exchanges'), ` · vhost ${vhost}`), predeclared ? null : deleteBtn),
    h('div.cols', null,
      h('div', null, card('Details', info), card('Bindings from this exchange', src), card('Bindings to this exchange', dst)),
      h('div', null, card('Publish message', publishForm(vhost, name, null)))));
  ctx.poll(async () => {
    const e = await get(base);
    info.replaceChildren(kv([['Type', flags(e)], ['Vhost', e.vhost], ['Durable', String(e.durable)],
      ['Auto-delete', String(e.auto_delete)], ['Internal', String(e.internal)],
      ['Policy', e.policy ? h('a', { href: '#/policies' }, e.policy) : 'none'],
      ['Arguments', Object.keys(e.arguments || {}).length ? JSON.stringify(e.arguments) : 'none']]));
    if (real === '') {
      src.replaceChildren(h('p.muted', null, 'The default exchange routes to the queue whose name is the routing key; every queue is bound to it implicitly.'));
    } else {
      src.replaceChildren(bindingRows(await get(base + '/bindings/source'), vhost, true));
    }
    dst.replaceChildren(bindingRows(await get(base + '/bindings/destination'), vhost, false));
  }, 6000);
}

export function bindings(ctx) {
  const table = new Table({
    name: 'bindings',
    filterText: (b) => [b.source, b.destination, b.routing_key, b.vhost],
    sort: ['source', false],
    columns: [
      { key: 'source', label: 'Source', render: (b) => h('a', { href: exchangeHref(b.vhost, b.source) }, exLabel(b.source)) },
      { key: 'destination', label: 'Destination', render: (b) => h('span', null,
        b.destination_type === 'queue' ? h('a', { href: queueHref(b.vhost, b.destination) }, b.destination) : h('a', { href: exchangeHref(b.vhost, b.destination) }, b.destination),
        ' ', badge(b.destination_type)) },
      { key: 'routing_key', label: 'Routing key', render: (b) => h('code', null, b.routing_key) },
      { key: 'vhost', label: 'Vhost' },
      { key: 'arguments', label: 'Arguments', nosort: true, render: (b) => Object.keys(b.arguments || {}).length ? JSON.stringify(b.arguments) : '' },
    ],
  });
  const count = h('span');
  const hideDefault = h('input', { type: 'checkbox', checked: true });
  let all = [];
  const show = () => table.setRows(hideDefault.checked ? all.filter((b) => b.source !== '') : all);
  hideDefault.addEventListener('change', show);
  ctx.el.append(pageHead('Bindings', count, h('label.check', null, hideDefault, ' hide default-exchange bindings')), card(null, table.el));
  ctx.poll(async () => {
    all = await get('/api/bindings');
    count.textContent = `${num(all.length)} bindings (${num(all.filter((b) => b.source !== '').length)} explicit)`;
    show();
  }, 8000);
}
