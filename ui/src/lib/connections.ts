// The connection list as the live feed changes it.
import type { Connection } from './api';

/**
 * The list after one `event: connection` from the live feed: a known
 * connection is replaced in place, a new one is appended, and one whose
 * state is `removed` (a relay link deleted in Settings) is dropped.
 */
export function applyConnection(list: readonly Connection[], c: Connection): Connection[] {
  if (c.state === 'removed') return list.filter((x) => x.name !== c.name);
  const i = list.findIndex((x) => x.name === c.name);
  if (i < 0) return [...list, c];
  const next = list.slice();
  next[i] = c;
  return next;
}
