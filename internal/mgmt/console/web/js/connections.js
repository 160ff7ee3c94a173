// AMQP connections: list, and a page with channels and a close button.
import { h, num, ago } from './util.js';
import { get, request, seg } from './api.js';
import { Table } from './table.js';
import { card, kv, badge, pageHead, confirmDialog, toast, field } from './ui.js';

const href = (name) => '#/connections/' + seg(name);
const clientName = (c) => {
  const p = c.client_properties || {};
  return [p.product, p.version].filter(Boolean).join(' ') || p.connection_name || '';
};

export function connections(ctx) {
  const table = new Table({
    name: 'connections',
    empty: 'No AMQP connections. (Kafka clients are not listed here; see topics and consumer groups.)',
    filterText: (c) => [c.name, c.user, c.vhost, clientName(c)],
    sort: ['connected_at', true],
    columns: [
      { key: 'name', label: 'Name', render: (c) => h('a.strong', { href: href(c.name) }, c.name) },
      { key: 'user', label: 'User' },
      { key: 'vhost', label: 'Vhost' },
      { key: 'client', label: 'Client', value: clientName, render: clientName },
      { key: 'channels', label: 'Channels', num: true },
      { key: 'connected_at', label: 'Connected', num: true, render: (c) => ago(c.connected_at) },
      { key: 'node', label: 'Node' },
    ],
  });
  const count = h('span');
  ctx.el.append(pageHead('Connections', count), card(null, table.el));
  ctx.poll(async () => {
    const cs = await get('/api/connections');
    count.textContent = `${num(cs.length)} AMQP connections`;
    table.setRows(cs);
  }, 5000);
}

export function connectionDetail(ctx) {
  const { name } = ctx.params;
  const base = '/api/connections/' + seg(name);
  const info = h('div'), chans = h('div'), props = h('div');
  const closeBtn = h('button.danger', { onclick: async () => {
    const reason = h('input', { value: 'Closed via the Sluice console' });
    const ok = await confirmDialog({
      title: 'Close this connection?',
      body: h('span', null, `The client at ${name} is disconnected with 320 CONNECTION_FORCED. Its unacknowledged messages are requeued.`, field('Reason sent to the client', reason)),
      action: 'Close connection',
    });
    if (!ok) return;
    try {
      await request('DELETE', base, undefined, { 'X-Reason': reason.value });
      toast('Connection closed');
      location.hash = '#/connections';
    } catch (e) { toast(e.message, 'error'); }
  } }, 'Close connection');
  ctx.el.append(pageHead('Connection', h('span', null, h('a', { href: '#/connections' }, 'Connections'), ' · ', name), closeBtn),
    h('div.cols', null, h('div', null, card('Details', info), card('Client properties', props)), h('div', null, card('Channels', chans))));
  ctx.poll(async () => {
    const c = await get(base);
    info.replaceChildren(kv([['User', c.user], ['Vhost', c.vhost], ['Protocol', c.protocol],
      ['Peer', `${c.peer_host}:${c.peer_port}`], ['Local', `${c.host}:${c.port}`],
      ['Connected', c.connected_at ? new Date(c.connected_at).toLocaleString() + ` (${ago(c.connected_at)})` : '–'],
      ['Heartbeat', c.timeout + ' s'], ['Frame max', num(c.frame_max)], ['Channel max', num(c.channel_max)]]));
    const cp = c.client_properties || {};
    props.replaceChildren(kv(Object.entries(cp).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    const chs = await get(base + '/channels');
    chans.replaceChildren(chs.length ? h('table.data.compact', null,
      h('thead', null, h('tr', null, ['#', 'Mode', 'Prefetch', 'Consumers', 'Unacked'].map((x) => h('th', null, x)))),
      h('tbody', null, chs.map((ch) => h('tr', null, h('td', null, ch.number),
        h('td', null, ch.confirm ? badge('confirm', 'info') : null, ch.transactional ? badge('tx', 'info') : null),
        h('td.num', null, num(ch.prefetch_count)), h('td.num', null, num(ch.consumer_count)), h('td.num', null, num(ch.messages_unacknowledged)))))) : h('p.muted', null, 'No channels open.'));
  }, 4000);
}
