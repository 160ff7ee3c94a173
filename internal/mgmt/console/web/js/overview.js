// Overview: totals from /api/overview and live charts from the sampler.
import { h, num, rate, bytes, ms, compact } from './util.js';
import { get } from './api.js';
import { LineChart } from './chart.js';
import * as metrics from './metrics.js';
import { card, stat, pageHead, badge } from './ui.js';

export function overview(ctx) {
  const sub = h('span');
  const tiles = h('div.stats');
  const alarms = h('div');
  const chartsEl = {};
  const mk = (id, title, format, wide) => {
    const el = h('div', { id: 'chart-' + id });
    chartsEl[id] = el;
    return h('section.card' + (wide ? '.wide' : ''), null, el);
  };
  ctx.el.append(
    pageHead('Overview', sub),
    alarms,
    tiles,
    h('div.charts', null,
      mk('rates', 'Message rates'),
      mk('backlog', 'Backlog per queue'),
      mk('produce', 'Kafka records'),
      mk('lag', 'Lag per consumer group'),
      mk('bytes', 'Network throughput'),
      mk('fsync', 'fsync latency')));

  const charts = {
    rates: new LineChart(chartsEl.rates, { title: 'Message rates (AMQP queues)', format: rate }),
    backlog: new LineChart(chartsEl.backlog, { title: 'Backlog per queue (top 6, ready + unacked)', format: compact }),
    produce: new LineChart(chartsEl.produce, { title: 'Kafka produce / consume', format: rate }),
    lag: new LineChart(chartsEl.lag, { title: 'Lag per consumer group (top 6)', format: compact }),
    bytes: new LineChart(chartsEl.bytes, { title: 'Network throughput', format: (v) => bytes(v) + '/s' }),
    fsync: new LineChart(chartsEl.fsync, { title: 'fsync latency (segment data files)', format: ms }),
  };
  ctx.onCleanup(() => Object.values(charts).forEach((c) => c.destroy()));

  ctx.poll(async () => {
    const o = await get('/api/overview');
    const q = o.queue_totals || {}, t = o.object_totals || {};
    sub.textContent = `${o.product_name} ${o.product_version || ''} · ${o.node} · cluster ${o.cluster_name}`;
    tiles.replaceChildren(
      stat('Messages', q.messages ?? 0, `${num(q.messages_ready ?? 0)} ready · ${num(q.messages_unacknowledged ?? 0)} unacked`),
      stat('Queues', t.queues ?? 0),
      stat('Exchanges', t.exchanges ?? 0),
      stat('Connections', t.connections ?? 0, `${num(t.channels ?? 0)} channels · ${num(t.consumers ?? 0)} consumers`),
      o.kafka_totals ? stat('Topics', o.kafka_totals.topics ?? 0) : null,
      stat('Listeners', (o.listeners || []).map((l) => `${l.protocol}:${l.port}`).join('  ') || '–'));
  }, 5000);

  const label = (k) => {
    const [vh, name] = k.split('\0');
    return vh === '/' ? name : `${name} (${vh})`;
  };
  ctx.onMetrics(() => {
    const P = metrics.points;
    charts.rates.set([
      { label: 'publish', points: P('publish') },
      { label: 'deliver', points: P('deliver') },
      { label: 'ack', points: P('ack') },
    ]);
    charts.backlog.set(metrics.top(metrics.queueBacklog, 6).map((k) => ({ label: label(k), points: metrics.queueBacklog.get(k).items })));
    charts.produce.set([
      { label: 'produced', points: P('produce') },
      { label: 'committed by groups', points: P('consume') },
    ]);
    const lagKeys = metrics.top(metrics.groupLag, 6);
    charts.lag.set(lagKeys.length ? lagKeys.map((g) => ({ label: g, points: metrics.groupLag.get(g).items }))
      : [{ label: 'all groups', points: P('lag') }]);
    charts.bytes.set([
      { label: 'Kafka in', points: P('kafkaIn') },
      { label: 'Kafka out', points: P('kafkaOut') },
      { label: 'AMQP in', points: P('amqpIn') },
      { label: 'AMQP out', points: P('amqpOut') },
    ]);
    charts.fsync.set([
      { label: 'p50', points: P('fsyncP50') },
      { label: 'p99', points: P('fsyncP99') },
      { label: 'mean', points: P('fsyncMean') },
    ]);
    const s = metrics.history.last();
    alarms.replaceChildren();
    if (s && s.alarms.length) {
      alarms.append(h('div.alarm-box', { role: 'alert' }, h('b', null, 'Resource alarm: '),
        s.alarms.join(', '), ' — publishers are blocked until it clears.'));
    }
    if (s && s.failedLogs && s.failedLogs.length) {
      const what = s.failedLogs.map(([kind, n]) => `${n} ${kind} log${n === 1 ? '' : 's'}`).join(', ');
      alarms.append(h('div.alarm-box', { role: 'alert', dataset: { failedLogs: what } }, h('b', null, 'Storage failure: '),
        what, ' refusing writes after a failed write or fsync; the broker reopens them once the disk takes writes. ',
        'Which logs and why: ', h('a', { href: '/api/health/checks/alarms', style: 'color:#fff' }, 'the alarms health check'),
        ' or sluice status.'));
    }
    if (s && s.diskTotal > 0) {
      const used = 1 - s.diskFree / s.diskTotal;
      alarms.append(h('div.disk', null, badge(`disk ${Math.round(used * 100)}% used · ${bytes(s.diskFree)} free`, used > 0.9 ? 'bad' : ''),
        ' ', badge(`memory ${bytes(s.rss)}`),
        s.alarmsKnown ? ' ' : null, s.alarmsKnown ? badge(s.alarms.length ? 'alarm raised' : 'no alarms', s.alarms.length ? 'bad' : 'good') : null));
    }
  });
}
