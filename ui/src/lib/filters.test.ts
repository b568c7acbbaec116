import { describe, expect, it } from 'vitest';
import { EMPTY, fromSearch, isEmpty, liveCompatible, toApiParams, toLiveParams, toSearch } from './filters';

describe('URL ⇄ filter', () => {
  it('round-trips every field', () => {
    const f = { ...EMPTY, source: ['github', 'stripe'], type: 'com.github.*', importance: 'high' as const, verified: 'false' as const, q: 'declined card' };
    const s = toSearch(f);
    expect(s).toBe('?source=github%2Cstripe&type=com.github.*&importance=high&verified=false&q=declined+card');
    expect(fromSearch(s)).toEqual(f);
  });

  it('drops invalid values from hand-edited URLs', () => {
    const f = fromSearch('?importance=urgent&verified=maybe&range=2y&source=,,a,');
    expect(f.importance).toBe('');
    expect(f.verified).toBe('');
    expect(f.range).toBe('');
    expect(f.source).toEqual(['a']);
  });

  it('accepts min_importance as an alias and repeated source params', () => {
    const f = fromSearch('?min_importance=critical&source=a&source=b');
    expect(f.importance).toBe('critical');
    expect(f.source).toEqual(['a', 'b']);
  });

  it('a relative range wins over since/until', () => {
    const f = fromSearch('?range=24h&since=2020-01-01T00:00:00Z');
    expect(toSearch(f)).toBe('?range=24h');
    const now = Date.parse('2026-11-24T12:00:00Z');
    expect(toApiParams(f, now).since).toBe('2026-11-23T12:00:00.000Z');
    expect(toApiParams(f, now).until).toBeUndefined();
  });

  it('maps to API parameter names', () => {
    const f = fromSearch('?source=github&importance=high&q=%20x%20&verified=true&since=2026-01-01T00:00:00Z');
    expect(toApiParams(f)).toEqual({ source: 'github', min_importance: 'high', q: 'x', verified: 'true', since: '2026-01-01T00:00:00Z' });
  });

  it('live params leave out what the stream cannot filter', () => {
    const f = fromSearch('?source=github&q=x&range=1h');
    expect(toLiveParams(f)).toEqual({ source: 'github' });
    expect(liveCompatible(f)).toBe(false);
    expect(liveCompatible(fromSearch('?source=github&range=1h'))).toBe(true);
  });

  it('empty', () => {
    expect(isEmpty(fromSearch(''))).toBe(true);
    expect(toSearch(EMPTY)).toBe('');
    expect(isEmpty(fromSearch('?q=a'))).toBe(false);
  });
});
