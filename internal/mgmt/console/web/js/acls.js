// Kafka ACLs: the list of stored ACLs and a form that adds one
// (docs/security.md, "Authorization"). The same rules Kafka admin tools
// manage with CreateAcls / DeleteAcls; administrators only.
import { h, num } from './util.js';
import { get, post, request } from './api.js';
import { card, badge, pageHead, confirmDialog, toast, field } from './ui.js';

const RESOURCE_TYPES = ['topic', 'group', 'cluster', 'transactional_id'];
const OPERATIONS = ['all', 'read', 'write', 'create', 'delete', 'alter', 'describe',
  'cluster_action', 'describe_configs', 'alter_configs', 'idempotent_write'];

function aclTable(acls, onDelete) {
  if (!acls.length) return h('p.muted', null, 'No ACLs: users have what their permissions in the Kafka vhost give them.');
  return h('table.data.compact', { dataset: { table: 'acls' } },
    h('thead', null, h('tr', null, ['Principal', 'Permission', 'Operation', 'Resource', 'Name', 'Pattern', 'Host', ''].map((x) => h('th', null, x)))),
    h('tbody', null, acls.map((a) => h('tr', { dataset: { acl: `${a.principal} ${a.permission} ${a.operation} ${a.resource_type}:${a.resource_name}` } },
      h('td.strong', null, a.principal),
      h('td', null, badge(a.permission, a.permission === 'DENY' ? 'bad' : 'good')),
      h('td', null, a.operation),
      h('td', null, a.resource_type),
      h('td', null, h('code', null, a.resource_name)),
      h('td', null, a.pattern_type),
      h('td', null, a.host),
      h('td', null, h('button.ghost.danger', { onclick: () => onDelete(a) }, 'Delete'))))));
}

export function acls(ctx) {
  const list = h('div');
  const select = (name, values) => h('select', { name }, values.map((v) => h('option', { value: v }, v)));
  const principal = h('input', { name: 'principal', required: true, placeholder: 'User:alice', value: 'User:' });
  const permission = select('permission', ['allow', 'deny']);
  const operation = select('operation', OPERATIONS);
  const resourceType = select('resource_type', RESOURCE_TYPES);
  const resourceName = h('input', { name: 'resource_name', placeholder: 'orders.' });
  const patternType = select('pattern_type', ['literal', 'prefixed']);
  const host = h('input', { name: 'host', value: '*', required: true });
  const form = h('form.stack', { onsubmit: async (e) => {
    e.preventDefault();
    const acl = {
      principal: principal.value, permission: permission.value, operation: operation.value,
      resource_type: resourceType.value, resource_name: resourceName.value,
      pattern_type: patternType.value, host: host.value,
    };
    try {
      await post('/api/acls', acl);
      toast('ACL added');
      refresh();
    } catch (err) { toast(err.message, 'error'); }
  } },
  field('Principal', principal, 'User:name, or User:* for every authenticated user'),
  field('Permission', permission, 'a DENY wins over any ALLOW and over the vhost permissions'),
  field('Operation', operation, 'READ, WRITE, DELETE and ALTER also allow DESCRIBE'),
  field('Resource type', resourceType), field('Resource name', resourceName, '* (literal) is every name; the cluster is kafka-cluster'),
  field('Pattern', patternType, 'prefixed: every name that starts with it'), field('Host', host, '* or a client IP address'),
  h('div.form-actions', null, h('button.primary', { type: 'submit' }, 'Add ACL')));

  const remove = async (a) => {
    const ok = await confirmDialog({
      title: `Delete this ACL of ${a.principal}?`,
      body: `${a.permission} ${a.operation} on ${a.resource_type} ${a.resource_name} (${a.pattern_type}) from ${a.host}. It stops applying to the next request of every connection.`,
      action: 'Delete',
    });
    if (!ok) return;
    try {
      await request('DELETE', '/api/acls', a);
      toast('ACL deleted');
      refresh();
    } catch (err) { toast(err.message, 'error'); }
  };
  const count = h('span');
  ctx.el.append(pageHead('Kafka ACLs', count),
    h('div.cols', null,
      h('div', null, card('ACLs', list)),
      h('div', null, card('Add an ACL', form))));
  const refresh = async () => {
    try {
      const all = await get('/api/acls');
      list.replaceChildren(aclTable(all, remove));
      count.textContent = `${num(all.length)} stored`;
    } catch (err) {
      if (err.status !== 401) throw err;
      list.replaceChildren(h('p.muted', null, err.message)); // administrators only
    }
  };
  ctx.poll(refresh, 8000);
}
