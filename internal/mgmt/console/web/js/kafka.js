// Kafka: topics (list and partitions) and consumer groups (list, members,
// assignments, lag per partition and a lag chart).
import { h, num, rate, bytes, compact, Ring } from './util.js';
import { get, seg } from './api.js';
import { Table } from './table.js';
import { LineChart, sparkline } from './chart.js';
import { liveCharts } from './live.js';
import { exchangeHref } from './exchanges.js';
import * as metrics from './metrics.js';
import { card, stat, kv, badge, pageHead } from './ui.js';

const topicHref = (t) => '#/topics/' + seg(t);
const groupHref = (g) => '#/groups/' + seg(g);

// ringRate is the per-second change over the last two samples of a ring.
function ringRate(ring) {
  if (!ring || ring.length < 2) return null;
  const [t1, v1] = ring.items[ring.length - 1];
  const [t0, v0] = ring.items[ring.length - 2];
  return t1 > t0 && v1 >= v0 ? ((v1 - v0) * 1000) / (t1 - t0) : null;
}

function ringRates(ring) {
  const out = [];
  if (!ring) return out;
  for (let i = 1; i < ring.items.length; i++) {
    const [t0, v0] = ring.items[i - 1], [t1, v1] = ring.items[i];
    out.push([t1, t1 > t0 && v1 >= v0 ? ((v1 - v0) * 1000) / (t1 - t0) : NaN]);
  }
  return out;
}

export function topics(ctx) {
  const table = new Table({
    name: 'topics',
    empty: 'No topics yet. Create one with a Kafka client or PUT /api/kafka/topics/{name}.',
    columns: [
      { key: 'name', label: 'Topic', render: (t) => h('a.strong', { href: topicHref(t.name) }, t.name) },
      { key: 'partitions', label: 'Partitions', num: true },
      { key: 'messages', label: 'Messages', num: true },
      { key: 'size_bytes', label: 'Size', num: true, render: (t) => bytes(t.size_bytes) },
      { key: 'produce', label: 'Produce', num: true, value: (t) => ringRate(metrics.topicEnd.get(t.name)), render: (t) => rate(ringRate(metrics.topicEnd.get(t.name))) },
      { key: 'trend', label: 'Records / s', nosort: true, render: (t) => sparkline(ringRates(metrics.topicEnd.get(t.name)).map((p) => p[1] || 0)) },
    ],
  });
  const count = h('span');
  ctx.el.append(pageHead('Topics', count), card(null, table.el));
  ctx.poll(async () => {
    const ts = await get('/api/kafka/topics');
    count.textContent = `${num(ts.length)} topics · ${num(ts.reduce((a, t) => a + t.messages, 0))} records · ${bytes(ts.reduce((a, t) => a + t.size_bytes, 0))}`;
    table.setRows(ts);
  }, 5000);
}

export function topicDetail(ctx) {
  const { name } = ctx.params;
  const tiles = h('div.stats'), parts = h('div'), configs = h('div'), chartEl = h('div');
  const readers = h('div', { dataset: { sides: 'readers' } }), writers = h('div', { dataset: { sides: 'writers' } });
  ctx.el.append(pageHead(name, h('span', null, h('a', { href: '#/topics' }, 'Topics'))),
    tiles, h('section.card.wide', null, chartEl),
    liveCharts(ctx, '/api/live/topics/' + seg(name), { backlogLabel: 'lag of its groups' }),
    h('div.cols', null, card('Read by', readers), card('Written by', writers)),
    h('div.cols', null, card('Partitions', parts), card('Configuration', configs)));
  const chart = new LineChart(chartEl, { title: 'Produce rate (records/s)', format: rate });
  ctx.onCleanup(() => chart.destroy());
  ctx.onMetrics(() => chart.set([{ label: 'records/s', points: ringRates(metrics.topicEnd.get(name)) }]));
  ctx.poll(async () => {
    const t = await get('/api/kafka/topics/' + seg(name));
    tiles.replaceChildren(stat('Partitions', t.partitions), stat('Records', t.messages), stat('Size', bytes(t.size_bytes)),
      stat('Topic ID', h('code.small', null, t.id)));
    const pd = t.partition_details || [];
    const maxMsgs = Math.max(1, ...pd.map((p) => p.messages));
    parts.replaceChildren(h('table.data.compact', { dataset: { table: 'partitions' } },
      h('thead', null, h('tr', null, ['Partition', 'Start offset', 'End offset', 'Records', '', 'Size'].map((x, i) => h('th' + (i && i !== 4 ? '.num' : ''), null, x)))),
      h('tbody', null, pd.map((p) => h('tr', null, h('td', null, p.partition),
        h('td.num', null, num(p.log_start_offset)), h('td.num', null, num(p.log_end_offset)), h('td.num', null, num(p.messages)),
        h('td', null, bar(p.messages / maxMsgs)), h('td.num', null, bytes(p.size_bytes)))))));
    readers.replaceChildren(sidesTable(t.readers, 'Nothing reads it yet: no consumer group has an offset on it.'));
    writers.replaceChildren(sidesTable(t.writers, 'Kafka producers only: no AMQP exchange is bound to it.'));
    const cf = Object.entries(t.configs || {});
    configs.replaceChildren(cf.length ? kv(cf.map(([k, v]) => [k, h('code', null, v)])) : h('p.muted', null, 'Broker defaults (no topic-level overrides).'));
  }, 4000);
}

// sidesTable lists a topic's readers or writers of any kind (the API's
// "readers" / "writers"): consumer groups with their lag on the topic,
// exchanges bound to it, and whatever kinds the broker adds.
const KIND_LABEL = { consumer_group: 'Kafka consumer group', exchange: 'AMQP exchange' };
function sidesTable(list, empty) {
  if (!list || !list.length) return h('p.muted', null, empty);
  const name = (x) => x.kind === 'consumer_group' ? h('a', { href: groupHref(x.name) }, x.name)
    : x.kind === 'exchange' ? h('a', { href: exchangeHref(x.vhost, x.name) }, x.name || '(default)')
      : x.name ?? '–';
  const detail = (x) => x.kind === 'consumer_group' ? `${num(x.members)} member${x.members === 1 ? '' : 's'}, ${x.state}`
    : x.kind === 'exchange' ? h('span', null, 'vhost ', h('code', null, x.vhost), ', key ', h('code', null, x.routing_key))
      : Object.entries(x).filter(([k]) => !['kind', 'name', 'lag'].includes(k)).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  const lags = list.some((x) => x.lag != null);
  return h('table.data.compact', null,
    h('thead', null, h('tr', null, ['Kind', 'Name', '', lags ? 'Lag' : null].filter((x) => x != null).map((x, i) => h('th' + (i === 3 ? '.num' : ''), null, x)))),
    h('tbody', null, list.map((x) => h('tr', { dataset: { kind: x.kind, name: x.name, lag: x.lag ?? '' } },
      h('td', null, badge(KIND_LABEL[x.kind] || x.kind)), h('td.strong', null, name(x)), h('td.muted', null, detail(x)),
      lags ? h('td.num', null, x.lag == null ? '–' : num(x.lag)) : null))));
}

function bar(f) {
  const b = h('div.bar');
  b.append(h('i'));
  b.firstChild.style.width = Math.max(0, Math.min(1, f || 0)) * 100 + '%';
  return b;
}

export function groups(ctx) {
  const table = new Table({
    name: 'groups',
    empty: 'No consumer groups yet.',
    filterText: (g) => g.group_id,
    sort: ['lag', true],
    columns: [
      { key: 'group_id', label: 'Group', render: (g) => h('a.strong', { href: groupHref(g.group_id) }, g.group_id) },
      { key: 'state', label: 'State', render: (g) => badge(g.state, g.state === 'Stable' ? 'good' : g.state === 'Empty' ? '' : 'warn') },
      { key: 'protocol', label: 'Assignor', render: (g) => g.protocol || '–' },
      { key: 'type', label: 'Protocol', render: (g) => badge(g.type === 'consumer' ? 'consumer (KIP-848)' : 'classic') },
      { key: 'members', label: 'Members', num: true },
      { key: 'lag', label: 'Lag', num: true },
      { key: 'trend', label: 'Lag trend', nosort: true, render: (g) => {
        const r = metrics.groupLag.get(g.group_id);
        return sparkline(r ? r.items.map((p) => p[1]) : []);
      } },
    ],
  });
  const count = h('span');
  ctx.el.append(pageHead('Consumer groups', count), card(null, table.el));
  ctx.poll(async () => {
    const gs = await get('/api/kafka/groups');
    count.textContent = `${num(gs.length)} groups · total lag ${num(gs.reduce((a, g) => a + (g.lag || 0), 0))}`;
    table.setRows(gs);
  }, 4000);
}

export function groupDetail(ctx) {
  const { id } = ctx.params;
  const tiles = h('div.stats'), members = h('div'), offsets = h('div'), chartEl = h('div');
  const hist = new Ring(120);
  ctx.el.append(pageHead(id, h('span', null, h('a', { href: '#/groups' }, 'Consumer groups'))),
    tiles, h('section.card.wide', null, chartEl),
    card('Lag per partition', offsets), card('Members and assignments', members));
  const chart = new LineChart(chartEl, { title: 'Lag (records behind the log end)', format: compact });
  ctx.onCleanup(() => chart.destroy());
  ctx.poll(async () => {
    const g = await get('/api/kafka/groups/' + seg(id));
    const offs = g.offsets || [];
    const byTopic = new Map();
    for (const o of offs) byTopic.set(o.topic, (byTopic.get(o.topic) || 0) + (o.lag || 0));
    hist.push({ t: Date.now(), total: g.lag || 0, byTopic });
    const topicsSeen = [...new Set(hist.items.flatMap((s) => [...s.byTopic.keys()]))];
    const series = topicsSeen.length > 1
      ? topicsSeen.map((tp) => ({ label: tp, points: hist.items.map((s) => [s.t, s.byTopic.get(tp) ?? NaN]) }))
      : [{ label: topicsSeen[0] || 'lag', points: hist.items.map((s) => [s.t, s.total]) }];
    chart.set(series);
    tiles.replaceChildren(
      stat('State', badge(g.state, g.state === 'Stable' ? 'good' : g.state === 'Empty' ? '' : 'warn')),
      stat('Members', g.members), stat('Total lag', g.lag || 0), stat('Assignor', g.protocol || '–'));
    tiles.dataset.lag = String(g.lag || 0);
    const maxLag = Math.max(1, ...offs.map((o) => o.lag || 0));
    offsets.replaceChildren(offs.length ? h('table.data.compact', { dataset: { table: 'offsets' } },
      h('thead', null, h('tr', null, ['Topic', 'Partition', 'Committed', 'Log end', 'Lag', '', 'Member'].map((x, i) => h('th' + (i >= 2 && i <= 4 ? '.num' : ''), null, x)))),
      h('tbody', null, offs.map((o) => h('tr', { dataset: { topic: o.topic, partition: o.partition, lag: o.lag ?? '' } },
        h('td', null, h('a', { href: topicHref(o.topic) }, o.topic)), h('td', null, o.partition),
        h('td.num', null, o.committed_offset == null ? h('span.muted', null, 'none') : num(o.committed_offset)),
        h('td.num', null, num(o.log_end_offset)), h('td.num.strong', null, o.lag == null ? '–' : num(o.lag)),
        h('td', null, bar((o.lag || 0) / maxLag)),
        h('td', null, o.member_id ? h('code.small', null, o.member_id) : h('span.muted', null, 'unassigned'))))))
      : h('p.muted', null, 'No committed offsets and no assignments.'));
    const ms = g.member_details || [];
    members.replaceChildren(ms.length ? h('table.data.compact', null,
      h('thead', null, h('tr', null, ['Member', 'Client', 'Host', 'Assigned partitions'].map((x) => h('th', null, x)))),
      h('tbody', null, ms.map((m) => h('tr', null,
        h('td', null, h('code.small', null, m.member_id), m.group_instance_id ? badge('static: ' + m.group_instance_id) : null),
        h('td', null, m.client_id), h('td', null, m.client_host),
        h('td', null, (m.assignments || []).map((a) => h('div', null, h('a', { href: topicHref(a.topic) }, a.topic), ': ', a.partitions.join(', ')))))))) 
      : h('p.muted', null, 'No members connected.'));
  }, 3000);
}
