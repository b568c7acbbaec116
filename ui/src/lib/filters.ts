// The events filter and its two forms: the page URL (deep links) and the
// API query. The URL is the source of truth; the page reads it on load.

import type { Importance } from './api/types';
import { IMPORTANCE } from './api/types';

export const RANGES = ['1h', '24h', '7d', '30d'] as const;
export type Range = (typeof RANGES)[number];

export interface Filter {
  source: string[];
  type: string;
  importance: Importance | '';
  /** A relative window ending now; wins over since/until when set. */
  range: Range | '';
  since: string;
  until: string;
  verified: '' | 'true' | 'false';
  q: string;
}

export const EMPTY: Filter = {
  source: [],
  type: '',
  importance: '',
  range: '',
  since: '',
  until: '',
  verified: '',
  q: '',
};

const RANGE_MS: Record<Range, number> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};

/** Read a filter from a query string (unknown or invalid values are dropped). */
export function fromSearch(search: string): Filter {
  const sp = new URLSearchParams(search);
  const f: Filter = { ...EMPTY, source: [] };
  for (const s of sp.getAll('source')) {
    f.source.push(...s.split(',').map((x) => x.trim()).filter(Boolean));
  }
  f.type = sp.get('type')?.trim() ?? '';
  const imp = sp.get('importance') ?? sp.get('min_importance') ?? '';
  f.importance = (IMPORTANCE as string[]).includes(imp) ? (imp as Importance) : '';
  const r = sp.get('range') ?? '';
  f.range = (RANGES as readonly string[]).includes(r) ? (r as Range) : '';
  f.since = sp.get('since')?.trim() ?? '';
  f.until = sp.get('until')?.trim() ?? '';
  const v = sp.get('verified') ?? '';
  f.verified = v === 'true' || v === 'false' ? v : '';
  f.q = sp.get('q') ?? '';
  return f;
}

/** The query string for the page URL ('' when no filter is set). Stable key order. */
export function toSearch(f: Filter): string {
  const sp = new URLSearchParams();
  if (f.source.length) sp.set('source', f.source.join(','));
  if (f.type) sp.set('type', f.type);
  if (f.importance) sp.set('importance', f.importance);
  if (f.range) sp.set('range', f.range);
  else {
    if (f.since) sp.set('since', f.since);
    if (f.until) sp.set('until', f.until);
  }
  if (f.verified) sp.set('verified', f.verified);
  if (f.q.trim()) sp.set('q', f.q.trim());
  const s = sp.toString();
  return s ? `?${s}` : '';
}

/** `/api/events` parameters; `now` resolves a relative range. */
export function toApiParams(f: Filter, now: number = Date.now()): Record<string, string> {
  const p: Record<string, string> = {};
  if (f.source.length) p.source = f.source.join(',');
  if (f.type) p.type = f.type;
  if (f.importance) p.min_importance = f.importance;
  if (f.range) p.since = new Date(now - RANGE_MS[f.range]).toISOString();
  else {
    if (f.since) p.since = toApiTime(f.since);
    if (f.until) p.until = toApiTime(f.until);
  }
  if (f.verified) p.verified = f.verified;
  if (f.q.trim()) p.q = f.q.trim();
  return p;
}

/** `datetime-local` values have no zone: read them as local time. */
function toApiTime(v: string): string {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) return d.toISOString();
  }
  return v;
}

/** Live-feed parameters: the stream filters by source, type, importance, verified only. */
export function toLiveParams(f: Filter): Record<string, string> {
  const p = toApiParams(f);
  delete p.q;
  delete p.since;
  delete p.until;
  return p;
}

/** Whether a live event can be shown in the current view without asking the server. */
export function liveCompatible(f: Filter): boolean {
  return !f.q.trim() && !f.until;
}

export function isEmpty(f: Filter): boolean {
  return toSearch(f) === '';
}
