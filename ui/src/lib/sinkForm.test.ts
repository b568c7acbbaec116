import { describe, expect, it } from 'vitest';
import { emptySinkForm, sinkRequest } from './sinkForm';
import { applyConnection } from './connections';
import type { Connection } from './api';

describe('sinkRequest', () => {
  it('builds the smallest body', () => {
    const r = sinkRequest({ ...emptySinkForm(), name: ' ci ', url: ' http://127.0.0.1:9000/hook ' });
    expect(r).toEqual({ ok: true, body: { name: 'ci', url: 'http://127.0.0.1:9000/hook' } });
  });

  it('adds timeout, envelope and re-signing by keychain reference or value', () => {
    const base = { ...emptySinkForm(), name: 'ci', url: 'https://ci.example/x', timeout: '2500', envelope: true, resign: true, scheme: 'stripe' as const };
    expect(sinkRequest({ ...base, secretName: 'shared/stripe' })).toEqual({
      ok: true,
      body: { name: 'ci', url: 'https://ci.example/x', timeout_ms: 2500, envelope: true, resign: { scheme: 'stripe', secret_name: 'shared/stripe' } },
    });
    const r = sinkRequest({ ...base, secret: 'whsec_x' });
    expect(r.ok && r.body.resign).toEqual({ scheme: 'stripe', secret: 'whsec_x' });
    // Re-signing off: no resign key at all, even with a secret typed.
    const off = sinkRequest({ ...base, resign: false, secret: 'typed' });
    expect(off.ok && 'resign' in off.body).toBe(false);
  });

  it('names the field of the first problem', () => {
    const f = { ...emptySinkForm(), name: 'ci', url: 'http://x/' };
    const err = (patch: Partial<typeof f>) => {
      const r = sinkRequest({ ...f, ...patch });
      return r.ok ? null : r.error;
    };
    expect(err({ name: 'Bad Name' })).toMatch(/^name:/);
    expect(err({ name: 'forward' })).toMatch(/^name:/);
    expect(err({ url: 'ftp://x' })).toMatch(/^url:/);
    expect(err({ url: 'http://user:pw@x/' })).toMatch(/^url:/);
    expect(err({ timeout: '1.5' })).toMatch(/^timeout_ms:/);
    expect(err({ timeout: '0' })).toMatch(/^timeout_ms:/);
    expect(err({ timeout: '999999' })).toMatch(/^timeout_ms:/);
    expect(err({})).toBeNull();
    // What a bound number input gives: a number, or null once cleared.
    const n = sinkRequest({ ...f, timeout: 5000 });
    expect(n.ok && n.body.timeout_ms).toBe(5000);
    const cleared = sinkRequest({ ...f, timeout: null });
    expect(cleared.ok && 'timeout_ms' in cleared.body).toBe(false);
    expect(err({ timeout: -1 })).toMatch(/^timeout_ms:/);
  });
});

describe('applyConnection', () => {
  const c = (name: string, state: Connection['state']): Connection => ({ name, kind: 'relay', url: 'ws://x/ws', state, since: '2026-11-25T00:00:00Z' });
  const local: Connection = { ...c('local', 'connected'), kind: 'ingress' };

  it('replaces in place, appends new ones, drops removed ones', () => {
    let list = [local, c('work', 'connected')];
    list = applyConnection(list, c('work', 'reconnecting'));
    expect(list.map((x) => [x.name, x.state])).toEqual([['local', 'connected'], ['work', 'reconnecting']]);
    list = applyConnection(list, c('home', 'connected'));
    expect(list.map((x) => x.name)).toEqual(['local', 'work', 'home']);
    list = applyConnection(list, c('work', 'removed'));
    expect(list.map((x) => x.name)).toEqual(['local', 'home']);
    // A removal of an unknown link adds nothing.
    expect(applyConnection(list, c('ghost', 'removed')).map((x) => x.name)).toEqual(['local', 'home']);
  });

  it('does not mutate its input', () => {
    const list = [local];
    applyConnection(list, c('work', 'connected'));
    expect(list).toHaveLength(1);
  });
});
