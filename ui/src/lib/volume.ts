// Volume buckets → aligned columns for the chart (zero-filled, one per source).
import type { VolumeResponse } from './api/types';

export function series(v: VolumeResponse): { sources: string[]; table: [number[], ...number[][]] } {
  const start = Date.parse(v.from);
  const end = Date.parse(v.to);
  const step = v.bucket_secs * 1000;
  const first = Math.floor(start / step) * step;
  const xs: number[] = [];
  for (let t = first; t < end; t += step) xs.push(t / 1000);
  const sources = [...new Set(v.buckets.map((b) => b.source))].sort();
  const cols = sources.map(() => new Array<number>(xs.length).fill(0));
  for (const b of v.buckets) {
    const i = Math.round((b.start_ms - first) / step);
    const s = sources.indexOf(b.source);
    if (i >= 0 && i < xs.length) cols[s][i] += b.count;
  }
  return { sources, table: [xs, ...cols] };
}

