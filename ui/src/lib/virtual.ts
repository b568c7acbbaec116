// The Events list's virtual window: which rows are rendered, and in which
// recycled row element ("slot") each one sits.

/** Rows `[start, end)` of `total` that cover the viewport plus `overscan` rows each side. */
export function windowRange(scrollTop: number, viewport: number, row: number, overscan: number, total: number): [number, number] {
  const start = Math.max(0, Math.min(total, Math.floor(scrollTop / row) - overscan));
  const end = Math.max(start, Math.min(total, Math.ceil((scrollTop + viewport) / row) + overscan));
  return [start, end];
}

/** How many slots a viewport needs: every row a window can hold. */
export function slotCount(viewport: number, row: number, overscan: number): number {
  return Math.ceil(viewport / row) + 2 * overscan + 2;
}

/** One rendered row: slot `slot` shows row `index`. */
export interface Slot {
  slot: number;
  index: number;
}

/**
 * Rows `[start, end)` laid into `slots` recycled elements, in slot order:
 * row `k` always sits in slot `k % slots`. When the window moves by `d`
 * rows, only `d` slots change row; the others keep their element, content
 * and position, so scrolling creates no elements and re-lays out only the
 * rows that came into view. `slots` must be at least `end - start`.
 * Entries of `prev` (the previous layout) that did not change are reused as
 * they are, so a keyed `{#each}` sees the same item and does no work for it.
 */
export function layoutSlots(start: number, end: number, slots: number, prev: readonly Slot[] = []): Slot[] {
  if (end - start > slots) throw new RangeError(`${end - start} rows do not fit ${slots} slots`);
  const old = new Map<number, Slot>();
  for (const p of prev) old.set(p.slot, p);
  const out: Slot[] = [];
  for (let s = 0; s < slots; s++) {
    // The one k in [start, start + slots) with k % slots === s.
    const k = start + ((s - (start % slots) + slots) % slots);
    if (k >= end) continue;
    const p = old.get(s);
    out.push(p && p.index === k ? p : { slot: s, index: k });
  }
  return out;
}
