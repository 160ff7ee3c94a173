// Queues: the list (thousands stay fast: one table page in the DOM) and a
// queue's page with charts, consumers, bindings, publish, get, purge and
// delete.
import { h, num, rate, compact, RateTracker, Ring } from './util.js';
import { get, post, del, seg } from './api.js';
import { Table } from './table.js';
import { LineChart, sparkline } from './chart.js';
import { liveCharts } from './live.js';
import * as metrics from './metrics.js';
import { card, stat, kv, badge, pageHead, confirmDialog, toast, field, publishForm, errorBox } from './ui.js';

export const queueHref = (vh, name) => `#/queues/${seg(vh)}/${seg(name)}`;

function typeBadge(q) {
  const args = q.arguments || {};
  return h('span', null, badge(q.type || 'classic', q.type === 'stream' ? 'info' : ''),
    args['x-max-priority'] != null ? badge('priority') : null,
    args['x-dead-letter-exchange'] != null ? badge('DLX') : null,
    q.exclusive ? badge('exclusive') : null,
    q.auto_delete ? badge('auto-delete') : null,
    q.durable === false ? badge('transient', 'warn') : null);
}

export function queues(ctx) {
  const tracker = new RateTracker();
  const r = (q, key) => {
    const v = q._rates && q._rates[key];
    return Number.isFinite(v) ? v : null;
  };
  const table = new Table({
    name: 'queues',
    empty: 'No queues yet. Declare one with an AMQP client or the management API.',
    filterText: (q) => [q.name, q.vhost],
    sort: ['name', false],
    columns: [
      { key: 'name', label: 'Name', render: (q) => h('a.strong', { href: queueHref(q.vhost, q.name) }, q.name || '(unnamed)') },
      { key: 'vhost', label: 'Vhost' },
      { key: 'type', label: 'Type', render: typeBadge },
      { key: 'messages_ready', label: 'Ready', num: true },
      { key: 'messages_unacknowledged', label: 'Unacked', num: true },
      { key: 'messages', label: 'Total', num: true },
      { key: 'backlog', label: 'Backlog', nosort: true, render: (q) => {
        const ring = metrics.queueBacklog.get(q.vhost + '\0' + q.name);
        return sparkline(ring ? ring.items.map((p) => p[1]) : []);
      } },
      { key: 'consumers', label: 'Consumers', num: true },
      { key: 'publish', label: 'Publish', num: true, value: (q) => r(q, 'publish'), render: (q) => rate(r(q, 'publish')) },
      { key: 'deliver', label: 'Deliver', num: true, value: (q) => r(q, 'deliver_get'), render: (q) => rate(r(q, 'deliver_get')) },
      { key: 'ack', label: 'Ack', num: true, value: (q) => r(q, 'ack'), render: (q) => rate(r(q, 'ack')) },
      // The node the queue lives on (a quorum queue's leader); the column
      // tells nothing on a single node, where it is always the same.
      { key: 'node', label: 'Node', render: (q) => q.state === 'down' ? badge(q.node || '–', 'bad') : (q.node || '–') },
    ],
  });
  const count = h('span');
  ctx.el.append(pageHead('Queues', count), card(null, table.el));
  ctx.poll(async () => {
    const qs = await get('/api/queues');
    const t = Date.now();
    for (const q of qs) {
      const st = q.message_stats || {};
      q._rates = {};
      for (const k of ['publish', 'deliver_get', 'ack']) {
        if (st[k] != null) q._rates[k] = tracker.rate(q.vhost + '\0' + q.name + '\0' + k, st[k], t);
      }
    }
    count.textContent = `${num(qs.length)} queue${qs.length === 1 ? '' : 's'} · ${num(qs.reduce((a, q) => a + (q.messages || 0), 0))} messages`;
    table.setRows(qs);
  }, 4000);
}

export function queueDetail(ctx) {
  const { vhost, name } = ctx.params;
  const base = `/api/queues/${seg(vhost)}/${seg(name)}`;
  const tiles = h('div.stats');
  const info = h('div');
  const consumers = h('div');
  const bindings = h('div');
  const backlogEl = h('div'), ratesEl = h('div');
  const hist = new Ring(120);
  const tracker = new RateTracker();

  const purgeBtn = h('button.warn', { onclick: async () => {
    const ok = await confirmDialog({
      title: `Purge queue “${name}”?`,
      body: 'Every ready message in the queue is deleted. Messages delivered and not yet acknowledged stay. This cannot be undone.',
      action: 'Purge messages',
    });
    if (!ok) return;
    try {
      await del(base + '/contents');
      toast(`Queue ${name} purged`);
      refresh();
    } catch (e) { toast(e.message, 'error'); }
  } }, 'Purge');
  const deleteBtn = h('button.danger', { onclick: async () => {
    const ok = await confirmDialog({
      title: `Delete queue “${name}”?`,
      body: 'The queue, its messages and its bindings are deleted, and its consumers are cancelled. This cannot be undone.',
      action: 'Delete queue', typeToConfirm: name,
    });
    if (!ok) return;
    try {
      await del(base);
      toast(`Queue ${name} deleted`);
      location.hash = '#/queues';
    } catch (e) { toast(e.message, 'error'); }
  } }, 'Delete');

  ctx.el.append(
    pageHead(name || '(unnamed)', h('span', null, h('a', { href: '#/queues' }, 'Queues'), ` · vhost ${vhost}`), purgeBtn, deleteBtn),
    tiles,
    h('div.charts', null, h('section.card', null, backlogEl), h('section.card', null, ratesEl)),
    liveCharts(ctx, `/api/live/queues/${seg(vhost)}/${seg(name)}`, { backlogLabel: 'ready + unacked' }),
    h('div.cols', null,
      h('div', null, card('Details', info), card('Consumers', consumers), card('Bindings', bindings)),
      h('div', null, card('Get messages', getForm(vhost, name, () => refresh())), card('Publish message', publishForm(vhost, '', name, () => refresh())))));

  const backlog = new LineChart(backlogEl, { title: 'Backlog', format: compact });
  const rates = new LineChart(ratesEl, { title: 'Message rates', format: rate });
  ctx.onCleanup(() => { backlog.destroy(); rates.destroy(); });

  const refresh = async () => {
    const q = await get(base);
    const t = Date.now();
    const st = q.message_stats || {};
    const rs = {};
    for (const k of ['publish', 'deliver_get', 'ack', 'redeliver']) rs[k] = st[k] != null ? tracker.rate(k, st[k], t) : NaN;
    hist.push({ t, ready: q.messages_ready, unacked: q.messages_unacknowledged, ...rs });
    const P = (f) => hist.items.map((s) => [s.t, s[f]]);
    // The sampler has minutes of ready + unacked already; this page's own
    // polls add the split between ready and unacked from now on.
    const ring = metrics.queueBacklog.get(vhost + '\0' + name);
    backlog.set([{ label: 'total', points: ring ? ring.items : [] }, { label: 'ready', points: P('ready') }, { label: 'unacked', points: P('unacked') }]);
    rates.set([{ label: 'publish', points: P('publish') }, { label: 'deliver', points: P('deliver_get') }, { label: 'ack', points: P('ack') }]);
    tiles.replaceChildren(
      stat('Ready', q.messages_ready), stat('Unacked', q.messages_unacknowledged),
      stat('Total', q.messages), stat('Consumers', q.consumers),
      stat('Published', st.publish ?? '–', 'since the broker started'),
      stat('Delivered', st.deliver_get ?? '–', st.redeliver ? `${num(st.redeliver)} redelivered` : null));
    tiles.dataset.ready = String(q.messages_ready);
    const args = Object.entries(q.arguments || {});
    info.replaceChildren(kv([
      ['Type', typeBadge(q)], ['Vhost', q.vhost], ['State', q.state],
      q.node ? ['Node', q.node] : null,
      ...quorumRows(q),
      ['Durable', String(q.durable)], ['Auto-delete', String(q.auto_delete)], ['Exclusive', String(q.exclusive)],
      q.owner_pid_details ? ['Owner', q.owner_pid_details.name] : null,
      q.created_at ? ['Created', q.created_at] : null,
      ['Policy', q.policy ? h('a', { href: '#/policies' }, q.policy) : 'none'],
      q.operator_policy ? ['Operator policy', q.operator_policy] : null,
      Object.keys(q.effective_policy_definition || {}).length ? ['Effective policy', h('code', null, JSON.stringify(q.effective_policy_definition))] : null,
      ['Arguments', args.length ? h('div', null, args.map(([k, v]) => h('div', null, h('code', null, k), ' = ', JSON.stringify(v)))) : 'none'],
    ]));
  };
  ctx.poll(refresh, 3000);
  ctx.poll(async () => {
    const cs = (await get(`/api/consumers/${seg(vhost)}`)).filter((c) => c.queue && c.queue.name === name);
    consumers.replaceChildren(cs.length ? h('table.data.compact', null,
      h('thead', null, h('tr', null, ['Tag', 'Connection', 'Channel', 'Ack', 'Prefetch'].map((x) => h('th', null, x)))),
      h('tbody', null, cs.map((c) => {
        const ch = c.channel_details || {};
        return h('tr', null, h('td', null, h('code', null, c.consumer_tag)),
          h('td', null, ch.connection_name ? h('a', { href: '#/connections/' + seg(ch.connection_name) }, ch.connection_name) : '–'),
          h('td', null, ch.number ?? '–'), h('td', null, c.ack_required ? 'manual' : 'auto'), h('td.num', null, num(c.prefetch_count ?? 0)));
      }))) : h('p.muted', null, 'No consumers.'));
    const bs = await get(base + '/bindings');
    bindings.replaceChildren(bs.length ? h('table.data.compact', null,
      h('thead', null, h('tr', null, ['From exchange', 'Routing key', 'Arguments'].map((x) => h('th', null, x)))),
      h('tbody', null, bs.map((b) => h('tr', null,
        h('td', null, b.source ? h('a', { href: `#/exchanges/${seg(vhost)}/${seg(b.source)}` }, b.source) : h('span.muted', null, '(default exchange)')),
        h('td', null, h('code', null, b.routing_key)),
        h('td', null, Object.keys(b.arguments || {}).length ? JSON.stringify(b.arguments) : ''))))) : h('p.muted', null, 'No bindings.'));
  }, 6000);
}

// quorumRows are a quorum queue's leader and members, each member marked
// online (the node answers) or not: RabbitMQ's member health.
function quorumRows(q) {
  if (!Array.isArray(q.members)) return [];
  const online = new Set(q.online || []);
  return [
    ['Leader', q.leader ? q.leader : badge('no leader', 'bad')],
    ['Members', h('span.members', null, q.members.map((m) =>
      h('span', null, badge(m, online.has(m) ? 'good' : 'bad'), ' ')),
      q.members.length - online.size > 0 ? h('span.muted', null, `${q.members.length - online.size} offline`) : null)],
  ];
}

// getForm takes messages with POST /api/queues/{vhost}/{name}/get.
function getForm(vhost, name, after) {
  const count = h('input', { type: 'number', name: 'count', min: 1, max: 1000, value: 1 });
  const ackmode = h('select', { name: 'ackmode' },
    h('option', { value: 'ack_requeue_true' }, 'Nack, requeue (peek)'),
    h('option', { value: 'ack_requeue_false' }, 'Ack, remove from queue'),
    h('option', { value: 'reject_requeue_true' }, 'Reject, requeue'),
    h('option', { value: 'reject_requeue_false' }, 'Reject, no requeue (dead-letter or drop)'));
  const enc = h('select', { name: 'encoding' }, h('option', { value: 'auto' }, 'auto (text, else base64)'), h('option', { value: 'base64' }, 'base64'));
  const truncate = h('input', { type: 'number', name: 'truncate', min: 0, value: 50000 });
  const out = h('div.messages', { 'aria-live': 'polite' });
  return h('form.stack', {
    onsubmit: async (e) => {
      e.preventDefault();
      out.replaceChildren();
      try {
        const msgs = await post(`/api/queues/${seg(vhost)}/${seg(name)}/get`, {
          count: Number(count.value) || 1, ackmode: ackmode.value, encoding: enc.value,
          truncate: Number(truncate.value) || undefined,
        });
        if (!msgs.length) out.append(h('p.muted', null, 'The queue is empty.'));
        msgs.forEach((m, i) => out.append(messageView(m, i + 1)));
        after();
      } catch (err) { out.append(errorBox(err)); }
    },
  },
  h('div.grid2', null, field('Ack mode', ackmode), field('Messages', count)),
  h('details', null, h('summary', null, 'Encoding and truncation'),
    h('div.grid2', null, field('Encoding', enc), field('Truncate payload at (bytes)', truncate))),
  h('div.form-actions', null, h('button.primary', { type: 'submit' }, 'Get messages')),
  out);
}

function messageView(m, n) {
  const props = Object.entries(m.properties || {}).filter(([, v]) => v != null && !(typeof v === 'object' && !Object.keys(v).length));
  return h('div.message', { dataset: { message: n } },
    h('div.message-head', null, h('b', null, `Message ${n}`),
      ' ', badge(`exchange ${m.exchange || '(default)'}`), ' ', badge(`key ${m.routing_key}`),
      m.redelivered ? badge('redelivered', 'warn') : null,
      ' ', h('span.muted', null, `${num(m.message_count)} left in queue`)),
    h('pre.payload', null, m.payload),
    h('div.muted.small', null, `${num(m.payload_bytes)} bytes, ${m.payload_encoding}`),
    props.length ? kv(props.map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])) : null);
}
