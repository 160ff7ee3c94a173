// UI pieces shared by pages: cards, stat tiles, key/value lists, toasts,
// the confirmation dialog and the publish form.
import { h, num } from './util.js';
import { post, seg } from './api.js';

export function card(title, ...body) {
  return h('section.card', null, title ? h('h2', null, title) : null, ...body);
}

export function stat(label, value, sub) {
  return h('div.stat', null, h('div.stat-label', null, label),
    h('div.stat-value' + (typeof value === 'number' ? '' : '.text'), { dataset: { stat: label } }, typeof value === 'number' ? num(value) : value),
    sub ? h('div.stat-sub', null, sub) : null);
}

export function kv(pairs) {
  return h('dl.kv', null, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v == null || v === '' ? '–' : v)]));
}

export function badge(text, kind = '') {
  return h('span.badge' + (kind ? '.' + kind : ''), null, text);
}

export function link(href, text) {
  return h('a', { href }, text);
}

export function errorBox(err) {
  return h('div.error-box', { role: 'alert' }, err && err.message ? err.message : String(err));
}

export function pageHead(title, sub, ...actions) {
  return h('div.page-head', null,
    h('div', null, h('h1', null, title), sub ? h('div.page-sub', null, sub) : null),
    h('div.actions', null, ...actions));
}

let toastBox;
export function toast(msg, kind = 'ok') {
  if (!toastBox) document.body.append((toastBox = h('div.toasts', { 'aria-live': 'polite' })));
  const t = h('div.toast.' + kind, { role: kind === 'error' ? 'alert' : 'status' }, msg);
  toastBox.append(t);
  setTimeout(() => t.classList.add('out'), 3500);
  setTimeout(() => t.remove(), 4000);
}

// confirmDialog asks before something irreversible. With typeToConfirm the
// user must type that text (the object's name) to enable the button.
export function confirmDialog({ title, body, action = 'Confirm', danger = true, typeToConfirm }) {
  return new Promise((resolve) => {
    const input = typeToConfirm != null ? h('input', { type: 'text', autocomplete: 'off', 'aria-label': 'Type the name to confirm' }) : null;
    const ok = h('button' + (danger ? '.danger' : '.primary'), { type: 'submit', value: 'ok', disabled: input != null }, action);
    if (input) input.addEventListener('input', () => { ok.disabled = input.value !== typeToConfirm; });
    const d = h('dialog.confirm', null,
      h('form', { method: 'dialog' },
        h('h3', null, title),
        h('p', null, body),
        input ? h('label.field', null, h('span', null, 'Type ', h('code', null, typeToConfirm), ' to confirm'), input) : null,
        h('div.dialog-actions', null,
          h('button.ghost', { type: 'submit', value: 'cancel' }, 'Cancel'), ok)));
    d.addEventListener('close', () => { d.remove(); resolve(d.returnValue === 'ok'); });
    document.body.append(d);
    d.showModal();
    (input || ok).focus();
  });
}

// field wraps a labelled control.
export function field(label, control, hint) {
  return h('label.field', null, h('span', null, label), control, hint ? h('small', null, hint) : null);
}

// publishForm posts to /api/exchanges/{vhost}/{exchange}/publish.
// fixedKey fills (and locks) the routing key: publishing to a queue goes
// through the default exchange with the queue's name as key.
export function publishForm(vhost, exchange, fixedKey, onDone) {
  const key = h('input', { name: 'routing_key', value: fixedKey ?? '', readOnly: fixedKey != null, placeholder: 'routing key' });
  const payload = h('textarea', { name: 'payload', rows: 4, placeholder: 'message body' });
  const enc = h('select', { name: 'payload_encoding' }, h('option', { value: 'string' }, 'string'), h('option', { value: 'base64' }, 'base64'));
  const mode = h('select', { name: 'delivery_mode' }, h('option', { value: '2' }, 'persistent'), h('option', { value: '1' }, 'transient'));
  const ctype = h('input', { name: 'content_type', placeholder: 'e.g. application/json' });
  const headers = h('textarea', { name: 'headers', rows: 2, placeholder: '{"x-tenant": "acme"}' });
  const props = h('textarea', { name: 'properties', rows: 2, placeholder: '{"message_id": "42", "priority": 5}' });
  const out = h('div.form-out');
  const form = h('form.stack', {
    onsubmit: async (e) => {
      e.preventDefault();
      out.replaceChildren();
      const properties = { delivery_mode: Number(mode.value) };
      try {
        if (ctype.value) properties.content_type = ctype.value;
        if (headers.value.trim()) properties.headers = JSON.parse(headers.value);
        if (props.value.trim()) Object.assign(properties, JSON.parse(props.value));
      } catch (err) {
        out.append(errorBox('Headers and properties must be JSON objects: ' + err.message));
        return;
      }
      try {
        const r = await post(`/api/exchanges/${seg(vhost)}/${seg(exchange || 'amq.default')}/publish`, {
          routing_key: key.value, payload: payload.value, payload_encoding: enc.value, properties,
        });
        if (r && r.routed) {
          toast('Message published');
          out.append(h('div.ok-box', { role: 'status' }, 'Message published and routed.'));
        } else {
          out.append(h('div.warn-box', { role: 'status' }, 'Message published but not routed to any queue.'));
        }
        if (onDone) onDone();
      } catch (err) {
        out.append(errorBox(err));
      }
    },
  },
  h('div.grid2', null, field('Routing key', key), field('Delivery mode', mode)),
  field('Payload', payload),
  h('details', null, h('summary', null, 'Properties and headers'),
    h('div.grid2', null, field('Payload encoding', enc), field('Content type', ctype)),
    field('Headers (JSON)', headers), field('Other properties (JSON)', props)),
  h('div.form-actions', null, h('button.primary', { type: 'submit' }, 'Publish message')),
  out);
  return form;
}
