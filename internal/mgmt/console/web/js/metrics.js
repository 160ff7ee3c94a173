// The live sampler: polls /metrics (Prometheus text, served without
// authentication) every few seconds while the console is open and keeps a
// few minutes of history, so charts have data as soon as a page opens.
// Rates are computed here from the broker's cumulative counters.
import { parse, sum, sumBy, histogram, quantile } from './prom.js';
import { Ring, RateTracker } from './util.js';

export const INTERVAL = 3000;
const KEEP = 120; // samples: 6 minutes at 3 s

const WANT = [
  'sluice_queue_messages_ready', 'sluice_queue_messages_unacked',
  'sluice_queue_published_total', 'sluice_queue_delivered_total', 'sluice_queue_acked_total',
  'sluice_partition_log_end_offset', 'sluice_group_lag', 'sluice_group_committed_offset',
  'sluice_received_bytes_total', 'sluice_sent_bytes_total',
  'sluice_storage_fsync_duration_seconds', 'sluice_storage_appended_bytes_total',
  'sluice_connections', 'sluice_alarm', 'sluice_storage_failed_logs',
  'sluice_storage_disk_free_bytes', 'sluice_storage_disk_total_bytes',
  'process_resident_memory_bytes',
];

export const history = new Ring(KEEP); // overall samples, see sample()
export const queueBacklog = new Map(); // "vhost\0queue" -> Ring of ready+unacked
export const groupLag = new Map(); // group -> Ring of [t, lag]
export const topicEnd = new Map(); // topic -> Ring of [t, sum of end offsets]
export let lastError = null;

const rates = new RateTracker();
let prevFsync = null;
let timer = null;
const listeners = new Set();

export function subscribe(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function start() {
  if (timer) return;
  const tick = async () => {
    await poll();
    timer = setTimeout(tick, INTERVAL);
  };
  tick();
}

async function poll() {
  let text;
  try {
    const resp = await fetch('/metrics', { cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) throw new Error(`/metrics answered ${resp.status}`);
    text = await resp.text();
    lastError = null;
  } catch (e) {
    lastError = e.message;
    for (const f of listeners) f();
    return;
  }
  sample(parse(text, WANT), Date.now());
  for (const f of listeners) f();
}

function sample(m, t) {
  const fs = histogram(m, 'sluice_storage_fsync_duration_seconds');
  let fsync = { p50: NaN, p99: NaN, mean: NaN, count: 0 };
  if (prevFsync && fs.count >= prevFsync.count) {
    const n = fs.count - prevFsync.count;
    fsync = {
      p50: quantile(0.5, fs, prevFsync) ,
      p99: quantile(0.99, fs, prevFsync),
      mean: n > 0 ? (fs.sum - prevFsync.sum) / n : NaN,
      count: n,
    };
  }
  prevFsync = fs;
  const alarms = (m.get('sluice_alarm') || []).filter((s) => s.value > 0).map((s) => s.labels.resource);
  const s = {
    t,
    publish: rates.rate('pub', sum(m, 'sluice_queue_published_total'), t),
    deliver: rates.rate('del', sum(m, 'sluice_queue_delivered_total'), t),
    ack: rates.rate('ack', sum(m, 'sluice_queue_acked_total'), t),
    produce: rates.rate('produce', sum(m, 'sluice_partition_log_end_offset'), t),
    consume: rates.rate('commit', sum(m, 'sluice_group_committed_offset'), t),
    kafkaIn: rates.rate('kin', sum(m, 'sluice_received_bytes_total', { protocol: 'kafka' }), t),
    kafkaOut: rates.rate('kout', sum(m, 'sluice_sent_bytes_total', { protocol: 'kafka' }), t),
    amqpIn: rates.rate('ain', sum(m, 'sluice_received_bytes_total', { protocol: 'amqp' }), t),
    amqpOut: rates.rate('aout', sum(m, 'sluice_sent_bytes_total', { protocol: 'amqp' }), t),
    appended: rates.rate('app', sum(m, 'sluice_storage_appended_bytes_total'), t),
    fsyncP50: fsync.p50, fsyncP99: fsync.p99, fsyncMean: fsync.mean, fsyncs: fsync.count,
    backlog: sum(m, 'sluice_queue_messages_ready') + sum(m, 'sluice_queue_messages_unacked'),
    lag: sum(m, 'sluice_group_lag'),
    connAMQP: sum(m, 'sluice_connections', { protocol: 'amqp' }),
    connKafka: sum(m, 'sluice_connections', { protocol: 'kafka' }),
    alarms,
    alarmsKnown: m.has('sluice_alarm'),
    // kind -> logs refusing writes after a storage failure (non-zero only)
    failedLogs: [...sumBy(m, 'sluice_storage_failed_logs', 'kind')].filter(([, n]) => n > 0),
    diskFree: sum(m, 'sluice_storage_disk_free_bytes'),
    diskTotal: sum(m, 'sluice_storage_disk_total_bytes'),
    rss: sum(m, 'process_resident_memory_bytes'),
  };
  history.push(s);

  const key = (l) => l.vhost + '\0' + l.queue;
  const depth = sumBy(m, 'sluice_queue_messages_ready', key);
  for (const [k, v] of sumBy(m, 'sluice_queue_messages_unacked', key)) depth.set(k, (depth.get(k) || 0) + v);
  track(queueBacklog, depth, t);
  track(groupLag, sumBy(m, 'sluice_group_lag', 'group'), t);
  track(topicEnd, sumBy(m, 'sluice_partition_log_end_offset', 'topic'), t);
}

// track appends this sample's value per key and forgets keys that are gone.
function track(store, now, t) {
  for (const [k, v] of now) {
    let r = store.get(k);
    if (!r) store.set(k, (r = new Ring(KEEP)));
    r.push([t, v]);
  }
  for (const k of store.keys()) if (!now.has(k)) store.delete(k);
}

// points maps the overall history to chart points for one field.
export function points(field) {
  return history.items.map((s) => [s.t, s[field]]);
}

// top returns the n keys of store with the largest latest value.
export function top(store, n) {
  return [...store].map(([k, r]) => [k, r.last()[1]]).filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]).slice(0, n).map(([k]) => k);
}
