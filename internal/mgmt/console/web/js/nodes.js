// Nodes: every node of the cluster as the node serving the console sees
// it (/api/nodes: state, address, rack, role, the partitions it leads and
// holds) and the partitions that need attention
// (/api/cluster/partitions: under-replicated and offline). A single node
// lists itself. docs/clustering.md, "Operating a cluster".
import { h, num } from './util.js';
import { get } from './api.js';
import { card, badge, pageHead, stat } from './ui.js';

// role is a node's part in the cluster: controller (the metadata leader,
// which Kafka clients are told is the controller), voter or learner of
// the metadata group; a single node is its own controller.
function role(n) {
  if (n.controller) return badge('controller', 'info');
  switch (n.role) {
    case 'leader': case 'follower': return badge('voter');
    case 'learner': return badge('learner', 'warn');
    case 'single': return badge('single');
  }
  return badge(n.role || 'unknown', 'warn');
}

function address(n) {
  const a = n.addresses || {};
  return a.cluster || a.kafka || a.amqp || a.http || '–';
}

function nodeTable(nodes) {
  return h('table.data.compact', { dataset: { table: 'nodes' } },
    h('thead', null, h('tr', null, ['ID', 'Name', 'State', 'Role', 'Address', 'Rack', 'Leaders', 'Replicas'].map((x) => h('th', null, x)))),
    h('tbody', null, nodes.map((n) => h('tr', { dataset: { node: String(n.node_id) } },
      h('td.num', null, String(n.node_id)),
      h('td.strong', null, n.name),
      h('td', null, badge(n.state || (n.running ? 'running' : 'unreachable'), n.state === 'unreachable' ? 'bad' : 'good')),
      h('td', null, role(n)),
      h('td', null, h('code', null, address(n))),
      h('td', null, n.rack || '–'),
      h('td.num', null, num(n.leaders ?? 0)),
      h('td.num', null, num(n.replicas ?? 0))))));
}

function partitionTable(name, ps, empty) {
  if (!ps.length) return h('p.muted', { dataset: { empty: name } }, empty);
  const ids = (l) => (l && l.length ? l.join(', ') : '–');
  return h('table.data.compact', { dataset: { table: name } },
    h('thead', null, h('tr', null, ['Topic', 'Partition', 'Leader', 'Replicas', 'ISR', 'Offline replicas'].map((x) => h('th', null, x)))),
    h('tbody', null, ps.map((p) => h('tr', { dataset: { partition: `${p.topic}/${p.partition}` } },
      h('td.strong', null, p.topic),
      h('td.num', null, String(p.partition)),
      h('td', null, p.leader < 0 ? badge('none', 'bad') : String(p.leader)),
      h('td', null, ids(p.replicas)),
      h('td', null, ids(p.isr)),
      h('td', null, ids(p.offline_replicas))))));
}

export function nodes(ctx) {
  const sub = h('span');
  const stats = h('div.stats');
  const list = h('div');
  const under = h('div');
  const offline = h('div');
  ctx.el.append(pageHead('Nodes', sub),
    stats,
    card('Nodes', list),
    card('Under-replicated partitions', under),
    card('Offline partitions', offline));
  ctx.poll(async () => {
    const [ns, parts] = await Promise.all([get('/api/nodes'), get('/api/cluster/partitions')]);
    const down = ns.filter((n) => n.state === 'unreachable').length;
    sub.textContent = `as ${parts.node} sees them`;
    stats.replaceChildren(
      stat('Nodes', ns.length),
      stat('Unreachable', down),
      stat('Partitions', parts.partitions),
      stat('Under-replicated', parts.under_replicated.length),
      stat('Offline', parts.offline.length));
    list.replaceChildren(nodeTable(ns));
    under.replaceChildren(partitionTable('under-replicated', parts.under_replicated, 'None: every partition has all its replicas in sync.'));
    offline.replaceChildren(partitionTable('offline', parts.offline, 'None: every partition has a leader.'));
  }, 5000);
}
