// Prometheus text exposition format, the subset /metrics writes: one
// sample per line, "name{label="value",...} value [timestamp]", comments
// starting with "#". parse() keeps only the families named in want (exact
// names, or "name_bucket" / "_sum" / "_count" of a wanted histogram), so a
// scrape with thousands of queues costs one pass over the text.

// parse returns Map(name -> array of {labels, value}).
export function parse(text, want) {
  const out = new Map();
  const wanted = new Set(want);
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue;
    let i = 0;
    while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
    const name = line.slice(0, i);
    if (!wanted.has(name) && !wanted.has(family(name))) continue;
    const labels = {};
    if (line[i] === '{') {
      i = parseLabels(line, i + 1, labels);
      if (i < 0) continue;
    }
    const rest = line.slice(i).trim().split(' ');
    const v = parseValue(rest[0]);
    if (Number.isNaN(v)) continue;
    let arr = out.get(name);
    if (!arr) out.set(name, (arr = []));
    arr.push({ labels, value: v });
  }
  return out;
}

function family(name) {
  for (const suf of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suf)) return name.slice(0, -suf.length);
  }
  return name;
}

// parseLabels reads label pairs from line at i (after "{") into labels and
// returns the index after "}", or -1 on a malformed line.
function parseLabels(line, i, labels) {
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return i + 1;
    const eq = line.indexOf('=', i);
    if (eq < 0 || line[eq + 1] !== '"') return -1;
    const key = line.slice(i, eq).trim();
    let j = eq + 2;
    let val = '';
    for (; j < line.length; j++) {
      const c = line[j];
      if (c === '\\') {
        const d = line[++j];
        val += d === 'n' ? '\n' : d;
      } else if (c === '"') {
        break;
      } else {
        val += c;
      }
    }
    if (j >= line.length) return -1;
    labels[key] = val;
    i = j + 1;
  }
}

function parseValue(s) {
  switch (s) {
    case '+Inf': return Infinity;
    case '-Inf': return -Infinity;
    case 'NaN': return NaN;
  }
  return Number(s);
}

// sum adds the values of a family whose labels match every pair in match.
export function sum(m, name, match = {}) {
  let t = 0;
  for (const s of m.get(name) || []) {
    if (matches(s.labels, match)) t += s.value;
  }
  return t;
}

// sumBy adds a family's values grouped by one label (or a key function).
export function sumBy(m, name, key, match = {}) {
  const out = new Map();
  const kf = typeof key === 'function' ? key : (l) => l[key];
  for (const s of m.get(name) || []) {
    if (!matches(s.labels, match)) continue;
    const k = kf(s.labels);
    out.set(k, (out.get(k) || 0) + s.value);
  }
  return out;
}

function matches(labels, match) {
  for (const k in match) if (labels[k] !== match[k]) return false;
  return true;
}

// buckets sums a histogram's cumulative buckets over all other labels:
// returns [[le, count], ...] sorted by le, plus sum and count.
export function histogram(m, name, match = {}) {
  const byLe = sumBy(m, name + '_bucket', 'le', match);
  const b = [...byLe].map(([le, c]) => [parseValue(le), c]).sort((x, y) => x[0] - y[0]);
  return { buckets: b, sum: sum(m, name + '_sum', match), count: sum(m, name + '_count', match) };
}

// quantile estimates quantile q from the difference of two cumulative
// histograms (newer minus older), interpolating linearly inside a bucket as
// Prometheus' histogram_quantile does. NaN when nothing was observed.
export function quantile(q, newer, older) {
  const b = newer.buckets.map(([le, c], i) => [le, c - (older && older.buckets[i] ? older.buckets[i][1] : 0)]);
  if (b.length === 0) return NaN;
  const total = b[b.length - 1][1];
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let prevLe = 0, prevC = 0;
  for (const [le, c] of b) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      if (c === prevC) return le;
      return prevLe + (le - prevLe) * ((rank - prevC) / (c - prevC));
    }
    prevLe = le; prevC = c;
  }
  return prevLe;
}
