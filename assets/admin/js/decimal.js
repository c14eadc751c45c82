// Exact decimal arithmetic on the API's money strings ("42.49"), with BigInt: adding money as
// JavaScript numbers would drift (0.1 + 0.2). Only what the dashboard needs: add, subtract,
// compare, and render with a given number of decimals.

/** Parses "12.50" into {units: 1250n, scale: 2}; null for anything else. */
export function parse(text) {
  const m = /^(-)?(\d+)(?:\.(\d+))?$/.exec(String(text).trim());
  if (!m) return null;
  const frac = m[3] ?? '';
  const units = BigInt(m[2] + frac) * (m[1] ? -1n : 1n);
  return { units, scale: frac.length };
}

function align(a, b) {
  const scale = Math.max(a.scale, b.scale);
  const up = (x) => x.units * 10n ** BigInt(scale - x.scale);
  return [up(a), up(b), scale];
}

function render(units, scale) {
  const neg = units < 0n;
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0');
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return neg ? `-${text}` : text;
}

/** a + b, as a string with the larger number of decimals of the two. */
export function add(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) throw new RangeError(`not decimals: ${a}, ${b}`);
  const [p, q, scale] = align(x, y);
  return render(p + q, scale);
}

/** a - b. */
export function sub(a, b) {
  const y = parse(b);
  if (!y) throw new RangeError(`not a decimal: ${b}`);
  return add(a, render(-y.units, y.scale));
}

/** -1, 0 or 1. */
export function cmp(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) throw new RangeError(`not decimals: ${a}, ${b}`);
  const [p, q] = align(x, y);
  return p < q ? -1 : p > q ? 1 : 0;
}

/** Sums per currency: {USD: "12.50"}; `add(totals, "1.25", "USD")` adds in place. */
export function addTo(totals, amount, currency) {
  totals[currency] = totals[currency] === undefined ? amount : add(totals[currency], amount);
  return totals;
}
