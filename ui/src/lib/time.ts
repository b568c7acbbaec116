// Relative and exact times for the lists.

const UNITS: [number, string][] = [
  [60, 's'],
  [60, 'm'],
  [24, 'h'],
  [7, 'd'],
  [4.35, 'w'],
  [12, 'mo'],
  [Number.POSITIVE_INFINITY, 'y'],
];

/** "now", "12s ago", "5m ago", "3h ago", "2d ago", … ; "in 5m" for the future. */
export function relative(iso: string | number | Date, now: number = Date.now()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '—';
  let diff = (now - t) / 1000;
  const future = diff < 0;
  diff = Math.abs(diff);
  if (diff < 5) return 'now';
  let value = diff;
  for (const [size, unit] of UNITS) {
    if (value < size) {
      const n = Math.floor(value);
      return future ? `in ${n}${unit}` : `${n}${unit} ago`;
    }
    value /= size;
  }
  return '—';
}

/** Local, unambiguous, with milliseconds: "2026-11-24 18:20:03.123". */
export function exact(iso: string | number | Date): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
