// A small dependency-free SVG line chart: upstream requests per second over time, one line per
// series, with horizontal reference lines (users / TTL and the 1.05 × goal).

import { maxOf } from './extremes.mjs';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * `spans`: shaded stretches of x (an outage), each { from, to, label }; `notes`: labelled points,
 * each { x, y, label, color }.
 */
export function lineChart({
  title,
  subtitle,
  xLabel,
  yLabel,
  series,
  refs = [],
  spans = [],
  notes = [],
  width = 720,
  height = 320,
}) {
  const m = { l: 56, r: 16, t: 44, b: 42 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [
    ...series.flatMap((s) => s.points.map((p) => p[1])),
    ...refs.map((r) => r.y),
    ...notes.map((n) => n.y),
  ];
  const xMax = maxOf(xs);
  const yMax = niceCeil(maxOf(ys) * 1.05);
  const X = (x) => m.l + (x / xMax) * w;
  const Y = (y) => m.t + h - (y / yMax) * h;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.l}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`,
    `<text x="${m.l}" y="32" fill="#555">${esc(subtitle)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const y = (yMax / 4) * i;
    out.push(
      `<line x1="${m.l}" x2="${m.l + w}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(y)}</text>`,
    );
  }
  const xStep = niceStep(xMax / 8);
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    out.push(
      `<text x="${X(x).toFixed(1)}" y="${m.t + h + 14}" text-anchor="middle" fill="#555">${fmt(x)}</text>`,
    );
  }
  out.push(
    `<line x1="${m.l}" x2="${m.l + w}" y1="${m.t + h}" y2="${m.t + h}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + h}" stroke="#333"/>`,
    `<text x="${m.l + w / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(14 ${m.t + h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  for (const sp of spans) {
    out.push(
      `<rect x="${X(sp.from).toFixed(1)}" y="${m.t}" width="${(X(sp.to) - X(sp.from)).toFixed(1)}" height="${h}" fill="#f6f8fa"/>`,
      `<text x="${((X(sp.from) + X(sp.to)) / 2).toFixed(1)}" y="${m.t + h - 6}" text-anchor="middle" fill="#555">${esc(sp.label)}</text>`,
    );
  }
  for (const r of refs) {
    out.push(
      `<line x1="${m.l}" x2="${m.l + w}" y1="${Y(r.y).toFixed(1)}" y2="${Y(r.y).toFixed(1)}" stroke="${r.color}" stroke-dasharray="5 4"/>`,
      `<text x="${m.l + w - 4}" y="${(Y(r.y) - 4).toFixed(1)}" text-anchor="end" fill="${r.color}">${esc(r.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)} ${Y(p[1]).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.3"/>`);
    out.push(
      `<rect x="${m.l + 10}" y="${m.t + 6 + i * 15}" width="12" height="3" fill="${s.color}"/>`,
      `<text x="${m.l + 27}" y="${m.t + 11 + i * 15}">${esc(s.label)}</text>`,
    );
  });
  for (const n of notes) {
    out.push(
      `<circle cx="${X(n.x).toFixed(1)}" cy="${Y(n.y).toFixed(1)}" r="3" fill="${n.color}"/>`,
      `<text x="${(X(n.x) + 6).toFixed(1)}" y="${(Y(n.y) + 4).toFixed(1)}" fill="${n.color}">${esc(n.label)}</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function niceStep(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const k of [1, 2, 5, 10]) if (k * p >= x) return k * p;
  return 10 * p;
}

function niceCeil(x) {
  if (x <= 0) return 1;
  const s = niceStep(x / 4);
  return Math.ceil(x / s) * s;
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1);
}
