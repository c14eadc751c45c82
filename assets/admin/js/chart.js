// Small SVG charts drawn with DOM calls (no library, no inline styles: colours are classes in
// app.css). Each chart has a text alternative in its aria-label, and the numbers it shows are
// also on the page as text.

import { s } from './dom.js';

const WIDTH = 600;
const HEIGHT = 120;
const PAD_BOTTOM = 14;

/**
 * A bar chart of `values` (oldest first); the last bar is highlighted as "now". `labels` gives
 * the x-axis text at the first, middle and last bar.
 */
export function bars(values, { label, first, last }) {
  const max = Math.max(1, ...values);
  const n = Math.max(values.length, 1);
  const slot = WIDTH / n;
  const gap = slot > 4 ? 1 : 0;
  const plot = HEIGHT - PAD_BOTTOM;
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': label,
  });
  values.forEach((v, i) => {
    const hgt = v === 0 ? 0 : Math.max(1, (v / max) * (plot - 10));
    svg.append(
      s('rect', {
        class: i === values.length - 1 ? 'bar now' : 'bar',
        x: (i * slot + gap).toFixed(1),
        y: (plot - hgt).toFixed(1),
        width: Math.max(slot - 2 * gap, 0.5).toFixed(1),
        height: hgt.toFixed(1),
      }),
    );
  });
  svg.append(s('line', { class: 'axis', x1: 0, x2: WIDTH, y1: plot, y2: plot }));
  svg.append(s('text', { x: 0, y: HEIGHT - 2 }, first));
  svg.append(s('text', { x: WIDTH, y: HEIGHT - 2, 'text-anchor': 'end' }, last));
  svg.append(s('text', { x: 2, y: 10 }, `max ${max}`));
  return svg;
}

/** A horizontal meter of `value` out of `max`; `low` colours it as a warning. */
export function meter(value, max, { label, low }) {
  const frac = max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  return s(
    'svg',
    { class: 'meter', viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': label },
    s('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10, rx: 2 }),
    s('rect', { class: low ? 'fill low' : 'fill', x: 0, y: 0, width: (frac * 100).toFixed(2), height: 10, rx: 2 }),
  );
}

/**
 * Counts per time slot over a sliding window: `slots` buckets of `slotMs`, the last one the
 * current slot. `add(atMs, n)` counts into the slot of `atMs` (ignored if outside the window);
 * `values(nowMs)` rolls the window to `nowMs` and returns the counts, oldest first.
 */
export class Window {
  constructor(slots, slotMs) {
    this.slots = slots;
    this.slotMs = slotMs;
    this.counts = new Map();
  }

  slot(ms) {
    return Math.floor(ms / this.slotMs);
  }

  add(atMs, n = 1) {
    const k = this.slot(atMs);
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
  }

  values(nowMs) {
    const end = this.slot(nowMs);
    const start = end - this.slots + 1;
    for (const k of this.counts.keys()) if (k < start) this.counts.delete(k);
    const out = [];
    for (let k = start; k <= end; k += 1) out.push(this.counts.get(k) ?? 0);
    return out;
  }
}
