import { describe, expect, it } from 'vitest';
import { series } from './volume';

describe('volume series', () => {
  it('aligns buckets per source and fills gaps with zero', () => {
    const from = Date.parse('2026-11-24T00:00:00Z');
    const r = series({
      from: new Date(from).toISOString(),
      to: new Date(from + 4 * 60_000).toISOString(),
      bucket_secs: 60,
      buckets: [
        { source: 'stripe', start_ms: from + 60_000, count: 2 },
        { source: 'github', start_ms: from, count: 5 },
        { source: 'github', start_ms: from + 3 * 60_000, count: 1 },
      ],
    });
    expect(r.sources).toEqual(['github', 'stripe']);
    expect(r.table[0]).toHaveLength(4);
    expect(r.table[1]).toEqual([5, 0, 0, 1]);
    expect(r.table[2]).toEqual([0, 2, 0, 0]);
  });
});
