import { describe, expect, it, vi } from 'vitest';
import { ApiError, Client, LiveFeed, queryString } from './index';

function fakeFetch(status: number, body: unknown, calls: { url: string; init: RequestInit }[] = []) {
  return vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
  }) as unknown as typeof fetch;
}

describe('Client', () => {
  it('builds list queries without empty values', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(200, { events: [] }, calls));
    await c.listEvents({ source: 'github', q: '', type: undefined, limit: 50, verified: false });
    expect(calls[0].url).toBe('/api/events?source=github&limit=50&verified=false');
    expect(calls[0].init.method).toBe('GET');
  });

  it('sends JSON bodies and decodes answers', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(200, { count: 3 }, calls));
    const r = await c.forward({ filter: { source: 'stripe' }, target: { url: 'http://x/' }, dry_run: true });
    expect(r.count).toBe(3);
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ filter: { source: 'stripe' }, target: { url: 'http://x/' }, dry_run: true });
    expect((calls[0].init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('turns {code, message} answers into ApiError', async () => {
    const c = new Client(fakeFetch(404, { code: 'no_route', message: 'no such API endpoint' }));
    const err = await c.sinks().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('no_route');
    expect(err.message).toBe('no such API endpoint');
    expect(err.missingEndpoint).toBe(true);
  });

  it('reports non-JSON errors with the status and unreachable daemons as network', async () => {
    const c = new Client(fakeFetch(502, '<html>bad gateway</html>'));
    const err = await c.health().catch((e) => e);
    expect(err.status).toBe(502);
    expect(err.code).toBe('http_502');
    const down = new Client((async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch);
    const e2 = await down.health().catch((e) => e);
    expect(e2.code).toBe('network');
    expect(e2.status).toBe(0);
  });

  it('tells listeners about 401 (not signed in)', async () => {
    const c = new Client(fakeFetch(401, { code: 'unauthorized', message: 'the API token is wrong' }));
    const seen = vi.fn();
    c.onUnauthorized(seen);
    await expect(c.listEvents({})).rejects.toMatchObject({ status: 401 });
    expect(seen).toHaveBeenCalledTimes(1);
  });

  it('escapes path segments', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(200, {}, calls));
    await c.revealSecret('webhook/github');
    await c.getEvent('a b/../c');
    expect(calls[0].url).toBe('/api/secrets/webhook%2Fgithub/reveal');
    expect(calls[1].url).toBe('/api/events/a%20b%2F..%2Fc');
  });

  it('adds, lists and removes relay links', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(201, { name: 'work', origin: 'api' }, calls));
    const added = await c.addRelay({ name: 'work', url: 'wss://relay.example/ws', team_id: 't1', scopes: ['source:github'], token: 'tok' });
    expect(added.origin).toBe('api');
    expect(calls[0].url).toBe('/api/relays');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ name: 'work', url: 'wss://relay.example/ws', team_id: 't1', scopes: ['source:github'], token: 'tok' });
    await c.relays();
    expect(calls[1]).toMatchObject({ url: '/api/relays', init: { method: 'GET' } });
    await c.removeRelay('a/b');
    expect(calls[2]).toMatchObject({ url: '/api/relays/a%2Fb', init: { method: 'DELETE' } });
  });

  it('adds and removes sinks', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(201, { name: 'ci', kind: 'http', target: 'http://x/', origin: 'api' }, calls));
    const added = await c.addSink({ name: 'ci', url: 'http://x/', resign: { scheme: 'github', secret: 's' } });
    expect(added.origin).toBe('api');
    expect(calls[0]).toMatchObject({ url: '/api/sinks', init: { method: 'POST' } });
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ name: 'ci', url: 'http://x/', resign: { scheme: 'github', secret: 's' } });
    await c.removeSink('a/b');
    expect(calls[1]).toMatchObject({ url: '/api/sinks/a%2Fb', init: { method: 'DELETE' } });
  });

  it('reports a refused relay link with its field', async () => {
    const c = new Client(fakeFetch(400, { code: 'invalid_relay', message: 'url: must be a ws:// or wss:// URL' }));
    const err = await c.addRelay({ name: 'x', url: 'ftp://x', team_id: 't' }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('invalid_relay');
    expect(err.message).toMatch(/^url:/);
  });

  it('reads and saves retention', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const c = new Client(fakeFetch(200, { max_age_days: 7, max_events: null, origin: 'settings', manifest: { max_age_days: null, max_events: null }, deleted: 2 }, calls));
    const r = await c.saveRetention({ max_age_days: 7, max_events: null });
    expect(r.deleted).toBe(2);
    expect(calls[0]).toMatchObject({ url: '/api/settings/retention', init: { method: 'PUT' } });
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ max_age_days: 7, max_events: null });
    await c.saveRetention({ reset: true });
    expect(JSON.parse(String(calls[1].init.body))).toEqual({ reset: true });
    await c.retention();
    expect(calls[2]).toMatchObject({ url: '/api/settings/retention', init: { method: 'GET' } });
  });

  it('queryString drops null/empty and encodes', () => {
    expect(queryString({})).toBe('');
    expect(queryString({ q: 'a&b=c', x: null, y: '' })).toBe('?q=a%26b%3Dc');
  });
});

/** A scriptable EventSource stand-in for the reconnect logic. */
class FakeES {
  static all: FakeES[] = [];
  listeners: Record<string, ((m: MessageEvent) => void)[]> = {};
  onerror: (() => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeES.all.push(this);
  }
  addEventListener(t: string, f: (m: MessageEvent) => void) {
    (this.listeners[t] ??= []).push(f);
  }
  emit(t: string, data: unknown) {
    for (const f of this.listeners[t] ?? []) f(new MessageEvent(t, { data: JSON.stringify(data) }));
  }
  close() {
    this.closed = true;
  }
}

describe('LiveFeed', () => {
  it('resumes after the last event id when the connection drops', async () => {
    vi.useFakeTimers();
    FakeES.all = [];
    const got: number[] = [];
    const states: string[] = [];
    const feed = new LiveFeed(
      '',
      { source: 'github' },
      { event: (e) => got.push(e.id), state: (s) => states.push(s) },
      { after: 10, EventSourceImpl: FakeES as unknown as typeof EventSource, minDelay: 100 },
    );
    expect(FakeES.all[0].url).toBe('/api/stream?source=github&after=10');
    FakeES.all[0].emit('ready', { last_id: 10 });
    FakeES.all[0].emit('event', { id: 11 });
    FakeES.all[0].emit('event', { id: 12 });
    FakeES.all[0].onerror?.();
    expect(FakeES.all[0].closed).toBe(true);
    expect(states.at(-1)).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(200);
    expect(FakeES.all).toHaveLength(2);
    expect(FakeES.all[1].url).toBe('/api/stream?source=github&after=12');
    FakeES.all[1].emit('ready', { last_id: 12 });
    expect(states.at(-1)).toBe('live');
    expect(got).toEqual([11, 12]);
    feed.close();
    FakeES.all[1].onerror?.();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(FakeES.all).toHaveLength(2);
    vi.useRealTimers();
  });

  it('backs off between failed reconnects', async () => {
    vi.useFakeTimers();
    FakeES.all = [];
    const feed = new LiveFeed('', {}, {}, { EventSourceImpl: FakeES as unknown as typeof EventSource, minDelay: 100, maxDelay: 400 });
    FakeES.all[0].onerror?.();
    await vi.advanceTimersByTimeAsync(131); // 100 ms + at most 30% jitter
    expect(FakeES.all).toHaveLength(2);
    FakeES.all[1].onerror?.();
    await vi.advanceTimersByTimeAsync(150);
    expect(FakeES.all, 'second delay is doubled').toHaveLength(2);
    await vi.advanceTimersByTimeAsync(120);
    expect(FakeES.all).toHaveLength(3);
    feed.close();
    vi.useRealTimers();
  });
});
