import { describe, expect, it } from 'vitest';
import { exact, relative } from './time';

const NOW = Date.parse('2026-11-24T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

describe('relative time', () => {
  it.each([
    [0, 'now'],
    [4_000, 'now'],
    [12_000, '12s ago'],
    [59_000, '59s ago'],
    [60_000, '1m ago'],
    [5 * 60_000, '5m ago'],
    [3 * 3_600_000, '3h ago'],
    [2 * 86_400_000, '2d ago'],
    [14 * 86_400_000, '2w ago'],
    [400 * 86_400_000, '1y ago'],
    [-5 * 60_000, 'in 5m'],
  ])('%i ms → %s', (ms, want) => {
    expect(relative(ago(ms), NOW)).toBe(want);
  });
  it('invalid input', () => {
    expect(relative('not a date', NOW)).toBe('—');
    expect(exact('nope')).toBe('nope');
  });
  it('exact has milliseconds', () => {
    expect(exact(NOW + 7)).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.007$/);
  });
});
