// Table: a sortable, filterable, paginated table. Only the rows of the
// current page are in the DOM, so lists of thousands of queues stay fast;
// setRows() after each poll keeps the user's filter, sort and page.
import { h, num } from './util.js';

export class Table {
  // columns: [{key, label, value(row) for sorting, render(row) -> Node|string,
  //            num: right-aligned numeric}]
  constructor({ columns, filterText, pageSize = 50, empty = 'Nothing here yet.', sort, name = 'table' }) {
    this.columns = columns;
    this.filterText = filterText || ((r) => String(r.name ?? ''));
    this.pageSize = pageSize;
    this.emptyText = empty;
    this.rows = [];
    this.filter = '';
    this.page = 0;
    this.sortKey = sort ? sort[0] : columns[0].key;
    this.sortDesc = sort ? sort[1] : false;
    this.filterInput = h('input.filter', {
      type: 'search', placeholder: 'Filter (text, or /regex/)', 'aria-label': 'Filter ' + name,
      oninput: () => { this.filter = this.filterInput.value; this.page = 0; this.render(); },
    });
    this.info = h('span.table-info');
    this.pager = h('span.pager');
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.el = h('div.table-wrap', { dataset: { table: name } },
      h('div.table-tools', null, this.filterInput, this.info, this.pager),
      h('div.table-scroll', null, h('table.data', null, this.thead, this.tbody)));
    this.renderHead();
  }

  renderHead() {
    const tr = h('tr');
    for (const c of this.columns) {
      const active = c.key === this.sortKey;
      const th = h('th' + (c.num ? '.num' : ''), {
        'aria-sort': active ? (this.sortDesc ? 'descending' : 'ascending') : null,
        onclick: c.nosort ? null : () => {
          if (this.sortKey === c.key) this.sortDesc = !this.sortDesc;
          else { this.sortKey = c.key; this.sortDesc = !!c.num; }
          this.renderHead();
          this.render();
        },
      }, c.label, active ? h('span.sort', null, this.sortDesc ? '▾' : '▴') : null);
      if (c.nosort) th.classList.add('nosort');
      tr.append(th);
    }
    this.thead.replaceChildren(tr);
  }

  setRows(rows) {
    this.rows = rows;
    this.render();
  }

  matcher() {
    const f = this.filter.trim();
    if (!f) return null;
    if (f.length > 2 && f.startsWith('/') && f.endsWith('/')) {
      try {
        const re = new RegExp(f.slice(1, -1), 'i');
        return (s) => re.test(s);
      } catch { /* fall through to substring */ }
    }
    const lf = f.toLowerCase();
    return (s) => s.toLowerCase().includes(lf);
  }

  render() {
    const m = this.matcher();
    // filterText may give one string or several (name, vhost, ...): a row
    // matches if any of them does.
    let rows = m ? this.rows.filter((r) => [].concat(this.filterText(r)).some((s) => m(String(s)))) : this.rows.slice();
    const col = this.columns.find((c) => c.key === this.sortKey) || this.columns[0];
    const val = col.value || ((r) => r[col.key]);
    const dir = this.sortDesc ? -1 : 1;
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === y) return 0;
      if (x == null) return 1;
      if (y == null) return -1;
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
    });
    const pages = Math.max(1, Math.ceil(rows.length / this.pageSize));
    if (this.page >= pages) this.page = pages - 1;
    const from = this.page * this.pageSize;
    const shown = rows.slice(from, from + this.pageSize);
    const trs = shown.map((r) => h('tr', null, this.columns.map((c) => {
      const v = c.render ? c.render(r) : r[c.key];
      return h('td' + (c.num ? '.num' : ''), null, typeof v === 'number' ? num(v) : v);
    })));
    if (!trs.length) {
      trs.push(h('tr.empty', null, h('td', { colSpan: this.columns.length }, this.rows.length ? 'No match for the filter.' : this.emptyText)));
    }
    this.tbody.replaceChildren(...trs);
    this.el.dataset.total = String(this.rows.length);
    this.el.dataset.matching = String(rows.length);
    this.info.textContent = rows.length
      ? `${num(from + 1)}–${num(from + shown.length)} of ${num(rows.length)}` + (m ? ` (filtered from ${num(this.rows.length)})` : '')
      : '';
    this.pager.replaceChildren();
    if (pages > 1) {
      const go = (p) => () => { this.page = p; this.render(); };
      this.pager.append(
        h('button.ghost', { onclick: go(0), disabled: this.page === 0, title: 'First page' }, '«'),
        h('button.ghost', { onclick: go(this.page - 1), disabled: this.page === 0, title: 'Previous page', 'aria-label': 'Previous page' }, '‹'),
        h('span.page-no', null, `page ${this.page + 1} / ${pages}`),
        h('button.ghost', { onclick: go(this.page + 1), disabled: this.page >= pages - 1, title: 'Next page', 'aria-label': 'Next page' }, '›'),
        h('button.ghost', { onclick: go(pages - 1), disabled: this.page >= pages - 1, title: 'Last page' }, '»'));
    }
  }
}
