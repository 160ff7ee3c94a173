// Policies and operator policies: both lists, and a form that sets
// (creates or replaces) one. A policy applies at once to the queues and
// exchanges of its vhost whose names match its pattern.
import { h, num } from './util.js';
import { get, put, del, seg } from './api.js';
import { card, badge, pageHead, confirmDialog, toast, field } from './ui.js';

const KINDS = [
  { path: 'policies', title: 'Policies', noun: 'policy' },
  { path: 'operator-policies', title: 'Operator policies', noun: 'operator policy' },
];

function policyTable(kind, ps, onEdit, onDelete) {
  if (!ps.length) return h('p.muted', null, `No ${kind.noun === 'policy' ? 'policies' : 'operator policies'}.`);
  return h('table.data.compact', { dataset: { policies: kind.path } },
    h('thead', null, h('tr', null, ['Name', 'Vhost', 'Pattern', 'Apply to', 'Priority', 'Definition', ''].map((x) => h('th', null, x)))),
    h('tbody', null, ps.map((p) => h('tr', { dataset: { policy: p.name } },
      h('td.strong', null, p.name),
      h('td', null, p.vhost),
      h('td', null, h('code', null, p.pattern)),
      h('td', null, badge(p['apply-to'])),
      h('td.num', null, num(p.priority)),
      h('td', null, h('code', null, JSON.stringify(p.definition))),
      h('td', null,
        h('button.ghost', { onclick: () => onEdit(kind, p) }, 'Edit'), ' ',
        h('button.ghost.danger', { onclick: () => onDelete(kind, p) }, 'Delete'))))));
}

export function policies(ctx) {
  const lists = KINDS.map(() => h('div'));
  const operator = h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k.path }, k.noun)));
  const vhost = h('input', { name: 'vhost', value: '/', required: true });
  const name = h('input', { name: 'name', required: true, placeholder: 'orders-ttl' });
  const pattern = h('input', { name: 'pattern', required: true, placeholder: '^orders\\.' });
  const applyTo = h('select', { name: 'apply-to' },
    ['all', 'queues', 'exchanges', 'classic_queues', 'quorum_queues', 'streams'].map((v) => h('option', { value: v }, v)));
  const priority = h('input', { name: 'priority', type: 'number', value: '0', step: '1' });
  const definition = h('textarea', { name: 'definition', rows: 4, required: true, placeholder: '{"message-ttl": 60000, "dead-letter-exchange": "dlx"}' });
  const form = h('form.stack', { onsubmit: async (e) => {
    e.preventDefault();
    let def;
    try { def = JSON.parse(definition.value); } catch (err) {
      toast('The definition is not JSON: ' + err.message, 'error');
      return;
    }
    const path = `/api/${operator.value}/${seg(vhost.value)}/${seg(name.value)}`;
    try {
      await put(path, { pattern: pattern.value, 'apply-to': applyTo.value, priority: Number(priority.value) || 0, definition: def });
      toast(`Policy ${name.value} set`);
      refresh();
    } catch (err) { toast(err.message, 'error'); }
  } },
  field('Kind', operator), field('Vhost', vhost), field('Name', name),
  field('Pattern', pattern, 'a regular expression over queue and exchange names'),
  field('Apply to', applyTo), field('Priority', priority, 'of the policies matching an object, the highest applies'),
  field('Definition', definition, 'JSON: message-ttl, expires, max-length, max-length-bytes, overflow, dead-letter-exchange, dead-letter-routing-key, delivery-limit, alternate-exchange, max-age, ...'),
  h('div.form-actions', null, h('button.primary', { type: 'submit' }, 'Set policy')));

  const edit = (kind, p) => {
    operator.value = kind.path;
    vhost.value = p.vhost;
    name.value = p.name;
    pattern.value = p.pattern;
    applyTo.value = p['apply-to'];
    priority.value = String(p.priority);
    definition.value = JSON.stringify(p.definition);
    name.focus();
  };
  const remove = async (kind, p) => {
    const ok = await confirmDialog({
      title: `Delete ${kind.noun} “${p.name}”?`,
      body: 'What it gives the queues and exchanges it matches is taken away at once.',
      action: 'Delete',
    });
    if (!ok) return;
    try {
      await del(`/api/${kind.path}/${seg(p.vhost)}/${seg(p.name)}`);
      toast(`${kind.noun} ${p.name} deleted`);
      refresh();
    } catch (err) { toast(err.message, 'error'); }
  };
  const count = h('span');
  ctx.el.append(pageHead('Policies', count),
    h('div.cols', null,
      h('div', null, ...KINDS.map((k, i) => card(k.title, lists[i]))),
      h('div', null, card('Set a policy', form))));
  const refresh = async () => {
    let total = 0;
    for (const [i, k] of KINDS.entries()) {
      try {
        const ps = await get('/api/' + k.path);
        total += ps.length;
        lists[i].replaceChildren(policyTable(k, ps, edit, remove));
      } catch (err) {
        // Operator policies are the administrator's: others see why not.
        if (err.status !== 401) throw err;
        lists[i].replaceChildren(h('p.muted', null, err.message));
      }
    }
    count.textContent = `${num(total)} in effect`;
  };
  ctx.poll(refresh, 8000);
}
