// Small hand-written charts: a canvas line chart with axes, legend and a
// hover read-out, and an inline SVG sparkline for table rows.

const PALETTE = ['--c1', '--c2', '--c3', '--c4', '--c5', '--c6', '--c7', '--c8'];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

// niceStep picks 1, 2 or 5 times a power of ten so that max/step is about n.
function niceStep(max, n) {
  const raw = max / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

function clock(t) {
  const d = new Date(t);
  return d.toTimeString().slice(0, 8);
}

// LineChart draws series of [time ms, value] points. Construct it on an
// empty element; call set() with new data whenever a poll returns.
export class LineChart {
  constructor(el, { title = '', format = (v) => String(v), height = 180, area = true } = {}) {
    this.el = el;
    this.format = format;
    this.area = area;
    el.classList.add('chart');
    el.innerHTML = '';
    const head = document.createElement('div');
    head.className = 'chart-head';
    head.innerHTML = '<span class="chart-title"></span><span class="chart-legend"></span>';
    head.firstChild.textContent = title;
    this.legend = head.lastChild;
    this.canvas = document.createElement('canvas');
    this.canvas.style.height = height + 'px';
    this.tip = document.createElement('div');
    this.tip.className = 'chart-tip';
    this.empty = document.createElement('div');
    this.empty.className = 'chart-empty';
    this.empty.textContent = 'collecting samples…';
    el.append(head, this.canvas, this.tip, this.empty);
    this.series = [];
    this.hover = null;
    this.canvas.addEventListener('mousemove', (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.hover = e.clientX - r.left;
      this.draw();
    });
    this.canvas.addEventListener('mouseleave', () => { this.hover = null; this.draw(); });
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.canvas);
  }

  // set replaces the data: series is [{label, points: [[t, v], ...]}].
  set(series) {
    this.series = series;
    let pts = 0, max = 0;
    for (const s of series) {
      let n = 0;
      for (const [, v] of s.points) if (Number.isFinite(v)) { n++; max = Math.max(max, v); }
      pts = Math.max(pts, n);
    }
    // Read by tests and handy when debugging: how much the chart shows.
    this.el.dataset.points = String(pts);
    this.el.dataset.max = String(max);
    this.el.dataset.series = String(series.length);
    this.legend.innerHTML = '';
    series.forEach((s, i) => {
      const item = document.createElement('span');
      item.className = 'legend-item';
      const sw = document.createElement('i');
      sw.style.background = cssVar(s.color || PALETTE[i % PALETTE.length]);
      const last = s.points.length ? s.points[s.points.length - 1][1] : NaN;
      item.append(sw, document.createTextNode(s.label + ' '));
      const b = document.createElement('b');
      b.textContent = Number.isFinite(last) ? this.format(last) : '–';
      item.append(b);
      this.legend.append(item);
    });
    const samples = Math.max(0, ...series.map((s) => s.points.length));
    this.empty.textContent = samples >= 2 ? 'nothing measured in this window' : 'collecting samples…';
    this.empty.style.display = pts >= 2 ? 'none' : '';
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    let t0 = Infinity, t1 = -Infinity, max = 0;
    for (const s of this.series) {
      for (const [t, v] of s.points) {
        t0 = Math.min(t0, t); t1 = Math.max(t1, t);
        if (Number.isFinite(v)) max = Math.max(max, v);
      }
    }
    if (!(t1 > t0)) return;
    if (max <= 0) max = 1;
    const step = niceStep(max, 4);
    max = Math.ceil(max / step) * step;
    const font = '11px ' + getComputedStyle(document.body).fontFamily;
    g.font = font;
    const labelW = Math.max(...[0, step, max].map((v) => g.measureText(this.format(v)).width)) + 10;
    const L = labelW, R = 8, T = 8, B = 20;
    const X = (t) => L + ((t - t0) / (t1 - t0)) * (w - L - R);
    const Y = (v) => T + (1 - v / max) * (h - T - B);
    const grid = cssVar('--grid'), muted = cssVar('--muted');
    g.strokeStyle = grid; g.fillStyle = muted; g.lineWidth = 1;
    g.textAlign = 'right'; g.textBaseline = 'middle';
    for (let v = 0; v <= max + step / 2; v += step) {
      const y = Math.round(Y(v)) + 0.5;
      g.beginPath(); g.moveTo(L, y); g.lineTo(w - R, y); g.stroke();
      g.fillText(this.format(v), L - 6, y);
    }
    g.textAlign = 'center'; g.textBaseline = 'top';
    const ticks = Math.max(1, Math.min(Math.floor((w - L - R) / 90), Math.floor((t1 - t0) / 1000)));
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + ((t1 - t0) * i) / ticks;
      g.fillText(clock(t), Math.min(Math.max(X(t), L + 24), w - R - 24), h - B + 5);
    }
    this.series.forEach((s, i) => {
      const col = cssVar(s.color || PALETTE[i % PALETTE.length]);
      const pts = s.points.filter(([, v]) => Number.isFinite(v));
      if (pts.length < 2) return;
      g.beginPath();
      pts.forEach(([t, v], j) => (j ? g.lineTo(X(t), Y(v)) : g.moveTo(X(t), Y(v))));
      g.strokeStyle = col; g.lineWidth = 1.75; g.lineJoin = 'round';
      g.stroke();
      if (this.area && this.series.length <= 3) {
        g.lineTo(X(pts[pts.length - 1][0]), Y(0));
        g.lineTo(X(pts[0][0]), Y(0));
        g.closePath();
        g.globalAlpha = 0.08; g.fillStyle = col; g.fill(); g.globalAlpha = 1;
      }
    });
    if (this.hover != null && this.hover >= L) {
      const t = t0 + ((this.hover - L) / (w - L - R)) * (t1 - t0);
      g.strokeStyle = muted; g.setLineDash([3, 3]);
      g.beginPath(); g.moveTo(this.hover, T); g.lineTo(this.hover, h - B); g.stroke();
      g.setLineDash([]);
      const rows = this.series.map((s) => {
        let best = null;
        for (const p of s.points) if (!best || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        return best ? [s.label, best] : null;
      }).filter(Boolean);
      if (rows.length) {
        this.tip.textContent = '';
        const head = document.createElement('div');
        head.className = 'tip-time';
        head.textContent = clock(rows[0][1][0]);
        this.tip.append(head);
        for (const [label, [, v]] of rows) {
          const d = document.createElement('div');
          d.textContent = `${label}: ${Number.isFinite(v) ? this.format(v) : '–'}`;
          this.tip.append(d);
        }
        this.tip.style.display = 'block';
        const left = this.hover + 12 + 160 > w ? this.hover - 172 : this.hover + 12;
        this.tip.style.left = left + 'px';
        this.tip.style.top = '34px';
      }
    } else {
      this.tip.style.display = 'none';
    }
  }

  destroy() { this.ro.disconnect(); }
}

// sparkline returns an SVG element drawing values (oldest first).
export function sparkline(values, w = 96, h = 22) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', w); svg.setAttribute('height', h);
  svg.setAttribute('class', 'spark');
  if (!values || values.length < 2) return svg;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i / (values.length - 1)) * (w - 2) + 1).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  const area = document.createElementNS(ns, 'polygon');
  area.setAttribute('points', `1,${h - 1} ${pts.join(' ')} ${w - 1},${h - 1}`);
  area.setAttribute('class', 'spark-area');
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  line.setAttribute('class', 'spark-line');
  svg.append(area, line);
  return svg;
}
