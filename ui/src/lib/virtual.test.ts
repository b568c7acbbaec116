import { describe, expect, it } from 'vitest';
import { layoutSlots, slotCount, windowRange } from './virtual';

const rowsOf = (slots: { index: number }[]) => slots.map((s) => s.index).sort((a, b) => a - b);

describe('virtual window', () => {
  it('covers the viewport plus overscan, clamped to the list', () => {
    expect(windowRange(0, 340, 34, 2, 1000)).toEqual([0, 12]);
    expect(windowRange(3400, 340, 34, 2, 1000)).toEqual([98, 112]);
    expect(windowRange(34_000, 340, 34, 2, 1000)).toEqual([998, 1000]);
    expect(windowRange(0, 340, 34, 2, 0)).toEqual([0, 0]);
  });

  it('lays every row of the window into its own slot', () => {
    const n = slotCount(340, 34, 2);
    for (const start of [0, 1, 7, n - 1, n, 3 * n + 5]) {
      const end = start + n - 3;
      const slots = layoutSlots(start, end, n);
      expect(rowsOf(slots)).toEqual(Array.from({ length: end - start }, (_, i) => start + i));
      expect(new Set(slots.map((s) => s.slot)).size).toBe(slots.length);
      for (const s of slots) expect(s.index % n).toBe(s.slot);
    }
  });

  it('moving the window by d rows changes the row of d slots only', () => {
    const n = 30;
    const before = new Map(layoutSlots(100, 128, n).map((s) => [s.slot, s.index]));
    const after = new Map(layoutSlots(105, 133, n).map((s) => [s.slot, s.index]));
    const changed = [...after].filter(([slot, index]) => before.get(slot) !== index);
    expect(changed.length).toBe(5);
  });

  it('reuses the entries of the previous layout that did not change', () => {
    const a = layoutSlots(100, 128, 30);
    const b = layoutSlots(105, 133, 30, a);
    const kept = b.filter((s) => a.includes(s));
    expect(kept.length).toBe(23);
    expect(kept.every((s) => s.index >= 105 && s.index < 128)).toBe(true);
  });

  it('lists slots in slot order (a stable key order: no element moves)', () => {
    const slots = layoutSlots(41, 60, 25);
    expect(slots.map((s) => s.slot)).toEqual([...slots.map((s) => s.slot)].sort((a, b) => a - b));
  });

  it('refuses a window larger than the slots', () => {
    expect(() => layoutSlots(0, 11, 10)).toThrow(RangeError);
  });
});
