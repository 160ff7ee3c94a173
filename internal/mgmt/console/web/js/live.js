// Live curves: one-second samples of a queue's or a topic's inflow,
// outflow and backlog from GET /api/live/... (the server keeps them while
// someone looks), drawn as two charts, so that a burst (sluice bench
// shape) is seen being absorbed and worked off.
import { h, rate, compact } from './util.js';
import { get } from './api.js';
import { LineChart } from './chart.js';

// liveCharts returns a section with the flow and backlog charts of path,
// polled every second while the page is shown.
export function liveCharts(ctx, path, { backlogLabel = 'backlog' } = {}) {
  const flowEl = h('div'), backlogEl = h('div');
  const note = h('p.muted.small');
  const el = h('section.card.wide', { dataset: { live: path } },
    h('div.charts', null, h('div', { dataset: { liveChart: 'flow' } }, flowEl), h('div', { dataset: { liveChart: 'backlog' } }, backlogEl)), note);
  const flow = new LineChart(flowEl, { title: 'Live: inflow and outflow (msg/s, 1 s samples)', format: rate, area: false });
  const backlog = new LineChart(backlogEl, { title: 'Live: backlog (1 s samples)', format: compact });
  ctx.onCleanup(() => { flow.destroy(); backlog.destroy(); });
  ctx.poll(async () => {
    const l = await get(path);
    const s = l.samples || [];
    const P = (f) => s.filter((x) => x[f] != null).map((x) => [x.timestamp, x[f]]);
    flow.set([{ label: 'inflow', points: P('inflow'), color: '--c1' }, { label: 'outflow', points: P('outflow'), color: '--c2' }]);
    backlog.set([{ label: backlogLabel, points: P('backlog'), color: '--c3' }]);
    const since = new Date(l.watched_since).toTimeString().slice(0, 8);
    note.textContent = `Sampled every ${l.interval_ms / 1000} s by the broker since ${since}, while this page (or another client) asks; the last 5 minutes are kept.`;
  }, 1000);
  return el;
}
